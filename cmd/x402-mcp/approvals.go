package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/x402-mcp/x402-mcp/internal/humantime"
	"io"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/x402-mcp/x402-mcp/internal/redact"
	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/pay"
	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/x402"
)

// How a human sees approvals: the ledger holds them (see ledger/doc.go),
// so every server sharing the ledger file sees the same decision, and
// these commands need no server running.

// approvalsCommand lists the approvals waiting for a decision (or, with
// --all, recent ones of every status): a table for people, JSON for
// machines.
func approvalsCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("approvals", flag.ContinueOnError)
	all := fs.Bool("all", false, "list recent approvals of every status, not only the pending ones")
	l, err := parseList(fs, "approvals", args, stdout, stderr)
	if err != nil {
		return err
	}
	led, path, err := ledgerAt(l.config, true, stderr)
	if err != nil {
		return err
	}
	defer led.Close()
	as, err := led.Approvals(ctx, *all, l.n)
	if err != nil {
		return err
	}
	now := time.Now()
	if l.json {
		return printApprovalsJSON(stdout, as, now)
	}
	if len(as) == 0 {
		what := "no approvals are pending"
		if *all {
			what = "no approvals are recorded"
		}
		fmt.Fprintf(stdout, "%s in %s\nan approval appears here when the agent asks to pay more than the policy's approval_above and the MCP host cannot ask you; approve it with x402-mcp approve ID, and the agent's repeat of the call pays\n", what, path)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tAMOUNT\tHOST\tPAYEE\tREQUEST\tREQUESTER\tAGE\tEXPIRES")
	for _, a := range as {
		status := a.Status(now)
		if a.State == ledger.ApprovalUsed {
			status = fmt.Sprintf("used (payment %d)", a.RecordID)
		}
		expires := "-"
		if a.State == ledger.ApprovalPending || a.State == ledger.ApprovalApproved {
			expires = humantime.Relative(now, a.Expires)
		}
		// Everything shown passes the display cleaner (pay.ApprovalTerms):
		// the ledger holds what the agent and the server wrote.
		terms := termMap(pay.ApprovalTerms(a))
		fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s\t%s\t%s\t%s\t%s\t%s\n", x402.Display(a.ID, 40), status,
			tokens.FormatUnits(a.Amount, a.Decimals), x402.Display(a.Token, 32), terms["host"], terms["payee"],
			shorten(terms["request"], 60), x402.DisplayRunes(a.Requester, 30), humantime.Roughly(now.Sub(a.Created)), expires)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !*all {
		fmt.Fprintln(stdout, "\napprove one with x402-mcp approve ID, or refuse it with x402-mcp deny ID")
	}
	return nil
}

// approvalJSON is one approval in --json output. The field names are an
// interface: add fields, never rename them.
type approvalJSON struct {
	ID         string `json:"id"`
	Status     string `json:"status"`
	Amount     string `json:"amount"`
	AmountAtom string `json:"amount_atomic"`
	Token      string `json:"token"`
	Asset      string `json:"asset"`
	Network    string `json:"network"`
	PayTo      string `json:"pay_to"`
	Host       string `json:"host"`
	Method     string `json:"method"`
	URL        string `json:"url"`
	Target     string `json:"target"` // path and query as shown to the human, clipped
	Requester  string `json:"requester"`
	Created    string `json:"created"`
	Expires    string `json:"expires"`
	Decided    string `json:"decided"`   // "" until approved or denied
	RecordID   int64  `json:"record_id"` // 0 until a payment used it
}

