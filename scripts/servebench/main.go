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
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"

	"github.com/x402-mcp/x402-mcp/localnet"
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

// idle starts the server, waits until the tools that need the ledger and
// the key have answered, lets it sit for two seconds and reads its memory.
func (b *bench) idle(s setup) error {
	t0 := time.Now()
	c, err := b.spawn(s)
	if err != nil {
		return err
	}
	defer c.close()
	if _, err := c.initialize(); err != nil {
		return fmt.Errorf("%s: %w\n%s", s.name, err, c.stderr())
	}
	if _, err := c.call("tools/list", map[string]any{}); err != nil {
		return err
	}
	for _, tool := range []string{"x402_spending", "x402_wallet"} {
		if _, err := c.tool(tool, map[string]any{}); err != nil {
			return fmt.Errorf("%s: %s: %w\n%s", s.name, tool, err, c.stderr())
		}
	}
	ready := time.Since(t0)
	time.Sleep(2 * time.Second)
	m, err := c.memory()
	if err != nil {
		return err
	}
	fmt.Printf("idle RSS, %s: %s (goal ≤ %d MB)\n\tpeak %s; ready (x402_wallet answered) %s after spawn%s%s\n",
		s.name, m, rssGoalMB, mb(m.hwm), ms(ready), unlockNote(c.stderr()), m.breakdown())
	holdFor(c)
	return nil
}

// unlockNote is the unlock time the server logged, if it logs one.
func unlockNote(stderr string) string {
	i := strings.Index(stderr, "unlock=")
	if i < 0 {
		return ""
	}
	v := stderr[i+len("unlock="):]
	if j := strings.IndexAny(v, " \n"); j >= 0 {
		v = v[:j]
	}
	return "; keystore unlock " + v + " (server's log)"
}

// paid runs n paid fetches with callers concurrent callers against a local
// network, then reads the server's memory.
func (b *bench) paid(n, callers int, useKeystore bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// Authorizations valid for a day, and a chain allowed to run hours
	// ahead of the clock: mining a block per payment moves chain time
	// faster than the wall clock.
	routes := localnet.DefaultRoutes()
	for i := range routes {
		routes[i].MaxTimeoutSeconds = 86400
	}
	net, err := localnet.Start(ctx, localnet.NetworkConfig{RPC: true, Routes: routes, MaxClockDrift: 12 * time.Hour})
	if err != nil {
		return err
	}
	defer net.Close()
	key, payer, err := net.NewPayer(ctx, big.NewInt(int64(n+100)*100_000))
	if err != nil {
		return err
	}
	name := "key file"
	if useKeystore {
		name = "encrypted keystore"
	}
	s, err := b.networkSetup(name, net, key, useKeystore)
	if err != nil {
		return err
	}
	before, err := net.Chain.BalanceOf(ctx, payer)
	if err != nil {
		return err
	}

	c, err := b.spawn(s)
	if err != nil {
		return err
	}
	defer c.close()
	if _, err := c.initialize(); err != nil {
		return fmt.Errorf("%w\n%s", err, c.stderr())
	}
	// The first call waits for the server to be ready (ledger open, key
	// unlocked); it is not counted.
	if _, err := c.tool("x402_wallet", map[string]any{}); err != nil {
		return fmt.Errorf("%w\n%s", err, c.stderr())
	}
	var next, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	t0 := time.Now()
	for range callers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				res, err := c.tool("x402_fetch", map[string]any{"url": net.APIURL + "/v2/weather?city=c" + strconv.FormatInt(i, 10)})
				if err == nil && !settled(res) {
					err = fmt.Errorf("not paid: %.300s", res)
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(t0)
	m, err := c.memory()
	if err != nil {
		return err
	}
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("%s: %d of %d paid fetches failed; first: %v\n%s", name, f, n, firstErr.Load(), c.stderr())
	}
	after, err := net.Chain.BalanceOf(ctx, payer)
	if err != nil {
		return err
	}
	spent := new(big.Int).Sub(before, after)
	fmt.Printf("paid, %s: %.0f paid requests/s (%d in %s, %d callers; payer spent %s atomic units on chain)\n",
		name, float64(n)/elapsed.Seconds(), n, elapsed.Round(time.Millisecond), callers, spent)
	fmt.Printf("RSS after %d paid requests, %s: %s (goal ≤ %d MB)\n\tpeak %s%s\n", n, name, m, rssGoalMB, mb(m.hwm), m.breakdown())
	if showStderr {
		fmt.Print(c.stderr())
	}
	holdFor(c)
	return nil
}

