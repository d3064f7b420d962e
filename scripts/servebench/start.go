package main

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// floor times `x402-mcp version` from spawn to exit: the process and the
// Go runtime starting, and every package's initialisation, which no
// command avoids.
func (b *bench) floor(runs int) error {
	var times []time.Duration
	for range runs {
		t0 := time.Now()
		if out, err := exec.Command(b.exe, "version").CombinedOutput(); err != nil {
			return fmt.Errorf("x402-mcp version: %v\n%s", err, out)
		}
		times = append(times, time.Since(t0))
	}
	slices.Sort(times)
	fmt.Printf("floor, x402-mcp version (spawn to exit): median %s, p90 %s\n", ms(times[len(times)/2]), ms(pct(times, 90)))
	return nil
}

// inits runs `x402-mcp version` with GODEBUG=inittrace=1 and reports the
// median time of all package initialisation, and of the parts that are
// not ours: the JSON schema compiler mcp-go's server links (it compiles
// every draft's meta-schema at init) and go-ethereum (the EVM of the
// built-in local network among it).
func (b *bench) inits(runs int) error {
	var total, schema, geth, ours []float64
	for range runs {
		cmd := exec.Command(b.exe, "version")
		cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("x402-mcp version: %v\n%s", err, out)
		}
		var t, sc, ge, ou float64
		for _, line := range strings.Split(string(out), "\n") {
			// init PKG @0.52 ms, 0.011 ms clock, 0 bytes, 0 allocs
			f := strings.Fields(line)
			if len(f) < 5 || f[0] != "init" {
				continue
			}
			d, err := strconv.ParseFloat(f[4], 64)
			if err != nil {
				continue
			}
			t += d
			switch pkg := f[1]; {
			case strings.HasPrefix(pkg, "github.com/santhosh-tekuri/jsonschema/"):
				sc += d
			case strings.HasPrefix(pkg, "github.com/ethereum/go-ethereum/"):
				ge += d
			case strings.HasPrefix(pkg, "github.com/x402-mcp/x402-mcp/"):
				ou += d
			}
		}
		total, schema, geth, ours = append(total, t), append(schema, sc), append(geth, ge), append(ours, ou)
	}
	med := func(v []float64) string { slices.Sort(v); return fmt.Sprintf("%.1f ms", v[len(v)/2]) }
	fmt.Printf("of which package inits (GODEBUG=inittrace=1, medians): %s in all; jsonschema/v6 (linked by mcp-go) %s, go-ethereum %s, x402-mcp's own %s\n",
		med(total), med(schema), med(geth), med(ours))
	return nil
}

// frameworkFloor times a bare mcp-go server, exe, from spawn to its reply
// to initialize: the floor any server built on mcp-go starts from.
func (b *bench) frameworkFloor(exe string, runs int) error {
	var times []time.Duration
	for range runs {
		t0 := time.Now()
		c, err := b.spawnExe(exe, nil, os.Environ())
		if err != nil {
			return err
		}
		_, err = c.initialize()
		d := time.Since(t0)
		if cerr := c.close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("bare mcp-go server: %w\n%s", err, c.stderr())
		}
		times = append(times, d)
	}
	slices.Sort(times)
	fmt.Printf("floor, a bare mcp-go server (scripts/mcpfloor: no tools, nothing of ours), spawn to the initialize reply: median %s, p90 %s\n",
		ms(times[len(times)/2]), ms(pct(times, 90)))
	return nil
}

// start spawns the server runs times and times the reply to initialize,
// and then to the tools/list that hosts send next.
func (b *bench) start(s setup, runs int) error {
	var times, listed []time.Duration
	for range runs {
		t0 := time.Now()
		c, err := b.spawn(s)
		if err != nil {
			return err
		}
		_, err = c.initialize()
		d := time.Since(t0)
		if err == nil {
			_, err = c.call("tools/list", map[string]any{})
		}
		l := time.Since(t0)
		if cerr := c.close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s: %w\n%s", s.name, err, c.stderr())
		}
		times, listed = append(times, d), append(listed, l)
	}
	slices.Sort(times)
	slices.Sort(listed)
	fmt.Printf("start, %s: median %s, p90 %s over %d spawns (goal ≤ %s); to the tools/list reply: median %s\n",
		s.name, ms(times[len(times)/2]), ms(pct(times, 90)), runs, ms(startGoal), ms(listed[len(listed)/2]))
	return nil
}
