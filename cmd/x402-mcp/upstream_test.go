package main

import (
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/x402-mcp/x402-mcp/localnet"
)

// startPaidMCPHTTP serves the local network's paid MCP server over
// streamable HTTP on loopback and returns its endpoint.
func startPaidMCPHTTP(t *testing.T, n *localnet.Network, extension bool) (*localnet.PaidMCP, string) {
	t.Helper()
	cfg := localnet.PaidMCPConfigFor(n)
	cfg.Extension = extension
	p, h := localnet.PaidMCPHandler(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return p, "http://" + ln.Addr().String() + "/mcp"
}

// withUpstreams adds three upstreams to the config at cfgPath: "paid" over
// streamable HTTP at url, "ext" (the experimental org.x402/payment
// extension) at extURL, and "local", the same server as a stdio child
// (x402-mcp localnet-mcp).
func withUpstreams(t *testing.T, n *localnet.Network, cfgPath, url, extURL string) {
	t.Helper()
	pc := localnet.PaidMCPConfigFor(n)
	pc.CrashFile = filepath.Join(t.TempDir(), "crashed")
	var args []string
	for _, a := range localnetMCPArgs(pc) {
		args = append(args, fmt.Sprintf("%q", a))
	}
	extra := fmt.Sprintf("\n[[upstreams]]\nname = \"paid\"\nurl = %q\n\n[[upstreams]]\nname = \"ext\"\nurl = %q\n\n[[upstreams]]\nname = \"local\"\ncommand = %q\nargs = [%s]\n", url, extURL, bin, strings.Join(args, ", "))
	f, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(extra); err != nil {
		t.Fatal(err)
	}
}

// TestOfficialClientUpstream pays for tools of upstream MCP servers (x402
// over MCP) through the official client: one over streamable HTTP, one
// over stdio, each paid exactly once; refusals pay nothing; a tool failing
// after verification is not settled; an upstream dying mid-call is not
// paid twice on repeat.
func TestOfficialClientUpstream(t *testing.T) {
	tsClientDir(t)
	n, cfg, payer := tsDevnet(t, "max_per_payment = \"0.10\"\napproval_above = \"0.025\"\n")
	paid, url := startPaidMCPHTTP(t, n, false)
	ext, extURL := startPaidMCPHTTP(t, n, true)
	withUpstreams(t, n, cfg, url, extURL)
	payer0, payee0 := chainBalance(t, n, payer), chainBalance(t, n, n.PayTo)

	paidOnce := func(t *testing.T, r tsResult) {
		if gjson.Get(r.Structured(), "forecast").String() == "" || gjson.Get(r.Result, `_meta.x402-mcp/payment.amount_atomic`).String() != "10000" ||
			gjson.Get(r.Result, `_meta.x402-mcp/payment.transaction`).String() == "" || !strings.Contains(r.Text(), "x402-mcp paid 0.01") {
			t.Errorf("paid tool call: %s", r.Result)
		}
	}
	says := func(want ...string) func(t *testing.T, r tsResult) {
		return func(t *testing.T, r tsResult) {
			for _, w := range want {
				if !strings.Contains(r.Text(), w) {
					t.Errorf("result lacks %q: %s", w, r.Text())
				}
			}
		}
	}
	calls := []tsCall{
		// Quoting calls only tools declared priced, which answer unpaid
		// calls with their terms and run nothing.
		{step: tsStep{Op: "call", Name: "x402_quote", Arguments: map[string]any{"tool": "paid__weather", "arguments": map[string]any{"city": "Paris"}}}, check: func(t *testing.T, r tsResult) {
			s := r.Structured()
			if gjson.Get(s, "verdict").String() != "allowed" || gjson.Get(s, fmt.Sprintf("options.%d.amount_atomic", gjson.Get(s, "chosen").Int())).String() != "10000" {
				t.Errorf("quote of paid__weather: %s", s)
			}
		}},
		{step: tsStep{Op: "call", Name: "x402_quote", Arguments: map[string]any{"tool": "paid__echo", "arguments": map[string]any{"text": "x"}}}, isError: true, check: says("Not quoted", "Nothing was sent")},
		{step: tsStep{Op: "call", Name: "x402_discover", Arguments: map[string]any{"query": "weather"}}, check: func(t *testing.T, r tsResult) {
			for _, name := range []string{"paid__weather", "local__weather"} {
				e := gjson.Get(r.Structured(), fmt.Sprintf(`results.#(tool==%q)`, name))
				if e.Get("price_atomic").String() != "10000" || e.Get("verdict").String() != "allowed" || e.Get("price_hint_usd").String() != "0.01" {
					t.Errorf("discover lacks %s with its price: %s", name, r.Structured())
				}
			}
		}},
		{step: tsStep{Op: "call", Name: "paid__weather", Arguments: map[string]any{"city": "Paris"}}, check: paidOnce},
		{step: tsStep{Op: "call", Name: "local__weather", Arguments: map[string]any{"city": "Rome"}}, check: paidOnce},
		// The experimental form: payment_required, then the same _meta.
		{step: tsStep{Op: "call", Name: "ext__weather", Arguments: map[string]any{"city": "Kyiv"}}, check: paidOnce},
		{step: tsStep{Op: "call", Name: "paid__report", Arguments: map[string]any{"city": "Oslo"}}, isError: true, check: says("per-payment cap", "Nothing was signed or paid")},
		{step: tsStep{Op: "call", Name: "paid__weather", Arguments: map[string]any{"city": "Oslo", "max_price": "0.005"}}, isError: true, check: says("Nothing was signed or paid")},
		{step: tsStep{Op: "call", Name: "paid__forecast", Arguments: map[string]any{"city": "Oslo"}}, isError: true, check: says("did not approve the payment (decline)", "Nothing was paid")},
		{step: tsStep{Op: "call", Name: "paid__broken", Arguments: map[string]any{}}, isError: true, check: says("tool answered with an error", "weather station is offline")},
		{step: tsStep{Op: "call", Name: "local__crash_once", Arguments: map[string]any{"city": "Lima"}}, isError: true, check: says("no answer")},
		{step: tsStep{Op: "call", Name: "local__crash_once", Arguments: map[string]any{"city": "Lima"}}, isError: true, check: says("already paid", "will not be paid again")},
	}
	steps := []tsStep{{Op: "listTools"}}
	for _, c := range calls {
		steps = append(steps, c.step)
	}
	// A free tool without an output schema: its result passes through,
	// without structured content and without a payment.
	steps = append(steps, tsStep{Op: "call", Name: "paid__echo", Arguments: map[string]any{"text": "hi"}})
	run := tsClient(t, tsPlan{Args: []string{"serve", "--config", cfg}, Elicitation: true, ElicitAnswers: []tsAnswer{{Action: "decline"}}, Steps: steps})
	if !run.Steps[0].OK {
		t.Logf("server and client log:\n%s", tail(run.Stderr, 8000))
	}
	list := mustListTools(t, run)
	for _, name := range []string{"paid__weather", "local__weather", "paid__echo", "local__crash_once"} {
		tool := gjson.Get(list.Result, fmt.Sprintf(`tools.#(name==%q)`, name))
		if !tool.Exists() {
			t.Errorf("tools/list lacks %s: %s", name, list.Result)
			continue
		}
		if !tool.Get("annotations.destructiveHint").Bool() || tool.Get("annotations.readOnlyHint").Bool() || !tool.Get("inputSchema.properties.max_price").Exists() {
			t.Errorf("re-exported %s: %s", name, tool.Raw)
		}
	}
	if d := gjson.Get(list.Result, `tools.#(name=="paid__weather").description`).String(); !strings.Contains(d, "0.01 USD") {
		t.Errorf("paid__weather does not state its declared price: %q", d)
	}
	if !gjson.Get(list.Result, `tools.#(name=="paid__weather").outputSchema`).Exists() {
		t.Errorf("paid__weather lost its output schema")
	}
	checkCalls(t, calls, run.Steps[1:1+len(calls)])
	if r := run.Steps[1+len(calls)]; !r.OK || r.IsError() || r.Text() != "hi" || gjson.Get(r.Result, "_meta.x402-mcp/payment").Exists() {
		t.Errorf("free upstream tool: %s %v", r.Result, r.Error)
	}
	if ext.ExtensionAnswers() == 0 || ext.Calls("weather") != 1 {
		t.Errorf("the ext upstream sent %d payment_required results and ran weather %d times", ext.ExtensionAnswers(), ext.Calls("weather"))
	}
	if got := paid.Calls("broken"); got != 1 {
		t.Errorf("broken ran %d times after verification, want 1", got)
	}

	// A disallowed host pays nothing: the stdio upstream is judged as the
	// host mcp:local.
	policyPath := filepath.Join(filepath.Dir(cfg), "policy.toml")
	if err := os.WriteFile(policyPath, []byte("max_per_payment = \"0.10\"\n[hosts]\ndeny = [\"mcp:local\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	denied := []tsCall{{step: tsStep{Op: "call", Name: "local__weather", Arguments: map[string]any{"city": "Bern"}}, isError: true, check: says("mcp:local", "hosts.deny")}}
	run2 := tsClient(t, tsPlan{Args: []string{"serve", "--config", cfg}, Steps: []tsStep{{Op: "listTools"}, denied[0].step}})
	mustListTools(t, run2)
	checkCalls(t, denied, run2.Steps[1:])

	// weather over HTTP in both forms, weather over stdio, crash_once
	// once: 0.04.
	want := big.NewInt(4 * localnet.MCPWeatherPrice)
	if d := new(big.Int).Sub(payer0, chainBalance(t, n, payer)); d.Cmp(want) != 0 {
		t.Errorf("payer spent %s atomic units, want %s", d, want)
	}
	if d := new(big.Int).Sub(chainBalance(t, n, n.PayTo), payee0); d.Cmp(want) != 0 {
		t.Errorf("payee received %s atomic units, want %s", d, want)
	}
	if t.Failed() {
		t.Logf("server and client log:\n%s\n%s", tail(run.Stderr, 8000), tail(run2.Stderr, 3000))
	}
}

// TestHeadersFile holds an upstream's headers file to the key files' rule.
func TestHeadersFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "h.toml")
	if err := os.WriteFile(p, []byte("Authorization = \"Bearer secret-token\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readHeadersFile(p); err == nil || !strings.Contains(err.Error(), "chmod 600") || strings.Contains(err.Error(), "secret-token") {
		t.Errorf("group-readable headers file: %v", err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := readHeadersFile(p)
	if err != nil || h["Authorization"] != "Bearer secret-token" {
		t.Errorf("headers file: %v %v", h, err)
	}
	if err := os.WriteFile(p, []byte("Bad Name = \"secret-token\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readHeadersFile(p); err == nil || strings.Contains(err.Error(), "secret-token") {
		t.Errorf("invalid header name: %v", err)
	}
}