// settled reports whether an x402_fetch result records a settled payment.
func settled(res json.RawMessage) bool {
	var r struct {
		IsError    bool `json:"isError"`
		Structured struct {
			Payment *struct {
				Settled bool `json:"settled"`
			} `json:"payment"`
		} `json:"structuredContent"`
	}
	return json.Unmarshal(res, &r) == nil && !r.IsError && r.Structured.Payment != nil && r.Structured.Payment.Settled
}

// networkSetup writes a config for the local network with a policy that
// lets a benchmark pay without end: a key file, or the keystore format
// `x402-mcp init` writes.
func (b *bench) networkSetup(name string, net *localnet.Network, key *ecdsa.PrivateKey, useKeystore bool) (setup, error) {
	home := b.home("paid-" + strconv.FormatBool(useKeystore))
	dir := filepath.Join(home, "cfg")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return setup{}, err
	}
	write := func(name, text string) error { return os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600) }
	var wallet string
	if useKeystore {
		blob, err := keystore.EncryptKey(&keystore.Key{Id: uuid.New(), Address: crypto.PubkeyToAddress(key.PublicKey), PrivateKey: key},
			"correct horse battery staple", keystore.StandardScryptN, keystore.StandardScryptP)
		if err != nil {
			return setup{}, err
		}
		if err := write("keystore.json", string(blob)); err != nil {
			return setup{}, err
		}
		if err := write("passphrase", "correct horse battery staple\n"); err != nil {
			return setup{}, err
		}
		wallet = "keystore = \"keystore.json\"\npassphrase_file = \"passphrase\"\n"
	} else {
		if err := write("payer.key", fmt.Sprintf("0x%x\n", crypto.FromECDSA(key))); err != nil {
			return setup{}, err
		}
		wallet = "key_file = \"payer.key\"\n"
	}
	if err := write("policy.toml", `max_per_payment = "0.10"
max_authorization_seconds = 86400
max_payments_per_minute = "none"

[budget]
day = "none"
`); err != nil {
		return setup{}, err
	}
	chain := net.Chain
	cfg := fmt.Sprintf(`policy_file = "policy.toml"
ledger = "ledger.db"

[wallet]
%s
[[networks]]
id = %q
rpc_url = %q

[http]
allow_private = ["127.0.0.1"]

[[tokens]]
network = %q
address = %q
symbol = "USDC"
name = %q
version = %q
decimals = 6
currency = "USD"
`, wallet, chain.Network(), net.RPCURL, chain.Network(), chain.TokenAddress().Hex(), chain.TokenName(), chain.TokenVersion())
	if err := write("config.toml", cfg); err != nil {
		return setup{}, err
	}
	return setup{name: name, home: home, args: []string{"--config", filepath.Join(dir, "config.toml")}}, nil
}

// child is a running server and its JSON-RPC session.
type child struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	errBuf *lockedBuffer

	wmu     sync.Mutex
	mu      sync.Mutex
	pending map[int64]chan reply
	id      atomic.Int64
	done    chan struct{}
}

type reply struct {
	result json.RawMessage
	err    error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (b *bench) spawn(s setup) (*child, error) {
	return b.spawnExe(b.exe, append([]string{"serve"}, s.args...), env(s.home))
}

// spawnExe starts exe with args and environ, speaking JSON-RPC on its
// standard input and output.
func (b *bench) spawnExe(exe string, args, environ []string) (*child, error) {
	cmd := exec.Command(exe, args...)
	cmd.Env = environ
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, in: in, errBuf: &lockedBuffer{}, pending: map[int64]chan reply{}, done: make(chan struct{})}
	cmd.Stderr = c.errBuf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go c.read(bufio.NewReaderSize(out, 1<<20))
	return c, nil
}

func (c *child) stderr() string { return c.errBuf.String() }

// read dispatches the server's replies to their callers until stdout ends.
func (c *child) read(r *bufio.Reader) {
	defer close(c.done)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			var m struct {
				ID     *int64          `json:"id"`
				Method string          `json:"method"`
				Result json.RawMessage `json:"result"`
				Error  *struct {
					Message string `json:"message"`
				} `json:"error"`
			}
			if json.Unmarshal(line, &m) == nil && m.ID != nil {
				if m.Method != "" {
					// A request from the server (this client offers no
					// capabilities): refuse it.
					c.send(map[string]any{"jsonrpc": "2.0", "id": *m.ID, "error": map[string]any{"code": -32601, "message": "not supported"}})
					continue
				}
				c.mu.Lock()
				ch := c.pending[*m.ID]
				delete(c.pending, *m.ID)
				c.mu.Unlock()
				if ch != nil {
					rep := reply{result: m.Result}
					if m.Error != nil {
						rep.err = errors.New(m.Error.Message)
					}
					ch <- rep
				}
			}
		}
		if err != nil {
			c.mu.Lock()
			for id, ch := range c.pending {
				ch <- reply{err: fmt.Errorf("the server closed stdout: %v", err)}
				delete(c.pending, id)
			}
			c.pending = nil
			c.mu.Unlock()
			return
		}
	}
}

