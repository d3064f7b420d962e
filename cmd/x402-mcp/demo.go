package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/tidwall/gjson"

	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/signer"
	"github.com/x402-mcp/x402-mcp/tokens"
)

// demoFunding is what the demo payer starts with: 5 USDC.
var demoFunding = big.NewInt(5_000_000)

// demo runs the local x402 network in-process, starts this binary's MCP
// server over stdio as a subprocess, and drives it with a real MCP client,
// printing what happens and checking the balances on the chain.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("v", false, "show the MCP server's log")
	pos, err := parseFlags(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos, 0, 0, stderr); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	d := &demoRun{out: stdout, start: time.Now()}
	var serverLog syncBuffer
	logSink := io.Writer(&serverLog)
	if *verbose {
		logSink = stderr
	}
	err = d.run(ctx, logSink)
	if err != nil {
		if !*verbose && serverLog.Len() > 0 {
			fmt.Fprintf(stderr, "--- MCP server log ---\n%s", tail(serverLog.String(), 4000))
		}
		return fmt.Errorf("demo failed: %w", err)
	}
	return nil
}

type demoRun struct {
	out   io.Writer
	start time.Time
	net   *localnet.Network
	token tokens.Token
	mcp   *client.Client
	asked int
}

func (d *demoRun) step(format string, a ...any) {
	fmt.Fprintf(d.out, "\n▸ "+format+"\n", a...)
}

func (d *demoRun) line(format string, a ...any) {
	fmt.Fprintf(d.out, "  "+format+"\n", a...)
}

// explain says in plain words what a term of the transcript means, where
// it first appears, for a reader who does not know x402.
func (d *demoRun) explain(text string) {
	fmt.Fprintf(d.out, "    (%s)\n", text)
}

