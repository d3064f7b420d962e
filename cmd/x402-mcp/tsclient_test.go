package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/tidwall/gjson"

	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/policy"
	"github.com/x402-mcp/x402-mcp/signer"
	"github.com/x402-mcp/x402-mcp/tokens"
)

// The tests in this file drive the built binary with the official
// TypeScript MCP SDK client (testsupport/tsclient/client.mjs), the client
// the hosts embed. Unlike mcp-go's client it validates every tool result's
// structuredContent against the tool's outputSchema, and a host rejects a
// mismatch as -32602 "Structured content does not match the tool's output
// schema": a tool that works in our Go tests can still be broken for every
// user. Where these tests disagree with the mcp-go ones, these are right.

// tsPlan is what client.mjs runs; see the comment at its top.
type tsPlan struct {
	Command       string            `json:"command"`
	Args          []string          `json:"args"`
	Env           map[string]string `json:"env,omitempty"`
	Elicitation   bool              `json:"elicitation"`
	ElicitAnswers []tsAnswer        `json:"elicit_answers,omitempty"`
	Steps         []tsStep          `json:"steps"`
	TimeoutMS     int               `json:"timeout_ms,omitempty"` // per request
}

// tsAnswer is how the simulated user answers one elicitation: accept (with
// content), decline or cancel.
type tsAnswer struct {
	Action  string         `json:"action"`
	Content map[string]any `json:"content,omitempty"`
}

// tsStep is one request: listTools, call (Name, Arguments), listResources
// or readResource (URI); or parallel, whose Steps are sent all at once
// (see tsResult.Parallel).
type tsStep struct {
	Op        string         `json:"op"`
	Name      string         `json:"name,omitempty"`
	Arguments map[string]any `json:"arguments,omitempty"`
	URI       string         `json:"uri,omitempty"`
	Steps     []tsStep       `json:"steps,omitempty"`
	File      string         `json:"file,omitempty"` // barrier: see client.mjs
}

func (s tsStep) String() string {
	if s.Op != "call" {
		return strings.TrimSpace(s.Op + " " + s.URI)
	}
	args, _ := json.Marshal(s.Arguments)
	return fmt.Sprintf("call %s %s", s.Name, args)
}

// tsRun is what the official client saw.
type tsRun struct {
	Steps        []tsResult
	Elicitations []tsElicitation
	// Stdout is client.mjs's whole JSON document, Stderr the client's and
	// the server's log.
	Stdout, Stderr string
}

// tsResult is one step's outcome: OK with the SDK's returned object as raw
// JSON in Result (for gjson), or not OK with the error the SDK threw.
type tsResult struct {
	Op     string
	OK     bool
	Result string
	Error  *tsError
	// MaxMessageBytes is the longest JSON-RPC message the server wrote
	// while the step ran, in bytes as sent.
	MaxMessageBytes int
}

// tsError is a thrown error; Code is the JSON-RPC code of an McpError, 0
// for any other error.
type tsError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type tsElicitation struct {
	Message         string          `json:"message"`
	Mode            string          `json:"mode"`
	RequestedSchema json.RawMessage `json:"requestedSchema"`
	Answer          tsAnswer        `json:"answer"`
}

// Parallel is the outcomes of a parallel step's steps, in their order.
func (r tsResult) Parallel() []tsResult {
	var out []tsResult
	for _, s := range gjson.Parse(r.Result).Array() {
		res := tsResult{Op: s.Get("op").String(), OK: s.Get("ok").Bool(), Result: s.Get("result").Raw}
		if e := s.Get("error"); e.Exists() {
			res.Error = &tsError{Code: int(e.Get("code").Int()), Message: e.Get("message").String()}
		}
		out = append(out, res)
	}
	return out
}

// IsError is the tool result's isError.
func (r tsResult) IsError() bool { return gjson.Get(r.Result, "isError").Bool() }

// Structured is the tool result's structuredContent as raw JSON, "" when
// there is none.
func (r tsResult) Structured() string { return gjson.Get(r.Result, "structuredContent").Raw }

