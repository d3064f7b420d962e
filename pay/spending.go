package pay

import (
	"context"
	"fmt"
	"slices"

	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/policy"
)

// Spending is the state of the operator's limits and the ledger.
type Spending struct {
	MaxPerPayment string // USD
	ApprovalAbove string // USD, empty when no payment needs approval
	Budgets       []BudgetUsage
	Pending       []ledger.Record
	Recent        []ledger.Record
}

// BudgetUsage is one budget: its limit, what counts against it now, and
// what is left.
type BudgetUsage struct {
	Name     string
	Key      string // the policy-file key that sets it
	Host     string
	Limit    string // USD; empty for a count limit
	Spent    string // USD
	Left     string // USD
	Count    int
	MaxCount int
}

// Spending reports every limit with what is spent and left, the payments
// still pending, and the last recent payments.
func (c *Client) Spending(ctx context.Context, recent int) (*Spending, error) {
	s := &Spending{MaxPerPayment: c.cfg.Policy.MaxPerPayment.String()}
	if c.cfg.Policy.ApprovalAbove.IsSet() {
		s.ApprovalAbove = c.cfg.Policy.ApprovalAbove.String()
	}
	if c.cfg.Ledger == nil {
		return s, nil
	}
	usage, err := c.cfg.Ledger.Usage(ctx, Limits(c.cfg.Policy))
	if err != nil {
		return nil, fmt.Errorf("pay: reading the budgets: %w", err)
	}
	for _, u := range usage {
		b := BudgetUsage{Name: u.Limit.Name, Key: limitKey(u.Limit), Host: u.Limit.Host, Spent: ledger.FormatUSDNano(u.SpentUSDNano), Count: u.Count, MaxCount: u.Limit.MaxCount}
		if u.Limit.MaxUSDNano > 0 {
			b.Limit, b.Left = ledger.FormatUSDNano(u.Limit.MaxUSDNano), ledger.FormatUSDNano(max(0, u.LeftUSDNano))
		}
		s.Budgets = append(s.Budgets, b)
	}
	if s.Pending, err = c.cfg.Ledger.Pending(ctx); err != nil {
		return nil, fmt.Errorf("pay: reading pending payments: %w", err)
	}
	if s.Recent, err = c.cfg.Ledger.Recent(ctx, recent); err != nil {
		return nil, fmt.Errorf("pay: reading recent payments: %w", err)
	}
	return s, nil
}

// Limits is every limit the policy puts on the ledger, each once: the
// global budgets first, then each host's in the policy's order, then the
// rate. The paying flow checks the subset that applies to a payment's
// host; Spending and the operator console show them all.
func Limits(p policy.Policy) []ledger.Limit {
	var limits []ledger.Limit
	hosts := []string{""}
	for _, b := range p.Budgets() {
		if !slices.Contains(hosts, b.Host) {
			hosts = append(hosts, b.Host)
		}
	}
	seen := map[string]bool{}
	for _, h := range hosts {
		for _, l := range hostLimits(p, h) {
			if k := fmt.Sprintf("%s|%s|%d", l.Host, l.Name, l.Window); !seen[k] {
				seen[k] = true
				limits = append(limits, l)
			}
		}
	}
	return limits
}
