package pay

import (
	"context"
	"errors"
	"fmt"

	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/policy"
)

// The verdicts, the same words from every tool: what x402-mcp would do
// about paying for a resource on these terms, now.
const (
	// VerdictFree: the resource asks for no payment.
	VerdictFree = "free"
	// VerdictAllowed: it would be paid without asking anyone.
	VerdictAllowed = "allowed"
	// VerdictNeedsApproval: it would be paid once the human approves.
	VerdictNeedsApproval = "needs_approval"
	// VerdictDenied: the operator's policy or a budget refuses it.
	VerdictDenied = "denied"
	// VerdictUnpayable: nothing offered can be paid by this client (unknown
	// token, unsupported scheme or network, a malformed 402, no wallet, a
	// payee that is the wallet itself, a v2 option without its EIP-712
	// domain, a payment flow x402 does not define).
	VerdictUnpayable = "unpayable"
)

// Judgement is pay's one answer to "would this be paid?". Quote, discovery
// and fetch all read it from judge, so they cannot disagree.
type Judgement struct {
	Verdict string
	// Reasons say why a payment is denied or unpayable, or why it needs the
	// human's approval, in words an agent can act on.
	Reasons []string
	// Limit is the per-payment cap in USD that applies (the operator's,
	// lowered by the call's max_price); unset when nothing is payable.
	Limit policy.USD
}

// judge sets q.Judgement from the chosen option's policy verdict and what
// the budgets say now. The budgets are read, not reserved: the reservation
// at payment time is what holds them.
func (c *Client) judge(ctx context.Context, q *Quote) error {
	return c.judgeBudgets(ctx, q, true)
}

// judgeBudgets is judge; without readBudgets it reads the budgets only for
// a payment that needs approval, so that no human is asked to approve what
// a budget refuses. A paying call skips that read otherwise: the ledger
// checks every budget again when it records the payment, in the same
// write transaction, and refuses in the same words (see authorize). The
// verdict is the same either way; only its moment differs.
func (c *Client) judgeBudgets(ctx context.Context, q *Quote, readBudgets bool) error {
	j := Judgement{}
	defer func() { q.Judgement = j }()
	switch {
	case q.Free:
		j.Verdict = VerdictFree
		return nil
	case q.Chosen == nil:
		j.Verdict = VerdictUnpayable
		for _, o := range q.Options {
			j.Reasons = append(j.Reasons, o.Reason)
		}
		if len(j.Reasons) == 0 {
			j.Reasons = q.unreadable
		}
		return nil
	}
	v := q.Chosen.Verdict
	j.Limit = v.Limit
	if !v.Allowed {
		j.Verdict, j.Reasons = VerdictDenied, append([]string(nil), v.Reasons...)
		return nil
	}
	var over []string
	if readBudgets || v.NeedsApproval {
		var err error
		if over, err = c.overBudget(ctx, q); err != nil {
			return err
		}
	}
	switch {
	case len(over) > 0:
		j.Verdict, j.Reasons = VerdictDenied, over
	case c.cfg.Signer == nil:
		j.Verdict, j.Reasons = VerdictUnpayable, []string{NoWalletError{}.Error()}
	case v.NeedsApproval:
		j.Verdict, j.Reasons = VerdictNeedsApproval, []string{v.ApprovalReason}
	default:
		j.Verdict = VerdictAllowed
	}
	return nil
}

// overBudget says which budgets the chosen option would exceed now.
func (c *Client) overBudget(ctx context.Context, q *Quote) ([]string, error) {
	if c.cfg.Ledger == nil {
		return nil, nil
	}
	usage, err := c.cfg.Ledger.Usage(ctx, c.limits(q.Host))
	if errors.Is(err, ledger.ErrUnavailable) {
		// Fail closed, and still answer: a quote shows the terms, and
		// says why nothing can be paid now.
		return []string{"the ledger is unreachable, so no payment can be recorded: payments are refused until it is back (quotes and free fetches still work)"}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pay: reading the budgets: %w", err)
	}
	price := usdNanoCeil(q.Chosen.Wire.Amount, *q.Chosen.Token)
	var over []string
	for _, u := range usage {
		if (u.Limit.MaxUSDNano > 0 && u.SpentUSDNano+price > u.Limit.MaxUSDNano) ||
			(u.Limit.MaxCount > 0 && u.Count+1 > u.Limit.MaxCount) {
			over = append(over, budgetReason(&ledger.BudgetError{Limit: u.Limit, SpentUSDNano: u.SpentUSDNano, Count: u.Count, RequestUSDNano: price}))
		}
	}
	return over, nil
}