// Text joins the tool result's text content.
func (r tsResult) Text() string {
	var b strings.Builder
	for _, c := range gjson.Get(r.Result, "content").Array() {
		if c.Get("type").String() == "text" {
			b.WriteString(c.Get("text").String())
		}
	}
	return b.String()
}

// tsClientDir returns testsupport/tsclient, ready to run. It skips the test
// when node or the installed SDK is missing, except under CI=true, where a
// skipped official-client test would hide exactly the bugs it exists for.
func tsClientDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "testsupport", "tsclient"))
	if err != nil {
		t.Fatal(err)
	}
	missing := tsClientMissing(dir)
	if missing == "" {
		if installed, pinned := tsSDKVersions(dir); installed != pinned {
			// A stale node_modules would test another client than the one pinned.
			t.Fatalf("testsupport/tsclient has @modelcontextprotocol/sdk %s installed, package.json pins %s: run npm ci in testsupport/tsclient", installed, pinned)
		}
		return dir
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: the official-client test must run; run npm ci in testsupport/tsclient (%s)", missing)
	}
	t.Skipf("skipping the official TypeScript MCP client test: %s; run npm ci in testsupport/tsclient", missing)
	return ""
}

// tsClientMissing says what keeps the official client from running, "" when
// nothing does. In a fresh clone it installs the pinned client first (once
// per test binary), so that `go test ./...` alone runs these tests wherever
// node and npm are at hand.
func tsClientMissing(dir string) string {
	if _, err := exec.LookPath("node"); err != nil {
		return "node is not on PATH (install Node.js 20 or later)"
	}
	if installed, _ := tsSDKVersions(dir); installed != "" {
		return ""
	}
	tsInstall.Do(func() { tsInstallErr = npmCI(dir) })
	if installed, _ := tsSDKVersions(dir); installed != "" {
		return ""
	}
	missing := "the official MCP SDK is not installed (no " + filepath.Join(dir, "node_modules", "@modelcontextprotocol", "sdk") + ")"
	if tsInstallErr != nil {
		missing += "; npm ci failed: " + tsInstallErr.Error()
	}
	return missing
}

var (
	tsInstall    sync.Once
	tsInstallErr error
)

// npmCI installs testsupport/tsclient's locked dependencies.
func npmCI(dir string) error {
	if _, err := exec.LookPath("npm"); err != nil {
		return errors.New("npm is not on PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, tail(string(out), 2000))
	}
	return nil
}

// tsSDKVersions reads the installed SDK version ("" when absent) and the
// version package.json pins.
func tsSDKVersions(dir string) (installed, pinned string) {
	if b, err := os.ReadFile(filepath.Join(dir, "package.json")); err == nil {
		pinned = gjson.GetBytes(b, `dependencies.@modelcontextprotocol/sdk`).String()
	}
	if b, err := os.ReadFile(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "sdk", "package.json")); err == nil {
		installed = gjson.GetBytes(b, "version").String()
	}
	return installed, pinned
}

