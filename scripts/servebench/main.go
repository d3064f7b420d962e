// Command servebench measures the built x402-mcp binary the way an MCP host
// runs it: as a child process speaking JSON-RPC on stdin and stdout. It
// prints, next to their goals, the time from spawning the binary to its
// reply to initialize, the resident memory of an idle server (with no
// config, and with the encrypted keystore `x402-mcp init` writes), and the
// paid requests per second and resident memory after many paid x402_fetch
// calls against a local x402 network, with a key file and with a keystore.
//
// It is run by scripts/bench.sh; by hand:
//
//	go build -o /tmp/x402-mcp ./cmd/x402-mcp
//	go run ./scripts/servebench -bin /tmp/x402-mcp
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

const (
	startGoal = 10 * time.Millisecond
	rssGoalMB = 30
)

func main() {
	bin := flag.String("bin", "", "the x402-mcp `binary` to measure (required)")
	runs := flag.Int("runs", 20, "spawns per start-time figure")
	paid := flag.Int("paid", 1000, "paid requests per paid figure (0 skips them)")
	callers := flag.Int("callers", 8, "concurrent callers for the paid figures")
	only := flag.String("only", "start,idle,paid", "which figures: a comma-separated subset of start, idle, paid")
	noKeystore := flag.Bool("no-keystore", false, "skip the keystore setups")
	framework := flag.String("framework", "", "a bare mcp-go server `binary` (scripts/mcpfloor) whose start is shown as the framework's floor")
	flag.DurationVar(&hold, "hold", 0, "after each idle and paid figure, keep the server running this long and print its PID (to read /proc/PID/smaps)")
	flag.BoolVar(&showStderr, "stderr", false, "print the server's stderr after the paid figures (with GODEBUG=gctrace=1, the heap)")
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "servebench: -bin is required")
		os.Exit(2)
	}
	exe, err := filepath.Abs(*bin)
	if err != nil {
		fatal(err)
	}
	tmp, err := os.MkdirTemp("", "servebench-")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(tmp)
	b := &bench{exe: exe, tmp: tmp}
	want := map[string]bool{}
	for _, w := range strings.Split(*only, ",") {
		want[strings.TrimSpace(w)] = true
	}

	plain := setup{name: "no config (defaults, no key)", home: b.home("plain")}
	setups := []setup{plain}
	if !*noKeystore {
		ks, err := b.initSetup()
		if err != nil {
			fatal(err)
		}
		setups = append(setups, ks)
	}
	if want["start"] {
		fmt.Println("== start: spawn to the initialize reply")
		if err := b.floor(*runs); err != nil {
			fatal(err)
		}
		if err := b.inits(*runs); err != nil {
			fatal(err)
		}
		if *framework != "" {
			if err := b.frameworkFloor(*framework, *runs); err != nil {
				fatal(err)
			}
		}
		for _, s := range setups {
			if err := b.start(s, *runs); err != nil {
				fatal(err)
			}
		}
	}
	if want["idle"] {
		fmt.Println("== idle server memory (initialize, tools/list, x402_spending and x402_wallet answered, then 2 s idle)")
		for _, s := range setups {
			if err := b.idle(s); err != nil {
				fatal(err)
			}
		}
	}
	if want["paid"] && *paid > 0 {
		fmt.Printf("== %d paid x402_fetch calls over one stdio session, %d concurrent callers, local network\n", *paid, *callers)
		kinds := []bool{false, true}
		if *noKeystore {
			kinds = kinds[:1]
		}
		for _, keystore := range kinds {
			if err := b.paid(*paid, *callers, keystore); err != nil {
				fatal(err)
			}
		}
	}
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "servebench: %v\n", err)
	os.Exit(1)
}

var (
	showStderr bool
	hold       time.Duration
)

// holdFor keeps c running for the -hold time, for a look at its memory.
func holdFor(c *child) {
	if hold > 0 {
		fmt.Printf("\tholding the server, PID %d, for %s\n", c.cmd.Process.Pid, hold)
		time.Sleep(hold)
	}
}

type bench struct {
	exe, tmp string
}

// setup is one way of running the server: its arguments and a HOME of its
// own, so the default ledger lands in a temporary directory.
type setup struct {
	name string
	home string
	args []string
}

func (b *bench) home(name string) string {
	h := filepath.Join(b.tmp, "home-"+name)
	if err := os.MkdirAll(h, 0o700); err != nil {
		fatal(err)
	}
	return h
}

// env is the child's environment: none of the caller's X402 settings, and
// HOME (with no XDG overrides) pointing at home.
func env(home string) []string {
	var out []string
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, "X402") || strings.HasPrefix(e, "HOME=") || strings.HasPrefix(e, "XDG_") {
			continue
		}
		out = append(out, e)
	}
	return append(out, "HOME="+home)
}

// initSetup runs `x402-mcp init --passphrase-file` in a HOME of its own:
// the setup the README starts a user with.
func (b *bench) initSetup() (setup, error) {
	home := b.home("init")
	pass := filepath.Join(b.tmp, "passphrase")
	if err := os.WriteFile(pass, []byte("correct horse battery staple\n"), 0o600); err != nil {
		return setup{}, err
	}
	dir := filepath.Join(home, "x402-mcp")
	cmd := exec.Command(b.exe, "init", "--dir", dir, "--passphrase-file", pass)
	cmd.Env = env(home)
	if out, err := cmd.CombinedOutput(); err != nil {
		return setup{}, fmt.Errorf("x402-mcp init: %v\n%s", err, out)
	}
	return setup{name: "encrypted keystore (x402-mcp init)", home: home, args: []string{"--config", filepath.Join(dir, "config.toml")}}, nil
}

func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func mb(bytes int64) string { return fmt.Sprintf("%.1f MB", float64(bytes)/1e6) }