func (d *demoRun) run(ctx context.Context, serverLog io.Writer) error {
	fmt.Fprintln(d.out, "x402-mcp demo: an agent pays for HTTP APIs on a local x402 network (no real money, no internet)")
	fmt.Fprintln(d.out, "x402 revives HTTP status 402 \"Payment Required\": a server answers an unpaid request with its price; the")
	fmt.Fprintln(d.out, "client signs a payment in a stablecoin (USDC, 1 USDC = 1 US dollar) and repeats the request with it.")

	net, err := localnet.Start(ctx, localnet.NetworkConfig{RPC: true})
	if err != nil {
		return fmt.Errorf("starting the local network: %w", err)
	}
	defer net.Close()
	d.net = net
	d.token = tokens.Token{Network: net.Chain.Network(), ChainID: net.Chain.ChainID(), Address: net.Chain.TokenAddress(),
		Symbol: "USDC", Name: net.Chain.TokenName(), Version: net.Chain.TokenVersion(), Decimals: 6, Currency: "USD"}
	payerKey, payer, err := net.NewPayer(ctx, demoFunding)
	if err != nil {
		return fmt.Errorf("funding the payer: %w", err)
	}

	d.step("Local x402 network")
	d.line("chain        %s (in-memory go-ethereum chain), token %s %s", d.token.Network, d.token.Symbol, d.token.Address.Hex())
	d.explain(fmt.Sprintf("%s names the chain: eip155 means an Ethereum-style chain, %s is its id; a real payment would be on Base, eip155:8453", d.token.Network, d.token.ChainID))
	d.line("JSON-RPC     %s", net.RPCURL)
	d.line("facilitator  %s", net.FacilitatorURL)
	d.explain("the facilitator checks a signed payment and settles it on the chain for the server; it also lists priced APIs")
	d.line("paid API     %s", net.APIURL)
	d.line("payer        %s (funded with %s USDC of play money)", payer.Hex(), tokens.FormatUnits(demoFunding, 6))
	d.line("payee        %s (the paid API's address)", net.PayTo.Hex())

	dir, err := os.MkdirTemp("", "x402-mcp-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// The server records the demo ledger's identity in the user's state
	// directory (see ledger.IDFilePath); the ledger goes, so does that.
	if idFile, err := ledger.IDFilePath(filepath.Join(dir, "ledger.db")); err == nil {
		defer os.Remove(idFile)
	}
	cfgPath, err := writeDemoConfig(dir, signer.NewKey(payerKey), d.token, fmt.Sprintf(demoPolicy, d.token.Network), net.RPCURL, net.FacilitatorURL)
	if err != nil {
		return err
	}
	toolsURL, stopTools, err := startDemoUpstream(net, cfgPath)
	if err != nil {
		return err
	}
	defer stopTools()
	d.line("paid MCP     %s (upstream \"tools\": x402 over MCP)", toolsURL)
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this program: %w", err)
	}
	c, err := startStdioClient(ctx, exe, cfgPath, serverLog, client.WithElicitationHandler(demoHuman{d}))
	if err != nil {
		return err
	}
	defer c.Close()
	d.mcp = c
	tools, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		return fmt.Errorf("listing tools: %w", err)
	}
	names := make([]string, 0, len(tools.Tools))
	for _, t := range tools.Tools {
		names = append(names, t.Name)
	}
	d.step("MCP server")
	d.line("started `x402-mcp serve --config %s` over stdio", filepath.Base(cfgPath))
	d.line("tools: %s", strings.Join(names, ", "))
	d.line("operator's policy: at most 0.10 USDC a payment, ask the human above 0.025 USDC, at most 0.07 USDC a day")
	d.explain("the operator is the person who set x402-mcp up; the agent cannot change this policy")

	if err := d.discover(ctx); err != nil {
		return err
	}

	weather := d.net.APIURL + "/v2/weather?city=Lisbon"
	host := strings.TrimPrefix(d.net.APIURL, "http://")
	d.step("x402_quote GET %s/v2/weather?city=Lisbon", host)
	q, err := d.call(ctx, "x402_quote", map[string]any{"url": weather})
	if err != nil {
		return err
	}
	if q.IsError {
		return fmt.Errorf("x402_quote failed: %s", resultText(q))
	}
	qs := structuredJSON(q)
	chosen := gjson.Get(qs, fmt.Sprintf("options.%d", gjson.Get(qs, "chosen").Int()))
	d.line("status %d, verdict %q (cap %s USDC)", gjson.Get(qs, "status").Int(), gjson.Get(qs, "verdict").String(), gjson.Get(qs, "limit_usd").String())
	d.explain("status 402 is the server asking to be paid; verdict \"allowed\" means the policy would pay it without asking anyone")
	d.line("would pay %s %s (%s atomic units) on %s to %s", chosen.Get("amount"), chosen.Get("token"), chosen.Get("amount_atomic"), chosen.Get("network"), chosen.Get("pay_to"))
	d.explain("atomic units are the token's smallest unit: USDC has 6 decimals, so 0.01 USDC is 10000; nothing is paid by a quote")

	payerBefore, payeeBefore, err := d.balances(ctx, payer)
	if err != nil {
		return err
	}
	d.step("Balances before, read from the chain")
	d.line("payer %s USDC, payee %s USDC", tokens.FormatUnits(payerBefore, 6), tokens.FormatUnits(payeeBefore, 6))

	paid := new(big.Int)
	for _, f := range []struct {
		title string
		args  map[string]any
	}{
		{"GET " + host + "/v2/weather?city=Lisbon (0.01 USDC, x402 version 2)", map[string]any{"url": weather}},
		{"GET " + host + "/v1/joke (0.02 USDC, x402 version 1)", map[string]any{"url": d.net.APIURL + "/v1/joke"}},
		{"POST " + host + "/v2/summarize (0.03 USDC: above the approval threshold)", map[string]any{"url": d.net.APIURL + "/v2/summarize", "method": "POST",
			"headers": map[string]any{"Content-Type": "application/json"}, "body": `{"text":"Agents pay per request with x402. No accounts are needed."}`}},
	} {
		d.step("x402_fetch %s", f.title)
		r, err := d.call(ctx, "x402_fetch", f.args)
		if err != nil {
			return err
		}
		if r.IsError {
			return fmt.Errorf("x402_fetch %s failed: %s", f.args["url"], resultText(r))
		}
		s := structuredJSON(r)
		d.line("%d %s  %s", gjson.Get(s, "status").Int(), gjson.Get(s, "content_type"), clipLine(gjson.Get(s, "body").String(), 90))
		p := gjson.Get(s, "payment")
		if !p.Exists() || p.Get("transaction").String() == "" {
			return fmt.Errorf("x402_fetch %s returned no settled payment", f.args["url"])
		}
		d.line("paid %s %s to %s, transaction %s", p.Get("amount"), p.Get("token"), p.Get("pay_to"), p.Get("transaction"))
		if paid.Sign() == 0 {
			d.explain("the transaction is the payment's record on the chain: the facilitator settled it, and the server then answered")
		}
		amt, ok := new(big.Int).SetString(p.Get("amount_atomic").String(), 10)
		if !ok {
			return fmt.Errorf("x402_fetch %s: unreadable amount", f.args["url"])
		}
		paid.Add(paid, amt)
	}
	if d.asked != 1 {
		return fmt.Errorf("the human was asked %d times, want once", d.asked)
	}
	amt, err := d.paidTool(ctx)
	if err != nil {
		return err
	}
	paid.Add(paid, amt)

	for _, f := range []struct{ title, url, want string }{
		{"GET " + host + "/v2/report (0.50 USDC: above the per-payment cap)", d.net.APIURL + "/v2/report", "per-payment cap"},
		{"GET " + host + "/v1/fx (0.005 USDC: the daily budget is spent)", d.net.APIURL + "/v1/fx?base=EUR&quote=USD", "daily budget"},
	} {
		d.step("x402_fetch %s", f.title)
		r, err := d.call(ctx, "x402_fetch", map[string]any{"url": f.url})
		if err != nil {
			return err
		}
		text := resultText(r)
		if !r.IsError || !strings.Contains(text, f.want) {
			return fmt.Errorf("x402_fetch %s was not refused for its %s: %s", f.url, f.want, text)
		}
		d.line("refused: %s", text)
	}

	d.step("x402_spending")
	sp, err := d.call(ctx, "x402_spending", map[string]any{"recent": 5})
	if err != nil {
		return err
	}
	ss := structuredJSON(sp)
	for _, b := range gjson.Get(ss, "budgets").Array() {
		if b.Get("limit_usd").String() != "" {
			d.line("%s: %s USDC spent, %s USDC left of %s", b.Get("name"), b.Get("spent_usd"), b.Get("left_usd"), b.Get("limit_usd"))
		} else {
			d.line("%s: %d of %d", b.Get("name"), b.Get("count").Int(), b.Get("max_count").Int())
		}
	}
	d.line("%d payments in the ledger, latest %s", len(gjson.Get(ss, "recent").Array()), gjson.Get(ss, "recent.0.state"))

	payerAfter, payeeAfter, err := d.balances(ctx, payer)
	if err != nil {
		return err
	}
	d.step("Balances after, read from the chain")
	spent := new(big.Int).Sub(payerBefore, payerAfter)
	got := new(big.Int).Sub(payeeAfter, payeeBefore)
	d.line("payer %s USDC (−%s), payee %s USDC (+%s)", tokens.FormatUnits(payerAfter, 6), tokens.FormatUnits(spent, 6),
		tokens.FormatUnits(payeeAfter, 6), tokens.FormatUnits(got, 6))
	if spent.Cmp(paid) != 0 || got.Cmp(paid) != 0 {
		return fmt.Errorf("balances moved by %s (payer) and %s (payee), but the receipts add up to %s atomic units", spent, got, paid)
	}
	d.line("✓ both moved by exactly the %s USDC the receipts show; the refused payments moved nothing", tokens.FormatUnits(paid, 6))
	fmt.Fprintf(d.out, "\nDone in %.1fs.\n", time.Since(d.start).Seconds())
	return nil
}