// tsClient runs the plan with the official client and returns what it saw.
// An empty Command is the binary under test. It fails the test when the
// client could not run or connect; a failed step is a result, for the test
// to judge.
func tsClient(t *testing.T, plan tsPlan) tsRun {
	t.Helper()
	run, err := tsClientRun(t, tsClientDir(t), plan)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// tsClientRun is tsClient for use from several goroutines at once: it
// reports failure as an error. dir is tsClientDir's answer.
func tsClientRun(t *testing.T, dir string, plan tsPlan) (tsRun, error) {
	if plan.Command == "" {
		plan.Command = bin
	}
	b, err := json.Marshal(plan)
	if err != nil {
		return tsRun{}, err
	}
	planFile := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(planFile, b, 0o600); err != nil {
		return tsRun{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "client.mjs", planFile)
	cmd.Dir = dir
	// The SDK passes the server only its default variables (HOME, PATH,
	// ...) and the plan's env, as hosts do; the key and the X402_MCP_
	// overrides are kept from node itself too.
	cmd.Env = hermeticEnv()
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	runErr := cmd.Run()
	run := tsRun{Stdout: stdout.String(), Stderr: stderr.String()}
	if runErr != nil {
		return run, fmt.Errorf("node client.mjs: %v (after %s)\nstdout:\n%s\nstderr:\n%s", runErr, time.Since(start).Round(time.Millisecond), run.Stdout, tail(run.Stderr, 8000))
	}
	var doc struct {
		Steps []struct {
			Op              string          `json:"op"`
			OK              bool            `json:"ok"`
			Result          json.RawMessage `json:"result"`
			Error           *tsError        `json:"error"`
			MaxMessageBytes int             `json:"max_message_bytes"`
		} `json:"steps"`
		Elicitations []tsElicitation `json:"elicitations"`
		Error        *tsError        `json:"error"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
		return run, fmt.Errorf("client.mjs printed no JSON document: %v\nstdout:\n%s\nstderr:\n%s", err, run.Stdout, tail(run.Stderr, 8000))
	}
	if doc.Error != nil {
		return run, fmt.Errorf("the official client could not connect: %d %s\nstderr:\n%s", doc.Error.Code, doc.Error.Message, tail(run.Stderr, 8000))
	}
	if len(doc.Steps) != len(plan.Steps) {
		return run, fmt.Errorf("client.mjs ran %d steps of %d\nstdout:\n%s", len(doc.Steps), len(plan.Steps), run.Stdout)
	}
	for _, s := range doc.Steps {
		run.Steps = append(run.Steps, tsResult{Op: s.Op, OK: s.OK, Result: string(s.Result), Error: s.Error, MaxMessageBytes: s.MaxMessageBytes})
	}
	run.Elicitations = doc.Elicitations
	t.Logf("official client: %d steps, %d elicitations in %s", len(run.Steps), len(run.Elicitations), time.Since(start).Round(time.Millisecond))
	return run, nil
}

// tsCall is one expected tool call: the step, whether the tool result is an
// error, and what else to check.
type tsCall struct {
	step    tsStep
	isError bool
	check   func(t *testing.T, r tsResult)
}

// checkCalls asserts that every call went through the official client
// without a protocol error (the output-schema mismatch shows up here) and
// with the expected isError, then runs its own check. results[i] answers
// calls[i].
func checkCalls(t *testing.T, calls []tsCall, results []tsResult) {
	t.Helper()
	for i, c := range calls {
		r := results[i]
		if !r.OK {
			t.Errorf("%s: the official client threw %d: %s", c.step, r.Error.Code, r.Error.Message)
			continue
		}
		if r.IsError() != c.isError {
			t.Errorf("%s: isError %v, want %v: %s", c.step, r.IsError(), c.isError, clipLine(r.Text(), 600))
			continue
		}
		if !c.isError && r.Structured() == "" {
			t.Errorf("%s: no structuredContent", c.step)
			continue
		}
		if c.check != nil {
			c.check(t, r)
		}
	}
}

// mustListTools returns the run's first step, which must be a successful
// listTools: without it the SDK validates no tool result.
func mustListTools(t *testing.T, run tsRun) tsResult {
	t.Helper()
	r := run.Steps[0]
	if r.Op != "listTools" {
		t.Fatalf("the plan starts with %s, not listTools", r.Op)
	}
	if !r.OK {
		t.Fatalf("listTools: %d %s", r.Error.Code, r.Error.Message)
	}
	return r
}

// tsDevnet starts the local network with a JSON-RPC endpoint and writes the
// config a host user would have after `x402-mcp devnet`: a funded key, the
// token, the network's RPC endpoint (for x402_wallet) and the facilitator
// as a discovery source (for x402_discover), with the given policy.
//
// extra routes are served beside localnet.DefaultRoutes.
func tsDevnet(t *testing.T, policyText string, extra ...localnet.Route) (*localnet.Network, string, common.Address) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := localnet.Start(ctx, localnet.NetworkConfig{RPC: true, Routes: append(localnet.DefaultRoutes(), extra...)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	key, payer, err := n.NewPayer(ctx, big.NewInt(1_000_000))
	if err != nil {
		t.Fatal(err)
	}
	tok := tokens.Token{Network: n.Chain.Network(), Address: n.Chain.TokenAddress(), Name: n.Chain.TokenName(), Version: n.Chain.TokenVersion()}
	cfg, err := writeDemoConfig(t.TempDir(), signer.NewKey(key), tok, policyText, n.RPCURL, n.FacilitatorURL)
	if err != nil {
		t.Fatal(err)
	}
	return n, cfg, payer
}

// usdIs reports whether a USD amount the server wrote equals want,
// whatever its trailing zeros.
func usdIs(t *testing.T, got, want string) bool {
	t.Helper()
	g, err := policy.ParseUSD(got)
	if err != nil {
		t.Errorf("USD amount %q: %v", got, err)
		return false
	}
	w, err := policy.ParseUSD(want)
	if err != nil {
		t.Fatal(err)
	}
	return g.Cmp(w) == 0
}

func chainBalance(t *testing.T, n *localnet.Network, addr common.Address) *big.Int {
	t.Helper()
	b, err := n.Chain.BalanceOf(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOfficialClient drives every tool and resource with the official
// TypeScript client, as a host would, and checks the chain.
func TestOfficialClient(t *testing.T) {
	tsClientDir(t)
	n, cfg, payer := tsDevnet(t, "max_per_payment = \"0.10\"\n")
	payer0, payee0 := chainBalance(t, n, payer), chainBalance(t, n, n.PayTo)
	weather, joke := n.APIURL+"/v2/weather?city=Paris", n.APIURL+"/v1/joke"
	free, report := n.APIURL+"/free/status", n.APIURL+"/v2/report"

	var walletBalance string // what x402_wallet read, compared with the chain below
	calls := []tsCall{
		{step: tsStep{Op: "call", Name: "x402_quote", Arguments: map[string]any{"url": weather}}, check: func(t *testing.T, r tsResult) {
			s := r.Structured()
			if gjson.Get(s, "status").Int() != 402 || gjson.Get(s, "free").Bool() || gjson.Get(s, "verdict").String() != "allowed" ||
				gjson.Get(s, fmt.Sprintf("options.%d.amount_atomic", gjson.Get(s, "chosen").Int())).String() != "10000" {
				t.Errorf("quote %s: %s", weather, s)
			}
		}},
		{step: tsStep{Op: "call", Name: "x402_quote", Arguments: map[string]any{"url": free}}, check: func(t *testing.T, r tsResult) {
			if s := r.Structured(); !gjson.Get(s, "free").Bool() || gjson.Get(s, "verdict").String() != "free" {
				t.Errorf("quote %s: %s", free, s)
			}
		}},
		{step: tsStep{Op: "call", Name: "x402_fetch", Arguments: map[string]any{"url": weather}}, check: func(t *testing.T, r tsResult) {
			s := r.Structured()
			if gjson.Get(s, "status").Int() != 200 || !gjson.Get(s, "payment.settled").Bool() || gjson.Get(s, "payment.amount_atomic").String() != "10000" ||
				gjson.Get(s, "payment.payer").String() != payer.Hex() || gjson.Get(s, "payment.transaction").String() == "" {
				t.Errorf("paid fetch %s: %s", weather, s)
			}
		}},
		{step: tsStep{Op: "call", Name: "x402_fetch", Arguments: map[string]any{"url": free}}, check: func(t *testing.T, r tsResult) {
			if s := r.Structured(); gjson.Get(s, "status").Int() != 200 || gjson.Get(s, "payment").Exists() {
				t.Errorf("free fetch %s: %s", free, s)
			}
		}},
		{step: tsStep{Op: "call", Name: "x402_fetch", Arguments: map[string]any{"url": report}}, isError: true, check: func(t *testing.T, r tsResult) {
			if !strings.Contains(r.Text(), "per-payment cap") {
				t.Errorf("fetch %s above the cap: %s", report, r.Text())
			}
		}},
		{step: tsStep{Op: "call", Name: "x402_fetch", Arguments: map[string]any{"url": "not a url"}}, isError: true},
		// The facilitator's discovery listing: entries carry the listing's
		// input description (how_to_call).
		{step: tsStep{Op: "call", Name: "x402_discover", Arguments: map[string]any{}}, check: func(t *testing.T, r tsResult) {
			if res := gjson.Get(r.Structured(), "results").Array(); len(res) == 0 || !strings.HasPrefix(res[0].Get("url").String(), n.APIURL) {
				t.Errorf("discover from the facilitator: %s", r.Structured())
			}
		}},
		// Probed URLs, merged into the listing.
		{step: tsStep{Op: "call", Name: "x402_discover", Arguments: map[string]any{"probe": []string{weather, joke}, "query": "weather"}}, check: func(t *testing.T, r tsResult) {
			found := false
			for _, e := range gjson.Get(r.Structured(), "results").Array() {
				found = found || slices.ContainsFunc(e.Get("sources").Array(), func(s gjson.Result) bool { return s.String() == "probe" })
			}
			if !found {
				t.Errorf("discover with probe: no probed result: %s", r.Structured())
			}
		}},
		{step: tsStep{Op: "call", Name: "x402_wallet", Arguments: map[string]any{}}, check: func(t *testing.T, r tsResult) {
			s := r.Structured()
			if gjson.Get(s, "payer").String() != payer.Hex() {
				t.Errorf("wallet payer: %s", s)
			}
			walletBalance = gjson.Get(s, "balances.0.balance_atomic").String()
		}},
		{step: tsStep{Op: "call", Name: "x402_spending", Arguments: map[string]any{"recent": 5}}, check: func(t *testing.T, r tsResult) {
			s := r.Structured()
			if !usdIs(t, gjson.Get(s, "max_per_payment_usd").String(), "0.10") || gjson.Get(s, "recent.0.state").String() != "settled" || len(gjson.Get(s, "recent").Array()) != 1 {
				t.Errorf("spending: %s", s)
			}
		}},
	}
	// Hosts list the tools first; only then does the SDK validate results.
	steps := []tsStep{{Op: "listTools"}}
	for _, c := range calls {
		steps = append(steps, c.step)
	}
	// Every resource the server lists is read: the test fails when a new
	// one is listed and not read here.
	resources := []string{"x402://policy", "x402://receipts/recent"}
	steps = append(steps, tsStep{Op: "listResources"})
	for _, uri := range resources {
		steps = append(steps, tsStep{Op: "readResource", URI: uri})
	}

	run := tsClient(t, tsPlan{Args: []string{"serve", "--config", cfg}, Steps: steps})

	list := mustListTools(t, run)
	var names []string
	for _, tool := range gjson.Get(list.Result, "tools").Array() {
		names = append(names, tool.Get("name").String())
		if !tool.Get("outputSchema").Exists() {
			t.Errorf("tool %s has no outputSchema", tool.Get("name"))
		}
	}
	for _, want := range []string{"x402_quote", "x402_fetch", "x402_discover", "x402_wallet", "x402_spending"} {
		if !slices.Contains(names, want) {
			t.Errorf("tools/list lacks %s: %v", want, names)
		}
	}

	checkCalls(t, calls, run.Steps[1:1+len(calls)])

	rest := run.Steps[1+len(calls):]
	if !rest[0].OK {
		t.Fatalf("listResources: %d %s", rest[0].Error.Code, rest[0].Error.Message)
	}
	var listed []string
	for _, r := range gjson.Get(rest[0].Result, "resources").Array() {
		listed = append(listed, r.Get("uri").String())
	}
	slices.Sort(listed)
	if !slices.Equal(listed, resources) {
		t.Errorf("resources listed %v, the test reads %v", listed, resources)
	}
	for i, uri := range resources {
		r := rest[1+i]
		if !r.OK {
			t.Errorf("readResource %s: %d %s", uri, r.Error.Code, r.Error.Message)
			continue
		}
		c := gjson.Get(r.Result, "contents.0")
		if c.Get("uri").String() != uri || c.Get("text").String() == "" {
			t.Errorf("readResource %s: %s", uri, r.Result)
		}
	}
	if got := gjson.Get(rest[1].Result, "contents.0.text").String(); !strings.Contains(got, "0.10 USD") {
		t.Errorf("x402://policy does not state the cap: %q", got)
	}
	if got := gjson.Get(rest[2].Result, "contents.0.text").String(); !gjson.Valid(got) || gjson.Get(got, "0.state").String() != "settled" {
		t.Errorf("x402://receipts/recent: %q", got)
	}

	// Probing alone, with no discovery source configured: the results come
	// only from the 402s the probed URLs answer.
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	before, _, ok := strings.Cut(string(text), "\n[discovery]")
	if !ok {
		t.Fatalf("%s configures no [discovery]:\n%s", cfg, text)
	}
	probeCfg := writePrivate(t, filepath.Join(filepath.Dir(cfg), "probe-only.toml"), before, 0o600)
	probeCall := []tsCall{{step: tsStep{Op: "call", Name: "x402_discover", Arguments: map[string]any{"probe": []string{weather, joke, free}}}, check: func(t *testing.T, r tsResult) {
		res := gjson.Get(r.Structured(), "results").Array()
		if len(res) != 3 || res[0].Get("price_atomic").String() != "10000" || res[1].Get("price_atomic").String() != "20000" || res[0].Get("verdict").String() != "allowed" {
			t.Errorf("discover by probing only: %s", r.Structured())
		}
	}}}
	probeRun := tsClient(t, tsPlan{Args: []string{"serve", "--config", probeCfg}, Steps: []tsStep{{Op: "listTools"}, probeCall[0].step}})
	mustListTools(t, probeRun)
	checkCalls(t, probeCall, probeRun.Steps[1:])

	// Exactly the one paid fetch moved money: the refused and the free ones
	// moved nothing.
	payer1, payee1 := chainBalance(t, n, payer), chainBalance(t, n, n.PayTo)
	if d := new(big.Int).Sub(payer0, payer1); d.Int64() != 10000 {
		t.Errorf("payer spent %s atomic units, want 10000 (0.01)", d)
	}
	if d := new(big.Int).Sub(payee1, payee0); d.Int64() != 10000 {
		t.Errorf("payee received %s atomic units, want 10000", d)
	}
	if walletBalance != payer1.String() {
		t.Errorf("x402_wallet showed %s atomic units, the chain has %s", walletBalance, payer1)
	}
	if t.Failed() {
		t.Logf("server and client log:\n%s", tail(run.Stderr, 6000))
	}
}

// TestOfficialClientApproval pays above the approval threshold through the
// official client: the server asks the human with an elicitation (the
// legacy bridge of mcp-go's multi round-trip requests), and only an accept
// moves money. A client that declares no elicitation, or dismisses the
// question unanswered, is offered the out-of-band approval.
func TestOfficialClientApproval(t *testing.T) {
	tsClientDir(t)
	n, cfg, payer := tsDevnet(t, "max_per_payment = \"0.10\"\napproval_above = \"0.025\"\n")
	payer0, payee0 := chainBalance(t, n, payer), chainBalance(t, n, n.PayTo)
	summarize := map[string]any{"url": n.APIURL + "/v2/summarize", "method": "POST",
		"headers": map[string]any{"Content-Type": "application/json"}, "body": `{"text":"Agents pay per request with x402."}`}
	summarizeStep := tsStep{Op: "call", Name: "x402_fetch", Arguments: summarize}
	refused := func(want string) func(t *testing.T, r tsResult) {
		return func(t *testing.T, r tsResult) {
			if !strings.Contains(r.Text(), want) || !strings.Contains(r.Text(), "Nothing was paid") {
				t.Errorf("refusal lacks %q: %s", want, r.Text())
			}
		}
	}
	// Where the human could not be asked, the result offers the way out of
	// band: a pending approval in the ledger and the commands to decide it.
	outOfBand := func(want string) func(t *testing.T, r tsResult) {
		return func(t *testing.T, r tsResult) {
			s := r.Structured()
			id := gjson.Get(s, "approval.id").String()
			if !strings.Contains(r.Text(), want) || !strings.Contains(r.Text(), "Nothing was signed or paid") || gjson.Get(s, "verdict").String() != "needs_approval" ||
				!strings.HasPrefix(id, "ap-") || !strings.Contains(gjson.Get(s, "approval.approve_command").String(), "approve "+id+" --config") ||
				gjson.Get(s, "approval.amount_atomic").String() != "30000" {
				t.Errorf("out-of-band offer lacks %q or the approval: %s\n%s", want, r.Text(), s)
			}
		}
	}

	calls := []tsCall{
		// Below the threshold: paid without asking.
		{step: tsStep{Op: "call", Name: "x402_fetch", Arguments: map[string]any{"url": n.APIURL + "/v2/weather?city=Rome"}}, check: func(t *testing.T, r tsResult) {
			if gjson.Get(r.Structured(), "payment.amount_atomic").String() != "10000" {
				t.Errorf("fetch below the threshold: %s", r.Structured())
			}
		}},
		{step: summarizeStep, check: func(t *testing.T, r tsResult) {
			if s := r.Structured(); !gjson.Get(s, "payment.settled").Bool() || gjson.Get(s, "payment.amount_atomic").String() != "30000" {
				t.Errorf("fetch approved by the human: %s", s)
			}
		}},
		{step: summarizeStep, isError: true, check: refused("did not approve the payment (decline)")},
		{step: summarizeStep, isError: true, check: outOfBand("dismissed without an answer")},
		{step: summarizeStep, isError: true, check: refused("declined the payment")},
	}
	answers := []tsAnswer{
		{Action: "accept", Content: map[string]any{"approve": true}},
		{Action: "decline"},
		{Action: "cancel"},
		{Action: "accept", Content: map[string]any{"approve": false}},
	}
	steps := []tsStep{{Op: "listTools"}}
	for _, c := range calls {
		steps = append(steps, c.step)
	}
	run := tsClient(t, tsPlan{Args: []string{"serve", "--config", cfg}, Elicitation: true, ElicitAnswers: answers, Steps: steps})
	mustListTools(t, run)
	checkCalls(t, calls, run.Steps[1:])
	if len(run.Elicitations) != len(answers) {
		t.Errorf("the human was asked %d times, want %d (once per payment above the threshold)", len(run.Elicitations), len(answers))
	}
	for _, e := range run.Elicitations {
		if !strings.Contains(e.Message, "0.03") || !strings.Contains(e.Message, "/v2/summarize") || e.Mode != "form" ||
			gjson.GetBytes(e.RequestedSchema, "properties.approve.type").String() != "boolean" {
			t.Errorf("elicitation shown to the human: %q mode %q schema %s", e.Message, e.Mode, e.RequestedSchema)
		}
	}

	// A host without elicitation is not asked: the approval goes out of
	// band.
	noElicit := []tsCall{{step: summarizeStep, isError: true, check: outOfBand("cannot ask them directly")}}
	run2 := tsClient(t, tsPlan{Args: []string{"serve", "--config", cfg}, Steps: []tsStep{{Op: "listTools"}, summarizeStep}})
	mustListTools(t, run2)
	checkCalls(t, noElicit, run2.Steps[1:])
	if len(run2.Elicitations) != 0 {
		t.Errorf("a client without elicitation was asked %d times", len(run2.Elicitations))
	}

	// 0.01 below the threshold plus the one accepted 0.03.
	if d := new(big.Int).Sub(payer0, chainBalance(t, n, payer)); d.Int64() != 40000 {
		t.Errorf("payer spent %s atomic units, want 40000 (0.01 + the approved 0.03)", d)
	}
	if d := new(big.Int).Sub(chainBalance(t, n, n.PayTo), payee0); d.Int64() != 40000 {
		t.Errorf("payee received %s atomic units, want 40000", d)
	}
	if t.Failed() {
		t.Logf("server and client log:\n%s\n%s", tail(run.Stderr, 5000), tail(run2.Stderr, 3000))
	}
}
