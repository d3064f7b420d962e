package pay

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"

	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/policy"
)

// lossyFront stands before the local network's paid API and, for the first
// `drop` paid requests, forwards them (so the server verifies, settles and
// serves) but hangs up on the client instead of answering: a response lost
// after the payment was taken. It records every payment header it saw.
type lossyFront struct {
	*httptest.Server
	mu      sync.Mutex
	drop    int
	headers []string
}

func newLossyFront(t *testing.T, target string, drop int) *lossyFront {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	f := &lossyFront{drop: drop}
	proxy := httputil.NewSingleHostReverseProxy(u)
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("PAYMENT-SIGNATURE") + r.Header.Get("X-PAYMENT")
		f.mu.Lock()
		lose := false
		if h != "" {
			f.headers = append(f.headers, h)
			if f.drop > 0 {
				f.drop--
				lose = true
			}
		}
		f.mu.Unlock()
		if !lose {
			proxy.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		proxy.ServeHTTP(rec, r) // the server does all its work
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *lossyFront) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.headers...)
}

// TestRetryAfterLostResponse: the server settled but the answer was lost.
// The agent's repeat re-sends the same signed payment — no new signature —
// and is told it was already paid; exactly one settlement on chain.
func TestRetryAfterLostResponse(t *testing.T) {
	n := startNet(t, localnet.NetworkConfig{}, funding)
	front := newLossyFront(t, n.APIURL, 1)
	led := openLedger(t)
	c := n.clientWith(t, policy.Default(), led)
	ctx := context.Background()
	payer0, payee0 := n.balances(t)
	req := Request{URL: front.URL + "/v2/weather?city=Oslo"}

	_, err := c.Fetch(ctx, req)
	var failed *PaymentFailedError
	if !errors.As(err, &failed) || failed.Status != 0 || failed.Resent {
		t.Fatalf("first call: %T %v; want no answer", err, err)
	}
	if rs, _ := led.Recent(ctx, 10); len(rs) != 1 || rs[0].State != ledger.Unknown {
		t.Fatalf("after the lost answer: %+v", rs)
	}

	_, err = c.Fetch(ctx, req)
	if !errors.As(err, &failed) || !failed.Resent || !failed.NonceUsed {
		t.Fatalf("repeat: %T %v; want the same payment re-sent and reported as already paid", err, err)
	}
	// A third call is told the same, and still signs nothing.
	if _, err = c.Fetch(ctx, req); !errors.As(err, &failed) || !failed.NonceUsed {
		t.Fatalf("third call: %T %v", err, err)
	}
	seen := front.seen()
	if len(seen) != 3 || seen[1] != seen[0] || seen[2] != seen[0] {
		t.Errorf("the server saw %d payment headers; want the same one 3 times", len(seen))
	}
	if got := n.signer.calls.Load(); got != 1 {
		t.Errorf("%d signatures for one request, want 1", got)
	}
	payer1, payee1 := n.balances(t)
	if d := payer0.Int64() - payer1.Int64(); d != 10_000 || payee1.Int64()-payee0.Int64() != 10_000 {
		t.Errorf("moved %d from the payer, want exactly one 10000", d)
	}
	if rs, _ := led.Recent(ctx, 10); len(rs) != 1 {
		t.Errorf("%d records for one request", len(rs))
	}
}

// TestRetryOtherTermsNotSigned: while an earlier payment for the request may
// still settle, a changed price signs nothing.
func TestRetryOtherTermsNotSigned(t *testing.T) {
	routes := localnet.DefaultRoutes()
	var bump sync.Mutex
	bumped := false
	for i := range routes {
		if routes[i].Path == "/v2/weather" {
			routes[i].Accepts = func(opts []map[string]any) []map[string]any {
				bump.Lock()
				defer bump.Unlock()
				if bumped {
					opts[0]["amount"] = "20000"
				}
				return opts
			}
		}
	}
	n := startNet(t, localnet.NetworkConfig{Routes: routes}, funding)
	front := newLossyFront(t, n.APIURL, 1)
	c := n.client(t, policy.Default())
	ctx := context.Background()
	req := Request{URL: front.URL + "/v2/weather?city=Oslo"}
	if _, err := c.Fetch(ctx, req); err == nil {
		t.Fatal("the first answer was not lost")
	}
	bump.Lock()
	bumped = true
	bump.Unlock()
	_, err := c.Fetch(ctx, req)
	var inFlight *InFlightError
	if !errors.As(err, &inFlight) || inFlight.Why == "" {
		t.Fatalf("repeat at another price: %T %v; want *InFlightError", err, err)
	}
	if got := n.signer.calls.Load(); got != 1 {
		t.Errorf("%d signatures, want 1", got)
	}
}

// TestDeliveredThenBoughtAgain: once the resource came back, the same
// request again is a new purchase, paid anew.
func TestDeliveredThenBoughtAgain(t *testing.T) {
	n := startNet(t, localnet.NetworkConfig{}, funding)
	c := n.client(t, policy.Default())
	payer0, _ := n.balances(t)
	for i := range 2 {
		res, err := c.Fetch(context.Background(), Request{URL: n.APIURL + "/v2/weather?city=Oslo"})
		if err != nil || res.Payment == nil || !res.Payment.Settled {
			t.Fatalf("purchase %d: %+v, %v", i+1, res, err)
		}
	}
	if got := n.signer.calls.Load(); got != 2 {
		t.Errorf("%d signatures for two purchases", got)
	}
	if payer1, _ := n.balances(t); payer0.Int64()-payer1.Int64() != 20_000 {
		t.Errorf("payer spent %d, want 20000", payer0.Int64()-payer1.Int64())
	}
}