// demoHuman stands in for the person at the MCP host: it prints the
// approval question the server asks and approves.
type demoHuman struct{ d *demoRun }

func (h demoHuman) Elicit(_ context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	h.d.asked++
	h.d.line("x402-mcp asks the human (played by this demo, which approves):")
	for _, l := range strings.Split(req.Params.Message, "\n") {
		h.d.line("  │ %s", l)
	}
	h.d.line("the simulated human approves")
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{
		Action:  mcp.ElicitationResponseActionAccept,
		Content: map[string]any{"approve": true},
	}}, nil
}

// discover asks the server for priced endpoints, as an agent would.
func (d *demoRun) discover(ctx context.Context) error {
	d.step("x402_discover (the facilitator's discovery listing and the upstream's priced tools, with the policy's pre-verdict)")
	r, err := d.call(ctx, "x402_discover", map[string]any{})
	if err != nil {
		return err
	}
	if r.IsError {
		return fmt.Errorf("x402_discover failed: %s", resultText(r))
	}
	results := gjson.Get(structuredJSON(r), "results").Array()
	if len(results) == 0 {
		return errors.New("x402_discover found nothing on the local network")
	}
	tw := tabwriter.NewWriter(d.out, 0, 0, 2, ' ', 0)
	for _, e := range results {
		what := strings.TrimPrefix(e.Get("url").String(), "http://") // host and path
		if t := e.Get("tool").String(); t != "" {
			what = t // an upstream MCP tool
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s %s\t%s\t%s\n", e.Get("method"), what,
			e.Get("price"), e.Get("token"), e.Get("verdict"), clipLine(e.Get("description").String(), 48))
	}
	return tw.Flush()
}