func printApprovalsJSON(w io.Writer, as []ledger.Approval, now time.Time) error {
	rows := make([]approvalJSON, 0, len(as))
	for _, a := range as {
		host, target := pay.ShowURL(a.URL)
		if host == "" {
			host = x402.Display(a.Host, 255)
		}
		decided := ""
		if !a.Decided.IsZero() {
			decided = a.Decided.UTC().Format(time.RFC3339)
		}
		rows = append(rows, approvalJSON{
			ID: a.ID, Status: a.Status(now),
			Amount: tokens.FormatUnits(a.Amount, a.Decimals), AmountAtom: a.Amount.String(),
			Token: a.Token, Asset: a.Asset.Hex(), Network: a.Network, PayTo: a.PayTo.Hex(), Host: host,
			Method: a.Method, URL: pay.WireURL(a.URL), Target: target, Requester: x402.Display(a.Requester, 200),
			Created: a.Created.UTC().Format(time.RFC3339), Expires: a.Expires.UTC().Format(time.RFC3339),
			Decided: decided, RecordID: a.RecordID,
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // URLs read as written: "&", not \u0026
	return enc.Encode(rows)
}

// decideCommand handles `x402-mcp approve ID` and `x402-mcp deny ID`.
func decideCommand(ctx context.Context, approve bool, args []string, stdout, stderr io.Writer) error {
	verb := "deny"
	if approve {
		verb = "approve"
	}
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (TOML)")
	ids, err := parseFlags(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		printCommandUsage(stderr, fs)
		return &exitError{code: 2, err: fmt.Errorf("x402-mcp %s needs the ID of an approval\n\thint: x402-mcp approvals lists the pending approvals and their IDs", verb)}
	}
	if err := wantArgs(fs, ids, 1, 1, stderr); err != nil {
		return err
	}
	led, path, err := ledgerAt(*configPath, false, stderr)
	if err != nil {
		return err
	}
	defer led.Close()
	a, err := led.Decide(ctx, ids[0], approve)
	var se *ledger.ApprovalStateError
	switch {
	case errors.Is(err, ledger.ErrApprovalNotFound):
		return fmt.Errorf("no approval %s in %s\n\thint: run x402-mcp approvals to list the pending ones (--all for every status)", redact.Quote(ids[0]), path)
	case errors.As(err, &se):
		return notPending(ctx, led, se, verb)
	case err != nil:
		return err
	}
	if approve {
		fmt.Fprintf(stdout, "approved %s:\n", a.ID)
	} else {
		fmt.Fprintf(stdout, "denied %s:\n", a.ID)
	}
	printTerms(stdout, a)
	if approve {
		fmt.Fprintf(stdout, "\nthe agent can now repeat the same x402_fetch call; it will pay exactly these terms once, before %s\n", humantime.Stamp(a.Expires))
	} else {
		fmt.Fprintln(stdout, "\nnothing was paid; if the agent repeats the call, it is told the payment was denied")
	}
	return nil
}

// notPending explains, with the approval's own facts, why a decision was
// refused.
func notPending(ctx context.Context, led *ledger.Ledger, se *ledger.ApprovalStateError, verb string) error {
	a, err := led.ApprovalByID(ctx, se.ID)
	if err != nil {
		return fmt.Errorf("cannot %s %s: %w", verb, se.ID, err)
	}
	switch se.Status {
	case "expired":
		return fmt.Errorf("cannot %s %s: it expired at %s; it can no longer pay\n\thint: if the payment is still wanted, have the agent repeat the call: it will ask for a new approval", verb, a.ID, humantime.Stamp(a.Expires))
	case string(ledger.ApprovalUsed):
		return fmt.Errorf("cannot %s %s: it was approved and already used by payment %d\n\thint: x402-mcp history lists the payment", verb, a.ID, a.RecordID)
	default:
		return fmt.Errorf("cannot %s %s: it was already %s at %s; a decision is final\n\thint: x402-mcp approvals --all shows every approval and its status", verb, a.ID, se.Status, humantime.Stamp(a.Decided))
	}
}

// printTerms shows everything the approval binds, host first: it is what
// a human should recognise before anything else. The terms are the ones
// the agent relayed and the elicitation showed (pay.ApprovalTerms), every
// value through the display cleaner.
func printTerms(w io.Writer, a ledger.Approval) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	terms := append(pay.ApprovalTerms(a),
		pay.Term{Name: "asked by", Value: x402.Display(a.Requester, 200)},
		pay.Term{Name: "expires", Value: fmt.Sprintf("%s (%s)", humantime.Stamp(a.Expires), humantime.Relative(time.Now(), a.Expires))})
	for _, t := range terms {
		fmt.Fprintf(tw, "  %s\t%s\n", t.Name, t.Value)
	}
	tw.Flush()
}

func termMap(ts []pay.Term) map[string]string {
	m := make(map[string]string, len(ts))
	for _, t := range ts {
		m[t.Name] = t.Value
	}
	return m
}

// shorten cuts s to n runes, marking the cut, so one long URL cannot push
// the table's other columns off screen.
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
