package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/pay"
	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/x402"
)

// history prints the ledger: a table for people, JSON for machines.
func history(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	l, err := parseList(flag.NewFlagSet("history", flag.ContinueOnError), "records", args, stdout, stderr)
	if err != nil {
		return err
	}
	led, path, err := ledgerAt(l.config, true, stderr)
	if err != nil {
		return err
	}
	defer led.Close()
	recs, err := led.Recent(ctx, l.n)
	if err != nil {
		return err
	}
	if l.json {
		type row struct {
			ID          int64  `json:"id"`
			Created     string `json:"created"`
			Updated     string `json:"updated"`
			State       string `json:"state"`
			URL         string `json:"url"`
			Host        string `json:"host"`
			Amount      string `json:"amount"`
			AmountAtom  string `json:"amount_atomic"`
			Token       string `json:"token"`
			Asset       string `json:"asset"`
			Network     string `json:"network"`
			PayTo       string `json:"pay_to"`
			Payer       string `json:"payer"`
			Nonce       string `json:"nonce"`
			ValidBefore int64  `json:"valid_before"`
			// ValidUntil is valid_before in RFC 3339, for the records
			// whose authorization can still be settled by whoever holds
			// it (sent, unknown).
			ValidUntil  string `json:"valid_until,omitempty"`
			Transaction string `json:"transaction,omitempty"`
			Settlement  string `json:"settlement,omitempty"`
			Note        string `json:"note,omitempty"`
		}
		rows := make([]row, 0, len(recs))
		for _, r := range recs {
			rows = append(rows, row{r.ID, r.Created.UTC().Format(time.RFC3339), r.Updated.UTC().Format(time.RFC3339), string(r.State), pay.WireURL(r.URL), r.Host,
				tokens.FormatUnits(r.Amount, r.Decimals), r.Amount.String(), r.Token, r.Asset.Hex(), r.Network, r.PayTo.Hex(), r.Payer.Hex(), x402.NonceHex(r.Nonce), r.ValidBefore,
				validUntil(r), x402.Display(r.Transaction, 80), r.Settlement, x402.Display(r.Note, 1000)})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	if len(recs) == 0 {
		fmt.Fprintf(stdout, "no payments recorded in %s\n", path)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME (UTC)\tSTATE\tAMOUNT\tNETWORK\tHOST\tTRANSACTION\tNOTE")
	for _, r := range recs {
		tx := r.Transaction
		if tx == "" {
			tx = "-"
		}
		// The note is the last column, so a long one widens no other.
		note := x402.Display(r.Note, 1000)
		if until := validUntil(r); until != "" {
			note = strings.TrimSuffix("valid until "+until+"; "+note, "; ")
		}
		if note == "" {
			note = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s %s\t%s\t%s\t%s\t%s\n", r.ID, r.Created.UTC().Format("2006-01-02 15:04:05"), r.State,
			tokens.FormatUnits(r.Amount, r.Decimals), r.Token, r.Network, x402.Display(r.Host, 255), x402.Display(tx, 80), shorten(note, 160))
	}
	return tw.Flush()
}

// validUntil is when a sent or unknown record's authorization expires, in
// RFC 3339: until then it can still be settled. Empty in other states.
func validUntil(r ledger.Record) string {
	if t, ok := r.ValidUntil(); ok {
		return t.Format(time.RFC3339)
	}
	return ""
}