func (c *child) send(msg any) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err = c.in.Write(append(b, '\n'))
	return err
}

func (c *child) call(method string, params any) (json.RawMessage, error) {
	id := c.id.Add(1)
	ch := make(chan reply, 1)
	c.mu.Lock()
	if c.pending == nil {
		c.mu.Unlock()
		return nil, errors.New("the server closed stdout")
	}
	c.pending[id] = ch
	c.mu.Unlock()
	if err := c.send(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params}); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		return r.result, r.err
	case <-time.After(5 * time.Minute):
		return nil, fmt.Errorf("%s: no reply in 5 minutes", method)
	}
}

func (c *child) initialize() (json.RawMessage, error) {
	res, err := c.call("initialize", map[string]any{
		"protocolVersion": "2025-06-18",
		"capabilities":    map[string]any{},
		"clientInfo":      map[string]any{"name": "servebench", "version": "1"},
	})
	if err != nil {
		return nil, err
	}
	return res, c.send(map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"})
}

func (c *child) tool(name string, args map[string]any) (json.RawMessage, error) {
	return c.call("tools/call", map[string]any{"name": name, "arguments": args})
}

// close ends the session the way a host does, by closing stdin, and waits
// for the process.
func (c *child) close() error {
	c.in.Close()
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
	}
	return c.cmd.Wait()
}

// memory is a process's resident memory in bytes: rss in all, of which
// anon is its own (heap, stacks) and file the pages of the binary it has
// touched (clean, shared with the page cache: the kernel can drop them),
// and hwm the most it ever had. sections says which parts of the binary
// are resident.
type memory struct {
	rss, anon, file, hwm int64
	sections             string
}

func (m memory) String() string {
	return fmt.Sprintf("%s: %s anonymous, %s of the binary's pages", mb(m.rss), mb(m.anon), mb(m.file))
}

// breakdown is the sections line, if there is one, as a line of its own.
func (m memory) breakdown() string {
	if m.sections == "" {
		return ""
	}
	return "\n\t" + m.sections
}

// sections sums the resident pages of pid that lie in each part of the
// binary exe (/proc/PID/pagemap's present bit), next to the part's size.
// A page fault maps the pages around it too (64 KiB on Linux), so a
// part's resident size is the windows of it touched, not the bytes read.
func sections(pid int, exe string) (string, error) {
	f, err := elf.Open(exe)
	if err != nil {
		return "", err
	}
	defer f.Close()
	pm, err := os.Open(fmt.Sprintf("/proc/%d/pagemap", pid))
	if err != nil {
		return "", err
	}
	defer pm.Close()
	const page = 4096
	groups := []string{".text", ".rodata", ".gopclntab", "data"}
	var res, size [4]int64
	for _, sec := range f.Sections {
		if sec.Flags&elf.SHF_ALLOC == 0 || sec.Addr == 0 {
			continue
		}
		g := slices.Index(groups, sec.Name)
		if g < 0 {
			g = 3 // .typelink, .itablink, .noptrdata, .data, .bss ...
		}
		size[g] += int64(sec.Size)
		lo, hi := sec.Addr/page, (sec.Addr+sec.Size+page-1)/page
		buf := make([]byte, 8*(hi-lo))
		if _, err := pm.ReadAt(buf, int64(lo*8)); err != nil {
			return "", err
		}
		for i := 0; i < len(buf); i += 8 {
			if binary.LittleEndian.Uint64(buf[i:])>>63 == 1 {
				res[g] += page
			}
		}
	}
	var parts []string
	for i, g := range groups {
		parts = append(parts, fmt.Sprintf("%s %s of %s", g, mb(res[i]), mb(size[i])))
	}
	return "binary resident: " + strings.Join(parts, ", "), nil
}

func (c *child) memory() (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return memory{}, fmt.Errorf("reading the server's memory (Linux /proc): %w", err)
	}
	var m memory
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			m.rss = kb << 10
		case "VmHWM:":
			m.hwm = kb << 10
		case "RssAnon:":
			m.anon = kb << 10
		case "RssFile:":
			m.file = kb << 10
		}
	}
	// The breakdown is best effort: without it the figures stand.
	m.sections, _ = sections(c.cmd.Process.Pid, c.cmd.Path)
	return m, nil
}

func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func mb(bytes int64) string { return fmt.Sprintf("%.1f MB", float64(bytes)/1e6) }
