package pay

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/policy"
	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/x402"
)

// nanoPerUSD is the ledger's unit: budgets are summed in 1e-9 USD.
const nanoPerUSD = 1_000_000_000

// ledgerTimeout bounds the bookkeeping done after a payment left, which
// must happen even when the call's own context has run out.
const ledgerTimeout = 10 * time.Second

// usdNanoCeil is a USD token amount in nano-USD, rounded up: spending is
// never under-counted. Non-USD tokens cannot be paid (the policy refuses
// them), so they count as zero here.
func usdNanoCeil(amount *big.Int, t tokens.Token) int64 {
	if t.Currency != "USD" {
		return 0
	}
	n := new(big.Int).Mul(amount, big.NewInt(nanoPerUSD))
	d := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(t.Decimals)), nil)
	q, m := new(big.Int).QuoRem(n, d, new(big.Int))
	if m.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() {
		return 1<<63 - 1
	}
	return q.Int64()
}

// usdNanoFloor is a USD limit in nano-USD, rounded down: a limit never
// grows in conversion.
func usdNanoFloor(u policy.USD) int64 {
	n := u.Atomic(9)
	if n == nil || !n.IsInt64() {
		return 1<<63 - 1
	}
	return n.Int64()
}

// limits turns the policy's budgets that apply to a payment to host into
// ledger limits.
func (c *Client) limits(host string) []ledger.Limit { return hostLimits(c.cfg.Policy, host) }

func hostLimits(p policy.Policy, host string) []ledger.Limit {
	var out []ledger.Limit
	for _, b := range p.Budgets() {
		if b.Host != "" && b.Host != host {
			continue
		}
		out = append(out, ledger.Limit{Name: b.Name(), Window: b.Window, Host: b.Host, MaxUSDNano: usdNanoFloor(b.Limit)})
	}
	if n := p.MaxPaymentsPerMinute; n > 0 {
		out = append(out, ledger.Limit{Name: "payments per minute", Window: time.Minute, MaxCount: n})
	}
	return out
}

// LimitKey names the policy-file key behind a limit (one of Limits), for
// messages and the console.
func LimitKey(l ledger.Limit) string { return limitKey(l) }

// limitKey names the policy-file key behind a limit, for messages.
func limitKey(l ledger.Limit) string {
	if l.MaxCount > 0 {
		return "max_payments_per_minute"
	}
	return policy.BudgetKey(l.Window, l.Host)
}

// budgetReason words a budget refusal: the same words whether judge saw
// the budget full or the reservation found it full since. A limit from
// limits is either money or the per-minute count, never both.
func budgetReason(e *ledger.BudgetError) string {
	l := e.Limit
	if l.MaxUSDNano > 0 {
		return fmt.Sprintf("%s: %s USD of %s spent; this payment (%s USD) would exceed it (policy: %s)",
			l.Name, ledger.FormatUSDNano(e.SpentUSDNano), ledger.FormatUSDNano(l.MaxUSDNano), ledger.FormatUSDNano(e.RequestUSDNano), limitKey(l))
	}
	return fmt.Sprintf("%s: %d payments in the last minute, the most allowed (policy: %s); wait a minute", l.Name, e.Count, limitKey(l))
}

// bookkeeping runs ledger updates after the call's context may be gone.
func bookkeeping() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), ledgerTimeout)
}

// unknown records that a sent payment has no known outcome: it stays
// counted as spent until reconciled. st is the server's settlement, if it
// sent one: a failed settlement may still name a transaction, which the
// ledger's reconciler then looks up.
func (c *Client) unknown(p *pending, st *x402.Settlement, note string) {
	ctx, cancel := bookkeeping()
	defer cancel()
	if err := c.cfg.Ledger.MarkUnknown(ctx, p.record.ID, txHash(st), note); err != nil {
		c.log.Error("ledger: cannot record an unknown outcome; the record stays sent (counted)", "ledger_id", p.record.ID, "err", err)
	}
}

// supersede records that a payment sent on known terms was answered with a
// 402 on other terms: unknown (counted until the chain proves it unused),
// and no longer standing for its request, so the new terms are judged
// afresh.
func (c *Client) supersede(p *pending, note string) {
	ctx, cancel := bookkeeping()
	defer cancel()
	if err := c.cfg.Ledger.MarkUnknownSuperseded(ctx, p.record.ID, note); err != nil {
		c.log.Error("ledger: cannot record a superseded payment; it stays sent (counted)", "ledger_id", p.record.ID, "err", err)
	}
}

// delivered records, off the reply path, that the resource came back for
// this payment: a later identical request is a new purchase. The ledger
// commits it before any later write or read of this process (see
// ledger.SettleLater); a crash first leaves the record counted.
func (c *Client) delivered(p *pending) {
	id := p.record.ID
	c.cfg.Ledger.MarkDeliveredLater(id, func(err error) {
		if err != nil {
			c.log.Error("ledger: cannot record a delivery; an identical request will re-send this payment", "ledger_id", id, "err", err)
		}
	})
}

// txHash is the transaction a settlement names, if it has the shape of an
// EVM transaction hash (0x and 64 hex digits); else empty. Anything else
// could not be looked up, and must not keep the outcome from being
// recorded.
func txHash(st *x402.Settlement) string {
	if st == nil || len(st.Transaction) != 66 || !strings.HasPrefix(st.Transaction, "0x") {
		return ""
	}
	if _, err := hex.DecodeString(st.Transaction[2:]); err != nil {
		return ""
	}
	return st.Transaction
}

// settled records a successful settlement, and with delivered that the
// resource came with it, off the reply path: the payment is counted as
// sent already, so the budgets do not wait for it. A crash before it
// commits leaves the record sent, which the reconciler resolves (with an
// RPC endpoint, from authorizationState; without, it stays counted).
func (c *Client) settled(p *pending, st *x402.Settlement, delivered bool) {
	id := p.record.ID
	c.cfg.Ledger.SettleLater(id, st.Transaction, st.Raw, delivered, func(err error) {
		if err != nil {
			c.log.Error("ledger: cannot record a settlement; the record stays sent (counted)", "ledger_id", id, "err", err)
		}
	})
}

// Flush waits until the ledger has committed every settlement and delivery
// this client recorded off the reply path. Reads of the same ledger wait
// for them anyway; Flush is for a clean shutdown (Close), and for a caller
// that hands the ledger file to another process.
func (c *Client) Flush(ctx context.Context) error {
	if c.cfg.Ledger == nil {
		return nil
	}
	return c.cfg.Ledger.Flush(ctx)
}
