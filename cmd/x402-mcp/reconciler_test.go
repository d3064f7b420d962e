package main

import (
	"context"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/tidwall/gjson"

	"github.com/x402-mcp/x402-mcp/config"
	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/signer"
	"github.com/x402-mcp/x402-mcp/tokens"
)

// TestRunningServerReleasesAnUnknownPayment: a payment ends unknown (the
// server answers 500 after taking the payment, and the paid API settles
// nothing it did not deliver), fills the daily budget, and is shown with
// why and until when it can still settle. Once its authorization has
// expired and the chain has a finalized block past validBefore, the
// running server's reconciler releases it, and the same session pays
// again: no restart.
func TestRunningServerReleasesAnUnknownPayment(t *testing.T) {
	ctx := context.Background()
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	routes := append(localnet.DefaultRoutes(), localnet.Route{
		Method: http.MethodGet, Path: "/v2/flaky", Version: 2, Price: big.NewInt(50_000), MaxTimeoutSeconds: 10,
		Description: "fails after the payment is verified", MimeType: "application/json",
		Handler: func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "backend down", http.StatusInternalServerError)
		},
	})
	n, err := localnet.Start(startCtx, localnet.NetworkConfig{RPC: true, Routes: routes})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	key, payer, err := n.NewPayer(startCtx, big.NewInt(1_000_000))
	if err != nil {
		t.Fatal(err)
	}
	tok := tokens.Token{Network: n.Chain.Network(), Address: n.Chain.TokenAddress(), Name: n.Chain.TokenName(), Version: n.Chain.TokenVersion()}
	cfg, err := writeDemoConfig(t.TempDir(), signer.NewKey(key), tok,
		"max_per_payment = \"0.10\"\nmax_authorization_seconds = 10\n[budget]\nday = \"0.05\"\n", n.RPCURL, "")
	if err != nil {
		t.Fatal(err)
	}
	// Reconcile every second (a top-level key: before the first table).
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, append([]byte("ledger_reconcile_seconds = 1\n"), raw...), 0o600); err != nil {
		t.Fatal(err)
	}

	var serverLog syncBuffer
	c, err := startStdioClient(ctx, bin, cfg, &serverLog)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fetch := func(path string) (*mcp.CallToolResult, string) {
		t.Helper()
		r, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "x402_fetch", Arguments: map[string]any{"url": n.APIURL + path}}})
		if err != nil {
			t.Fatal(err)
		}
		return r, resultText(r)
	}

	// 500 from the handler; or 402, should the facilitator find the
	// 10-second window too short against a chain clock running ahead.
	// Either way the payment was sent and never settled.
	if r, text := fetch("/v2/flaky"); !r.IsError || !strings.Contains(text, "but the server answered") {
		t.Fatalf("the flaky route: %s", text)
	}
	pending := spendingPending(t, ctx, c)
	if len(pending) != 1 || pending[0].Get("state").String() != "unknown" {
		t.Fatalf("pending after the flaky payment: %v", pending)
	}
	p := pending[0]
	until, err := time.Parse(time.RFC3339, p.Get("valid_until").String())
	if err != nil || !strings.Contains(p.Get("note").String(), "the server answered") {
		t.Fatalf("an unknown payment must say why and until when: %s (%v)", p.Raw, err)
	}
	h := runBin(t, nil, "history", "--config", cfg, "--json")
	if rec := gjson.Get(h.stdout, "0"); rec.Get("state").String() != "unknown" || rec.Get("valid_until").String() != p.Get("valid_until").String() {
		t.Errorf("history --json: %s", h.stdout)
	}
	if h := runBin(t, nil, "history", "--config", cfg); !strings.Contains(h.stdout, "valid until "+p.Get("valid_until").String()+"; the server answered") {
		t.Errorf("history: %s", h.stdout)
	}
	// It counts: the budget is full.
	if r, text := fetch("/v2/weather?city=Oslo"); !r.IsError || !strings.Contains(text, "daily budget") {
		t.Fatalf("while unknown: %s", text)
	}

	// Wait out the authorization, and let the chain seal a block after it
	// (a real chain does so every few seconds; this one when asked).
	time.Sleep(time.Until(until.Add(time.Second)))
	if _, _, err := n.NewPayer(ctx, big.NewInt(1)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second) // bounds a hang, asserts nothing about speed
	for len(spendingPending(t, ctx, c)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the running server never released the expired payment\n%s", serverLog.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	led, err := ledger.Open(filepath.Join(filepath.Dir(cfg), "ledger.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := led.Get(ctx, p.Get("id").Int())
	led.Close()
	if err != nil || rec.State != ledger.Failed || !strings.Contains(rec.Note, "finalized block") {
		t.Fatalf("the flaky payment after release: %+v %v", rec, err)
	}

	// Same session, budget free again.
	r, text := fetch("/v2/weather?city=Oslo")
	if r.IsError || !gjson.Get(structuredJSON(r), "payment.settled").Bool() {
		t.Fatalf("after the release: %s", text)
	}
	if b, err := n.Chain.BalanceOf(ctx, payer); err != nil || b.Int64() != 1_000_000-10_000 {
		t.Errorf("payer balance %v (%v): want only the weather's 0.01 spent", b, err)
	}
	if !strings.Contains(serverLog.String(), "a pending payment was resolved") {
		t.Errorf("the server did not log the release:\n%s", serverLog.String())
	}
}

// spendingPending is x402_spending's pending list.
func spendingPending(t *testing.T, ctx context.Context, c *client.Client) []gjson.Result {
	t.Helper()
	r, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "x402_spending", Arguments: map[string]any{}}})
	if err != nil || r.IsError {
		t.Fatalf("x402_spending: %v %s", err, resultText(r))
	}
	return gjson.Get(structuredJSON(r), "pending").Array()
}

// TestReconcileIntervalBounds: the config accepts what the ledger's
// reconciler runs with.
func TestReconcileIntervalBounds(t *testing.T) {
	for _, s := range []string{"1", "3600"} {
		c, err := config.Parse("c.toml", []byte("ledger_reconcile_seconds = "+s+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		if c.ReconcileInterval < ledger.MinReconcileInterval || c.ReconcileInterval > ledger.MaxReconcileInterval {
			t.Errorf("config allows %v, the ledger takes %v to %v", c.ReconcileInterval, ledger.MinReconcileInterval, ledger.MaxReconcileInterval)
		}
	}
	for _, s := range []string{"0", "3601"} {
		if _, err := config.Parse("c.toml", []byte("ledger_reconcile_seconds = "+s+"\n")); err == nil {
			t.Errorf("config allows %s seconds", s)
		}
	}
}
