package tools

import (
	"context"
	"encoding/json"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/tidwall/gjson"

	"github.com/x402-mcp/x402-mcp/policy"
)

// approvalPolicy asks the human above 0.015 USD: the local network's
// /v1/joke (0.02) and /v2/summarize (0.03) need approval, /v2/weather
// (0.01) does not.
func approvalPolicy() policy.Policy {
	p := policy.Default()
	p.ApprovalAbove = policy.MustUSD("0.015")
	return p
}

// human answers elicitations as told and remembers what it was asked.
type human struct {
	approve bool
	asked   atomic.Int64
	last    atomic.Value
}

func (h *human) Elicit(_ context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	h.asked.Add(1)
	h.last.Store(req.Params.Message)
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{
		Action:  mcp.ElicitationResponseActionAccept,
		Content: map[string]any{"approve": h.approve},
	}}, nil
}

func (f *fixture) payeeBalance(t *testing.T) *big.Int {
	t.Helper()
	b, err := f.net.Chain.BalanceOf(context.Background(), f.net.PayTo)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestApprovalAskedAndGiven(t *testing.T) {
	h := &human{approve: true}
	f := startWith(t, approvalPolicy(), client.WithElicitationHandler(h))
	before := f.payeeBalance(t)

	r, out := f.call(t, "x402_fetch", map[string]any{"url": f.net.APIURL + "/v2/weather?city=Rome"})
	if r.IsError || h.asked.Load() != 0 {
		t.Fatalf("a payment under the threshold asked the human (%d) or failed: %s", h.asked.Load(), out)
	}
	r, out = f.call(t, "x402_fetch", map[string]any{"url": f.net.APIURL + "/v1/joke"})
	if r.IsError || gjson.Get(out, "payment.amount").String() != "0.02" {
		t.Fatalf("approved payment: %s", out)
	}
	if h.asked.Load() != 1 {
		t.Fatalf("the human was asked %d times", h.asked.Load())
	}
	msg, _ := h.last.Load().(string)
	for _, want := range []string{"0.02 USDC", "20000 atomic units", f.net.PayTo.Hex(), "/v1/joke", "127.0.0.1", "eip155:1337", "daily budget", "daily budget: 0.97 USD left of 1.00 after this payment"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the question lacks %q:\n%s", want, msg)
		}
	}
	if d := new(big.Int).Sub(f.payeeBalance(t), before); d.Int64() != 30000 {
		t.Errorf("payee received %s, want 30000", d)
	}
}

func TestApprovalDeclined(t *testing.T) {
	h := &human{approve: false}
	f := startWith(t, approvalPolicy(), client.WithElicitationHandler(h))
	before := f.payeeBalance(t)
	r, out := f.call(t, "x402_fetch", map[string]any{"url": f.net.APIURL + "/v1/joke"})
	if !r.IsError || !strings.Contains(out, "declined") || h.asked.Load() != 1 {
		t.Fatalf("declined payment: %v %s", r.IsError, out)
	}
	if f.payeeBalance(t).Cmp(before) != 0 {
		t.Error("a declined payment moved money")
	}
}

func TestApprovalWithoutElicitation(t *testing.T) {
	f := startWith(t, approvalPolicy()) // the client declares no elicitation
	r, out := f.call(t, "x402_fetch", map[string]any{"url": f.net.APIURL + "/v1/joke"})
	if !r.IsError || !strings.Contains(out, "cannot ask the user") || !strings.Contains(out, "approval_above") {
		t.Fatalf("no elicitation: %v %s", r.IsError, out)
	}
}

// raw sends one tools/call straight to the server as a modern
// (2026-07-28) client that can elicit, so the test controls the
// round trip's state and answers.
func (f *fixture) raw(t *testing.T, id int, args map[string]any, state string, approve *bool) gjson.Result {
	t.Helper()
	params := map[string]any{
		"name":      "x402_fetch",
		"arguments": args,
		"_meta": map[string]any{
			mcp.MetaKeyProtocolVersion:    mcp.ProtocolVersion20260728,
			mcp.MetaKeyClientCapabilities: map[string]any{"elicitation": map[string]any{}},
			mcp.MetaKeyClientInfo:         map[string]any{"name": "raw", "version": "1"},
		},
	}
	if state != "" {
		params["requestState"] = state
	}
	if approve != nil {
		params["inputResponses"] = map[string]any{approvalKey: map[string]any{"action": "accept", "content": map[string]any{"approve": *approve}}}
	}
	msg, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})
	resp := f.srv.HandleMessage(context.Background(), msg)
	b, _ := json.Marshal(resp)
	return gjson.ParseBytes(b)
}

func TestApprovalRoundTripIsBound(t *testing.T) {
	f := startWith(t, approvalPolicy())
	joke := map[string]any{"url": f.net.APIURL + "/v1/joke"}
	summary := map[string]any{"url": f.net.APIURL + "/v2/summarize", "method": "POST",
		"headers": map[string]any{"Content-Type": "application/json"}, "body": `{"text":"One. Two."}`}
	yes := true
	before := f.payeeBalance(t)

	// An "approved" answer the server never asked for.
	r := f.raw(t, 1, joke, "", &yes)
	if !r.Get("result.isError").Bool() || !strings.Contains(r.Get("result.content.0.text").String(), "without the state token") {
		t.Fatalf("unsolicited approval: %s", r.Raw)
	}
	r = f.raw(t, 2, joke, "forged-state", &yes)
	if !strings.Contains(r.Get("result.content.0.text").String(), "not issued by this server") {
		t.Fatalf("forged state: %s", r.Raw)
	}

	// The real question, then the real answer: paid once.
	r = f.raw(t, 3, joke, "", nil)
	state := r.Get("result.requestState").String()
	if r.Get("result.resultType").String() != "input_required" || state == "" || !r.Get("result.inputRequests."+approvalKey).Exists() {
		t.Fatalf("no question asked: %s", r.Raw)
	}
	r = f.raw(t, 4, joke, state, &yes)
	if r.Get("result.isError").Bool() || r.Get("result.structuredContent.payment.amount").String() != "0.02" {
		t.Fatalf("approved round trip: %s", r.Raw)
	}

	// The same answer again: refused, nothing paid.
	r = f.raw(t, 5, joke, state, &yes)
	if !strings.Contains(r.Get("result.content.0.text").String(), "already used") {
		t.Fatalf("replayed approval: %s", r.Raw)
	}

	// An approval for the joke presented for the summary.
	r = f.raw(t, 6, joke, "", nil)
	state = r.Get("result.requestState").String()
	r = f.raw(t, 7, summary, state, &yes)
	if !r.Get("result.isError").Bool() || !strings.Contains(r.Get("result.content.0.text").String(), "different payment") {
		t.Fatalf("approval for another payment: %s", r.Raw)
	}

	if d := new(big.Int).Sub(f.payeeBalance(t), before); d.Int64() != 20000 {
		t.Errorf("payee received %s, want exactly one joke (20000)", d)
	}
}
