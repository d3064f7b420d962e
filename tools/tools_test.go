package tools

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/tidwall/gjson"

	"github.com/x402-mcp/x402-mcp/catalog"
	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/pay"
	"github.com/x402-mcp/x402-mcp/policy"
	"github.com/x402-mcp/x402-mcp/signer"
	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/upstream"
	"github.com/x402-mcp/x402-mcp/wallet"
)

var update = flag.Bool("update", false, "rewrite the tool schema snapshots in testdata/toolsnaps, and schemas.json")

type fixture struct {
	net  *localnet.Network
	mcp  *client.Client
	srv  *server.MCPServer
	addr string
}

// start runs the local network and an in-process MCP session with our
// server; payments are real, on the simulated chain.
func start(t *testing.T) *fixture {
	return startWith(t, policy.Default())
}

func startWith(t *testing.T, pol policy.Policy, opts ...client.ClientOption) *fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := localnet.Start(ctx, localnet.NetworkConfig{RPC: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	key, addr, err := n.NewPayer(ctx, big.NewInt(1_000_000))
	if err != nil {
		t.Fatal(err)
	}
	reg := tokens.Builtin()
	if err := reg.Add(tokens.Token{Network: n.Chain.Network(), Address: n.Chain.TokenAddress(), Symbol: "USDC",
		Name: n.Chain.TokenName(), Version: n.Chain.TokenVersion(), Decimals: 6, Currency: "USD"}); err != nil {
		t.Fatal(err)
	}
	led, err := ledger.Open(filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	pc, err := pay.New(pay.Config{Registry: reg, Policy: pol, Signer: signer.New(signer.NewKey(key)), Ledger: led,
		AllowPrivate: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.New(catalog.Config{Facilitators: []string{n.FacilitatorURL}})
	if err != nil {
		t.Fatal(err)
	}
	w := wallet.New(reg, []wallet.Network{{ID: n.Chain.Network(), RPCURL: n.RPCURL}})
	t.Cleanup(w.Close)
	srv, err := NewServer(Deps{Pay: pc, Catalog: cat, Wallet: w}, "test")
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.NewInProcessClientWithOptions(srv, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "test", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	return &fixture{net: n, mcp: c, srv: srv, addr: addr.Hex()}
}

func (f *fixture) call(t *testing.T, name string, args map[string]any) (*mcp.CallToolResult, string) {
	t.Helper()
	r, err := f.mcp.CallTool(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: name, Arguments: args}})
	if err != nil {
		t.Fatalf("%s: protocol error %v", name, err)
	}
	var text strings.Builder
	for _, c := range r.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			text.WriteString(tc.Text)
		}
	}
	if r.StructuredContent != nil {
		b, _ := json.Marshal(r.StructuredContent)
		if r.IsError {
			// A refusal: the words the agent reads, then the same facts
			// for programs.
			return r, text.String() + "\n" + string(b)
		}
		return r, string(b)
	}
	return r, text.String()
}

func TestToolSchemaSnapshots(t *testing.T) {
	// The local network's paid MCP server as upstream "paid": its tools
	// as re-exported are what the model sees too.
	for _, st := range Tools(Deps{Upstreams: []*upstream.Server{testUpstream(t)}}) {
		got, err := json.MarshalIndent(st.Tool, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, '\n')
		path := filepath.Join("testdata", "toolsnaps", st.Tool.Name+".json")
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./tools -update to create it)", err)
		}
		if string(got) != string(want) {
			t.Errorf("tool %s changed what the model sees; review and run go test ./tools -update\n--- got\n%s", st.Tool.Name, got)
		}
	}
}

