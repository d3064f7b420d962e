package tools

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/x402-mcp/x402-mcp/internal/shellquote"
	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/pay"
	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/x402"
)

// ApprovalOut is a payment waiting for the user's approval out of band.
type ApprovalOut struct {
	ID           string `json:"id" jsonschema:"The approval's id, which the user names to approve or deny it."`
	Amount       string `json:"amount" jsonschema:"Amount in whole tokens."`
	AmountAtomic string `json:"amount_atomic"`
	Token        string `json:"token"`
	Network      string `json:"network"`
	PayTo        string `json:"pay_to"`
	Host         string `json:"host"`
	Method       string `json:"method"`
	URL          string `json:"url"`
	Expires      string `json:"expires" jsonschema:"When the approval lapses (RFC 3339, UTC)."`
	Approve      string `json:"approve_command" jsonschema:"What the user runs in a terminal to approve."`
	Deny         string `json:"deny_command" jsonschema:"What the user runs in a terminal to deny."`
	List         string `json:"list_command" jsonschema:"What the user runs to list pending approvals."`
}

// CLI names the x402-mcp binary and config file, so that text for the user
// shows commands that work as printed.
type CLI struct {
	Binary string // path or name of the x402-mcp executable
	Config string // the config file the server runs with; "" for none
}

func (c CLI) command(args ...string) string {
	bin := c.Binary
	if bin == "" {
		bin = "x402-mcp"
	}
	parts := []string{shellquote.Quote(bin)}
	for _, a := range args {
		parts = append(parts, shellquote.Quote(a))
	}
	if c.Config != "" {
		parts = append(parts, "--config", shellquote.Quote(c.Config))
	}
	return strings.Join(parts, " ")
}

// requester names the MCP client and this server process, for the human
// deciding an approval.
func requester(ctx context.Context) string {
	name := "an MCP client"
	if s, ok := server.ClientSessionFromContext(ctx).(server.SessionWithClientInfo); ok {
		if info := s.GetClientInfo(); info.Name != "" {
			// The client's own words, shown to the human in the CLI.
			name = x402.Display(info.Name, 64)
			if v := x402.Display(info.Version, 32); v != "" {
				name += " " + v
			}
		}
	}
	return fmt.Sprintf("%s via x402-mcp (pid %d)", name, os.Getpid())
}

// Why the question goes out of band, in the agent's words.
const (
	cannotAsk = "this MCP client cannot ask them directly"
	dismissed = "the question was dismissed without an answer (some hosts cancel it without showing it)"
)

// askOutOfBand records a pending approval in the ledger and tells the
// agent what to ask the user; the user decides with the CLI, and the same
// call repeated afterwards pays. why is cannotAsk or dismissed.
func askOutOfBand(ctx context.Context, d Deps, need *pay.ApprovalNeededError, why string) (*mcp.CallToolResult, error) {
	a := need.Ask
	out := FetchOutput{URL: pay.WireURL(need.Quote.URL), Status: need.Quote.Status, Verdict: need.Quote.Judgement.Verdict, Reasons: need.Quote.Judgement.Reasons}
	appr, err := d.Pay.RequestApproval(ctx, need, requester(ctx))
	if errors.Is(err, pay.ErrOutOfBandOff) {
		return refusal(fmt.Sprintf("This payment of %s %s to %s needs the user's approval (it is above the operator's approval threshold, policy: approval_above), but this MCP client cannot ask the user (it does not support elicitation) and out-of-band approval is turned off in the x402-mcp config. Nothing was paid. The operator can raise approval_above in the x402-mcp policy, turn on [approvals] out_of_band, or use a client that supports elicitation.", a.Amount, a.Token, a.Host), out), nil
	}
	if err != nil {
		return nil, err
	}
	out.Approval = approvalOut(appr, d.CLI)
	var b strings.Builder
	if p := need.Prior; p != nil && p.Binding != need.Binding {
		fmt.Fprintf(&b, "The earlier approval %s (%s) was for other terms — %s %s to %s — but the server now asks for %s %s to %s. It does not cover this payment. ",
			p.ID, p.Status(time.Now()), formatAmount(*p), p.Token, p.PayTo.Hex(), a.Amount, a.Token, a.PayTo)
	}
	fmt.Fprintf(&b, "Verdict: needs_approval. This payment needs the user's approval, and %s. Nothing was signed or paid.\n\n", why)
	fmt.Fprintf(&b, "Ask the user to approve payment %s, which expires at %s. Show them these terms as they are:\n", appr.ID, out.Approval.Expires)
	writeTerms(&b, a, "  ")
	for _, line := range a.BudgetAfter {
		fmt.Fprintf(&b, "%s.\n", line)
	}
	fmt.Fprintf(&b, "\nThe user approves it in a terminal with:\n  %s\nor refuses it with:\n  %s\n(%s lists every pending approval.)\n\n", out.Approval.Approve, out.Approval.Deny, out.Approval.List)
	b.WriteString("Once the user says they approved it, call x402_fetch again with exactly the same arguments: it pays exactly these terms, once. You cannot approve payments yourself, and you must not run these commands for the user.")
	return refusal(b.String(), out), nil
}

func approvalOut(a ledger.Approval, cli CLI) *ApprovalOut {
	host, _ := pay.ShowURL(a.URL)
	if host == "" {
		host = a.Host
	}
	return &ApprovalOut{ID: a.ID, Amount: formatAmount(a), AmountAtomic: a.Amount.String(), Token: a.Token, Network: a.Network,
		PayTo: a.PayTo.Hex(), Host: host, Method: a.Method, URL: pay.WireURL(a.URL), Expires: a.Expires.UTC().Format(time.RFC3339),
		Approve: cli.command("approve", a.ID), Deny: cli.command("deny", a.ID), List: cli.command("approvals")}
}

func formatAmount(a ledger.Approval) string { return tokens.FormatUnits(a.Amount, a.Decimals) }
