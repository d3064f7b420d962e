package tools

import (
	"context"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/pay"
	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/x402"
)

// SpendingInput is what x402_spending takes.
type SpendingInput struct {
	Recent int `json:"recent,omitempty" jsonschema:"How many recent payments to list (default 10, at most 100)."`
}

// SpendingOutput is what x402_spending returns.
type SpendingOutput struct {
	MaxPerPayment string         `json:"max_per_payment_usd" jsonschema:"The operator's cap on one payment, in USD."`
	ApprovalAbove string         `json:"approval_above_usd,omitempty" jsonschema:"Payments above this many USD ask the user first."`
	Budgets       []BudgetOut    `json:"budgets" jsonschema:"Every budget with what is spent and left now (rolling windows)."`
	Pending       []PaymentEntry `json:"pending" jsonschema:"Payments reserved, sent or of unknown outcome: all counted as spent."`
	Recent        []PaymentEntry `json:"recent" jsonschema:"The last payments, newest first."`
}

// BudgetOut is one budget's state.
type BudgetOut struct {
	Name     string `json:"name"`
	Key      string `json:"policy_key" jsonschema:"The policy-file key that sets this limit."`
	Host     string `json:"host,omitempty"`
	Limit    string `json:"limit_usd,omitempty"`
	Spent    string `json:"spent_usd"`
	Left     string `json:"left_usd,omitempty"`
	Count    int    `json:"count" jsonschema:"Payments counted in the window."`
	MaxCount int    `json:"max_count,omitempty"`
}

// PaymentEntry is one ledger record.
type PaymentEntry struct {
	ID          int64  `json:"id"`
	Time        string `json:"time"`
	State       string `json:"state" jsonschema:"reserved, sent, settled, failed or unknown."`
	URL         string `json:"url"`
	Host        string `json:"host"`
	Amount      string `json:"amount"`
	Token       string `json:"token"`
	Network     string `json:"network"`
	PayTo       string `json:"pay_to"`
	Transaction string `json:"transaction,omitempty"`
	Note        string `json:"note,omitempty" jsonschema:"Why a payment is unknown or failed, or how it was resolved."`
	ValidUntil  string `json:"valid_until,omitempty" jsonschema:"For sent and unknown payments: when the signed authorization expires (RFC 3339). Until then the payee can still settle it, and it stays counted; afterwards the server settles or releases it as soon as it can tell which."`
}

func spendingTool(client *pay.Client) server.ServerTool {
	tool := mcp.NewTool("x402_spending",
		mcp.WithDescription("Show the operator's spending limits and where they stand: the per-payment cap, each budget (per period and per host) with what is spent and left, payments still pending, and the last payments. Read-only."),
		mcp.WithTitleAnnotation("Spending and limits"),
		schemas(mcp.WithInputSchema[SpendingInput](), mcp.WithOutputSchema[SpendingOutput]()),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	)
	return server.ServerTool{Tool: tool, Handler: typed(func(ctx context.Context, in SpendingInput) (*mcp.CallToolResult, error) {
		n := in.Recent
		if n <= 0 {
			n = 10
		}
		s, err := client.Spending(ctx, min(n, 100))
		if err != nil {
			return nil, err
		}
		out := SpendingOutput{MaxPerPayment: s.MaxPerPayment, ApprovalAbove: s.ApprovalAbove, Budgets: []BudgetOut{}, Pending: entries(s.Pending), Recent: entries(s.Recent)}
		for _, b := range s.Budgets {
			out.Budgets = append(out.Budgets, BudgetOut{Name: b.Name, Key: b.Key, Host: b.Host, Limit: b.Limit, Spent: b.Spent, Left: b.Left, Count: b.Count, MaxCount: b.MaxCount})
		}
		return structured(out), nil
	})}
}

func entries(rs []ledger.Record) []PaymentEntry {
	out := make([]PaymentEntry, 0, len(rs))
	for _, r := range rs {
		e := PaymentEntry{ID: r.ID, Time: r.Created.UTC().Format(time.RFC3339), State: string(r.State), URL: pay.WireURL(r.URL), Host: r.Host,
			Amount: tokens.FormatUnits(r.Amount, r.Decimals), Token: r.Token, Network: r.Network, PayTo: r.PayTo.Hex(),
			Transaction: x402.Display(r.Transaction, 80), Note: x402.Display(r.Note, maxErrorText)}
		if until, ok := r.ValidUntil(); ok {
			e.ValidUntil = until.Format(time.RFC3339)
		}
		out = append(out, e)
	}
	return out
}