// TestAnnotationInvariants: a tool that can spend is marked destructive and
// not read-only; every other tool is read-only.
func TestAnnotationInvariants(t *testing.T) {
	paying := map[string]bool{"x402_fetch": true}
	openWorld := map[string]bool{"x402_fetch": true, "x402_quote": true, "x402_discover": true, "x402_wallet": true}
	for _, st := range Tools(Deps{Upstreams: []*upstream.Server{testUpstream(t)}}) {
		// Any upstream tool may ask for payment when called.
		paying[st.Tool.Name] = paying[st.Tool.Name] || strings.Contains(st.Tool.Name, UpstreamSeparator)
		openWorld[st.Tool.Name] = openWorld[st.Tool.Name] || strings.Contains(st.Tool.Name, UpstreamSeparator)
		a := st.Tool.Annotations
		if a.ReadOnlyHint == nil || a.DestructiveHint == nil || a.OpenWorldHint == nil || a.IdempotentHint == nil {
			t.Errorf("%s: every annotation must be set explicitly", st.Tool.Name)
			continue
		}
		if paying[st.Tool.Name] {
			if *a.ReadOnlyHint || !*a.DestructiveHint || *a.IdempotentHint {
				t.Errorf("%s spends money but is not marked destructive/non-idempotent", st.Tool.Name)
			}
		} else if !*a.ReadOnlyHint || *a.DestructiveHint {
			t.Errorf("%s must be read-only", st.Tool.Name)
		}
		if *a.OpenWorldHint != openWorld[st.Tool.Name] {
			t.Errorf("%s: openWorldHint = %v", st.Tool.Name, *a.OpenWorldHint)
		}
		if st.Tool.RawInputSchema == nil || gjson.GetBytes(st.Tool.RawInputSchema, "type").String() != "object" {
			t.Errorf("%s: no typed input schema", st.Tool.Name)
		}
	}
}

func TestQuoteAndFetchThroughMCP(t *testing.T) {
	f := start(t)
	ctx := context.Background()
	weather := f.net.APIURL + "/v2/weather?city=Lisbon"

	r, out := f.call(t, "x402_quote", map[string]any{"url": weather})
	if r.IsError {
		t.Fatalf("quote: %s", out)
	}
	if gjson.Get(out, "verdict").String() != "allowed" || gjson.Get(out, "options.0.amount").String() != "0.01" ||
		gjson.Get(out, "options.0.amount_atomic").String() != "10000" || gjson.Get(out, "chosen").Int() != 0 ||
		gjson.Get(out, "payer").String() != f.addr {
		t.Errorf("quote output %s", out)
	}

	payee0, _ := f.net.Chain.BalanceOf(ctx, f.net.PayTo)
	r, out = f.call(t, "x402_fetch", map[string]any{"url": weather, "max_price": "0.02"})
	if r.IsError {
		t.Fatalf("fetch: %s", out)
	}
	if gjson.Get(out, "status").Int() != 200 || gjson.Get(out, "body_encoding").String() != "text" ||
		!strings.Contains(gjson.Get(out, "body").String(), "Lisbon") || gjson.Get(out, "payment.amount").String() != "0.01" ||
		!strings.HasPrefix(gjson.Get(out, "payment.transaction").String(), "0x") || !gjson.Get(out, "payment.settled").Bool() {
		t.Errorf("fetch output %s", out)
	}
	payee1, _ := f.net.Chain.BalanceOf(ctx, f.net.PayTo)
	if d := new(big.Int).Sub(payee1, payee0); d.Int64() != 10000 {
		t.Errorf("payee received %s, want 10000", d)
	}

	r, out = f.call(t, "x402_fetch", map[string]any{"url": f.net.APIURL + "/v2/report"})
	if !r.IsError || !strings.Contains(out, "Payment denied by the operator's policy") || !strings.Contains(out, "Nothing was signed") {
		t.Errorf("over-cap fetch: error=%v %s", r.IsError, out)
	}
	r, out = f.call(t, "x402_quote", map[string]any{"url": f.net.APIURL + "/v2/report"})
	if r.IsError || gjson.Get(out, "verdict").String() != "denied" || !strings.Contains(gjson.Get(out, "reasons.0").String(), "per-payment cap") {
		t.Errorf("over-cap quote: %s", out)
	}
}

