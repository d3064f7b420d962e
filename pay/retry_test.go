package pay

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/policy"
)

// The "never pay twice" scenarios on the local network with its real
// faults: a facilitator that stalls, a resource server that dies after it
// took the payment. Each ends with exactly one settlement on chain.

// idRoutes are the default routes with payment-identifier on /v2/weather.
func idRoutes(on bool) []localnet.Route {
	routes := localnet.DefaultRoutes()
	for i := range routes {
		if on && routes[i].Path == "/v2/weather" {
			routes[i].PaymentIdentifier = &localnet.PaymentIdentifier{}
		}
	}
	return routes
}

// settledOnce waits (bounded) for the facilitator to have settled once and
// checks that exactly one transfer was ever broadcast, and that the payee
// got the price exactly once.
func (n *testNet) settledOnce(t *testing.T, payee0 interface{ Int64() int64 }, price int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for n.Facilitator.Settled() < 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if b := n.Facilitator.Broadcasts(); len(b) != 1 {
		t.Errorf("%d settlement transactions broadcast, want exactly 1", len(b))
	}
	_, payee := n.balances(t)
	if d := payee.Int64() - payee0.Int64(); d != price {
		t.Errorf("payee received %d, want exactly %d once", d, price)
	}
}

// TestTimedOutCallRepeated: the facilitator stalls past the client's
// timeout, then settles. The agent repeats the call: with
// payment-identifier the server replays the resource for the same payment;
// without it the repeat says it was already paid. One settlement either
// way, one signature.
func TestTimedOutCallRepeated(t *testing.T) {
	for _, withID := range []bool{true, false} {
		name := "without payment-identifier"
		if withID {
			name = "with payment-identifier"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			n := startNet(t, localnet.NetworkConfig{Routes: idRoutes(withID)}, funding)
			led := openLedger(t)
			c := n.clientFor(t, Config{Policy: policy.Default(), Ledger: led, Timeout: time.Second})
			ctx := context.Background()
			_, payee0 := n.balances(t)
			n.Facilitator.SetFault(localnet.Fault{Before: 3 * time.Second, Times: 1})
			req := Request{URL: n.APIURL + "/v2/weather?city=Oslo"}

			_, err := c.Fetch(ctx, req)
			var failed *PaymentFailedError
			if !errors.As(err, &failed) || failed.Status != 0 || !strings.Contains(err.Error(), "no answer") {
				t.Fatalf("first call: %T %v; want no answer", err, err)
			}
			n.settledOnce(t, payee0, 10_000) // the stalled settlement lands

			res, err := c.Fetch(ctx, req)
			if withID {
				if err != nil || res.Status != http.StatusOK || res.Payment == nil || !res.Payment.Settled || !strings.Contains(string(res.Body), "Oslo") {
					t.Fatalf("repeat with payment-identifier: %+v, %v; want the resource", res, err)
				}
			} else if !errors.As(err, &failed) || !failed.NonceUsed {
				t.Fatalf("repeat without payment-identifier: %T %v; want already paid", err, err)
			}
			n.settledOnce(t, payee0, 10_000)
			if got := n.signer.calls.Load(); got != 1 {
				t.Errorf("%d signatures, want 1", got)
			}
			rs, _ := led.Recent(ctx, 10)
			if len(rs) != 1 || withID && rs[0].State != ledger.Settled {
				t.Errorf("ledger: %+v", rs)
			}
		})
	}
}

// TestServerDiesAfterPayment: the resource server settles and dies before
// answering; restarted with or without its payment-id store, any number of
// repeats make no second settlement.
func TestServerDiesAfterPayment(t *testing.T) {
	for _, forget := range []bool{false, true} {
		name := "restarted with its store"
		if forget {
			name = "restarted without its store"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			n := startNet(t, localnet.NetworkConfig{Routes: idRoutes(true)}, funding)
			led := openLedger(t)
			c := n.clientWith(t, policy.Default(), led)
			ctx := context.Background()
			_, payee0 := n.balances(t)
			n.API.DropAfterSettle(1)
			req := Request{URL: n.APIURL + "/v2/weather?city=Lima"}
			if _, err := c.Fetch(ctx, req); err == nil {
				t.Fatal("the first answer was not lost")
			}
			if forget {
				n.API.ForgetPaymentIDs()
			}
			// The agent repeats until it has the resource, or gives up.
			delivered := false
			for range 3 {
				res, err := c.Fetch(ctx, req)
				var failed *PaymentFailedError
				switch {
				case err == nil && res.Status == http.StatusOK && res.Payment != nil:
					delivered = true
				case errors.As(err, &failed) && failed.NonceUsed:
				default:
					t.Fatalf("repeat: %+v, %T %v", res, err, err)
				}
				if delivered {
					break
				}
			}
			if delivered == forget {
				t.Errorf("delivered %v; want the stored response replayed exactly when the store survived", delivered)
			}
			n.settledOnce(t, payee0, 10_000)
			if got := n.signer.calls.Load(); got != 1 {
				t.Errorf("%d signatures, want 1", got)
			}
		})
	}
}

// TestSettlementPendingKeepsTransaction: a settlement broadcast but not
// confirmed leaves the payment unknown with its transaction; the repeat
// re-sends it and, once mined, gets the resource. One settlement.
func TestSettlementPendingKeepsTransaction(t *testing.T) {
	n := startNet(t, localnet.NetworkConfig{Routes: idRoutes(true)}, funding)
	led := openLedger(t)
	c := n.clientWith(t, policy.Default(), led)
	ctx := context.Background()
	_, payee0 := n.balances(t)
	// Pending twice: the paid API asks once more, as reference servers do.
	n.Facilitator.SetFault(localnet.Fault{Pending: true, Times: 2})
	req := Request{URL: n.APIURL + "/v2/weather?city=Rome"}
	_, err := c.Fetch(ctx, req)
	var failed *PaymentFailedError
	if !errors.As(err, &failed) || !failed.Pending || failed.Settlement == nil || failed.Settlement.Transaction == "" {
		t.Fatalf("first call: %T %v; want settlement pending with a transaction", err, err)
	}
	rs, _ := led.Recent(ctx, 1)
	if len(rs) != 1 || rs[0].State != ledger.Unknown || rs[0].Transaction != failed.Settlement.Transaction {
		t.Fatalf("ledger after settlement_pending: %+v", rs)
	}
	res, err := c.Fetch(ctx, req)
	if err != nil || res.Payment == nil || !res.Payment.Settled {
		t.Fatalf("repeat: %+v, %v", res, err)
	}
	n.settledOnce(t, payee0, 10_000)
	if got := n.signer.calls.Load(); got != 1 {
		t.Errorf("%d signatures, want 1", got)
	}
}
