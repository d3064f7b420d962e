package pay

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/policy"
)

// TestBudgetHoldsUnder200ConcurrentFetches: 200 paid fetches at once
// against a daily budget of 0.50 USD at 0.01 each. Exactly 50 are paid,
// the chain moved exactly 0.50, and the ledger counts exactly that.
func TestBudgetHoldsUnder200ConcurrentFetches(t *testing.T) {
	n := startNet(t, localnet.NetworkConfig{}, funding)
	p := policy.Policy{MaxPerPayment: policy.MustUSD("0.10"), MaxWindow: 5 * time.Minute}
	p.Budget.Day = policy.MustUSD("0.50")
	led := openLedger(t)
	c := n.clientWith(t, p, led)
	payer0, payee0 := n.balances(t)

	const calls = 200
	var (
		wg           sync.WaitGroup
		mu           sync.Mutex
		paid, denied int
		unexpected   []error
		ctx          = context.Background()
	)
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// 200 different requests: identical ones in flight at once
			// are held to one payment (see resend.go).
			res, err := c.Fetch(ctx, Request{URL: fmt.Sprintf("%s/v2/weather?city=Lima%d", n.APIURL, i)})
			mu.Lock()
			defer mu.Unlock()
			var d *DeniedError
			switch {
			case err == nil && res.Payment != nil && res.Payment.Settled:
				paid++
			case errors.As(err, &d):
				denied++
			default:
				unexpected = append(unexpected, err)
			}
		}()
	}
	wg.Wait()
	if len(unexpected) > 0 {
		t.Fatalf("%d unexpected outcomes, first: %v", len(unexpected), unexpected[0])
	}
	if paid != 50 || denied != calls-50 {
		t.Errorf("paid %d, denied %d; want 50 and %d", paid, denied, calls-50)
	}
	payer1, payee1 := n.balances(t)
	if d := new(big.Int).Sub(payee1, payee0); d.Int64() != 500000 {
		t.Errorf("payee received %s atomic units, want exactly 500000", d)
	}
	if d := new(big.Int).Sub(payer0, payer1); d.Int64() != 500000 {
		t.Errorf("payer spent %s atomic units, want exactly 500000", d)
	}
	u, err := led.Usage(ctx, []ledger.Limit{{Name: "day", Window: 24 * time.Hour, MaxUSDNano: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if u[0].SpentUSDNano != 500_000_000 || u[0].Count != 50 {
		t.Errorf("ledger counts %d nano-USD in %d payments, want 0.5 USD in 50", u[0].SpentUSDNano, u[0].Count)
	}
	if got := n.signer.calls.Load(); got != 50 {
		t.Errorf("%d signatures for 50 payments: a denied payment reached the signer", got)
	}
}