func TestInvalidInputIsAToolError(t *testing.T) {
	f := start(t)
	for name, args := range map[string]map[string]any{
		"missing url":      {},
		"unknown property": {"url": f.net.APIURL + "/free/status", "pay_anyway": true},
		"wrong type":       {"url": 42},
		"bad max_price":    {"url": f.net.APIURL + "/v2/weather", "max_price": "ten dollars"},
		"negative price":   {"url": f.net.APIURL + "/v2/weather", "max_price": "-1"},
		"bad scheme":       {"url": "file:///etc/passwd"},
	} {
		r, out := f.call(t, "x402_fetch", args)
		if !r.IsError {
			t.Errorf("%s: accepted: %s", name, out)
		}
	}
}

func TestBodyText(t *testing.T) {
	for _, tc := range []struct {
		ct        string
		body      string
		truncated bool
		want      string // "" for base64
	}{
		{"application/json; charset=utf-8", `{"a":1}`, false, `{"a":1}`},
		{"text/plain", "héllo\r\n\tworld", false, "héllo\r\n\tworld"},
		{"text/plain", "h\xc3", true, "h"},     // cut inside a rune by truncation
		{"text/plain", "h\xc3", false, ""},     // a whole body that ends badly is not text
		{"text/plain", "a\xe2\x82", true, "a"}, // three-byte rune cut after two
		{"image/png", "\x89PNG", false, ""},
		{"", "\xff\xfe\x00\x01\x02\x03\x04\x05", false, ""},
		{"text/plain", "bell\x07", false, ""},
		{"text/plain", "esc\x1b[31m", false, ""},
		{"text/plain", "nul\x00", false, ""},
		{"text/plain", "c1\u0085", false, ""},
		{"application/octet-stream", "abc", false, ""},
	} {
		got, ok := bodyText(tc.ct, []byte(tc.body), tc.truncated)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("bodyText(%q, %q, %v) = %q, %v; want %q", tc.ct, tc.body, tc.truncated, got, ok, tc.want)
		}
	}
}

// TestFetchedResultBounded: whatever the body, the serialised result stays
// within its bound, and the body returned is a prefix of the one sent.
func TestFetchedResultBounded(t *testing.T) {
	const limit = 4 << 10
	for name, tc := range map[string]struct {
		ct   string
		body []byte
		enc  string
	}{
		"quotes":   {"text/plain", bytes.Repeat([]byte(`"<>&\`), 20<<10), "text"},
		"controls": {"text/plain", bytes.Repeat([]byte{1, 2, 3, 0x1b}, 20<<10), "base64"},
		"binary":   {"image/png", bytes.Repeat([]byte{0x89, 'P', 'N', 'G', 0}, 20<<10), "base64"},
		"utf8":     {"text/plain", bytes.Repeat([]byte("日本語"), 20<<10), "text"},
	} {
		res := fetchedResult(&pay.Result{URL: "https://api.example/x", Status: 200, ContentType: tc.ct, Body: tc.body}, limit)
		b, err := json.Marshal(res)
		if err != nil || len(b) > limit {
			t.Errorf("%s: %d bytes of JSON (%v), want at most %d", name, len(b), err, limit)
			continue
		}
		out := res.StructuredContent.(FetchOutput)
		got := []byte(out.Body)
		if out.BodyEncoding == "base64" {
			if got, err = base64.StdEncoding.DecodeString(out.Body); err != nil {
				t.Fatal(err)
			}
		}
		if out.BodyEncoding != tc.enc || !out.Truncated || len(got) == 0 || len(got) != out.BodyBytes || !bytes.HasPrefix(tc.body, got) {
			t.Errorf("%s: encoding %s, truncated %v, %d bytes (body_bytes %d), a prefix: %v", name, out.BodyEncoding, out.Truncated, len(got), out.BodyBytes, bytes.HasPrefix(tc.body, got))
		}
		var text string
		for _, c := range res.Content {
			if tc, ok := c.(mcp.TextContent); ok {
				text = tc.Text
			}
		}
		if strings.Contains(text, "\n") || !json.Valid([]byte(text)) {
			t.Errorf("%s: the text is not compact JSON: %.80q", name, text)
		}
	}
}