func (d *demoRun) balances(ctx context.Context, payer common.Address) (*big.Int, *big.Int, error) {
	a, err := d.net.Chain.BalanceOf(ctx, payer)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the payer's balance: %w", err)
	}
	b, err := d.net.Chain.BalanceOf(ctx, d.net.PayTo)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the payee's balance: %w", err)
	}
	return a, b, nil
}

func (d *demoRun) call(ctx context.Context, name string, args map[string]any) (*mcp.CallToolResult, error) {
	r, err := d.mcp.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: name, Arguments: args}})
	if err != nil {
		return nil, fmt.Errorf("calling %s: %w", name, err)
	}
	return r, nil
}

// demoPolicy is the operator's policy in the demo: small caps, a human
// asked above 0.025 USD, and a daily budget the demo runs out of.
const demoPolicy = `# written by x402-mcp demo
max_per_payment = "0.10"
approval_above = "0.025"
networks = [%q]

[budget]
day = "0.07"
`

// writeDemoConfig writes a key file (0600), a policy file and a config
// naming them, the ledger, the local token, and when given the chain's
// JSON-RPC endpoint and the facilitator to discover from.
func writeDemoConfig(dir string, key *signer.Key, t tokens.Token, policyText, rpcURL, facilitatorURL string) (string, error) {
	if err := key.WriteHexFile(filepath.Join(dir, "payer.key")); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "policy.toml"), []byte(policyText), 0o600); err != nil {
		return "", err
	}
	cfg := fmt.Sprintf(`# written by x402-mcp demo
policy_file = "policy.toml"
ledger = "ledger.db"

[wallet]
key_file = "payer.key"

[[tokens]]
network = %q
address = %q
symbol = "USDC"
name = %q
version = %q
decimals = 6
currency = "USD"

# The local network's servers listen on loopback, which x402-mcp refuses
# to reach unless allowed.
[http]
allow_private = ["127.0.0.1"]
`, t.Network, t.Address.Hex(), t.Name, t.Version)
	if rpcURL != "" {
		cfg += fmt.Sprintf("\n[[networks]]\nid = %q\nrpc_url = %q\n", t.Network, rpcURL)
	}
	if facilitatorURL != "" {
		cfg += fmt.Sprintf("\n[discovery]\nfacilitators = [%q]\n", facilitatorURL)
	}
	p := filepath.Join(dir, "config.toml")
	return p, os.WriteFile(p, []byte(cfg), 0o600)
}

// startStdioClient starts `exe serve --config cfg` and initialises an MCP
// session with it. The child gets no X402_PRIVATE_KEY and no X402_MCP_
// overrides from our environment: everything it uses comes from the
// config, never from the operator's real key, ledger or policy.
func startStdioClient(ctx context.Context, exe, cfg string, stderr io.Writer, opts ...client.ClientOption) (*client.Client, error) {
	env := make([]string, 0, len(os.Environ()))
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, signer.EnvPrivateKey+"=") && !strings.HasPrefix(e, "X402_MCP_") {
			env = append(env, e)
		}
	}
	t := transport.NewStdioWithOptions(exe, nil, []string{"serve", "--config", cfg},
		transport.WithCommandFunc(func(ctx context.Context, command string, _ []string, args []string) (*exec.Cmd, error) {
			cmd := exec.CommandContext(ctx, command, args...)
			cmd.Env = env
			return cmd, nil
		}),
		transport.WithCommandStderrWriter(stderr),
	)
	if err := t.Start(ctx); err != nil {
		return nil, fmt.Errorf("starting the MCP server: %w", err)
	}
	c := client.NewClient(t, opts...)
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "x402-mcp-demo", Version: buildVersion()}
	if _, err := c.Initialize(ctx, init); err != nil {
		c.Close()
		return nil, fmt.Errorf("initialising the MCP session: %w", err)
	}
	return c, nil
}

func resultText(r *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range r.Content {
		if t, ok := c.(mcp.TextContent); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

func structuredJSON(r *mcp.CallToolResult) string {
	if r.StructuredContent != nil {
		if b, err := json.Marshal(r.StructuredContent); err == nil {
			return string(b)
		}
	}
	return resultText(r)
}

func clipLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len([]rune(s)) > n {
		return string([]rune(s)[:n]) + "…"
	}
	return s
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// syncBuffer collects the server's stderr, written by the client's drain
// goroutine while the demo may read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
