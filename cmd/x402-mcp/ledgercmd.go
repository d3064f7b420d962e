package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/x402-mcp/x402-mcp/config"
	"github.com/x402-mcp/x402-mcp/ledger"
)

// ledgerCommand checks the ledger's integrity (verify) or puts its sums
// right from its records (repair); see "Integrity" in ledger's doc.go.
func ledgerCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb, cfg, err := configOnly("ledger", args, stdout, stderr)
	if err != nil {
		return err
	}
	if verb == "repair" {
		return repairLedger(cfg, stdout)
	}
	// Open with read: the damage is what verify reports, not an error.
	led, path, err := openLedgerFile(cfg, true, io.Discard)
	if err != nil {
		return err
	}
	defer led.Close()
	var ie *ledger.IntegrityError
	if !errors.As(led.Damage(), &ie) {
		fmt.Fprintf(stdout, "ledger %s: whole; every sum agrees with its records\n", path)
		return nil
	}
	printDamage(stdout, ie)
	return fmt.Errorf("ledger %s fails its integrity check; nothing can be paid from it\n\thint: %s", path, repairHint(cfg, ie))
}

func printDamage(w io.Writer, ie *ledger.IntegrityError) {
	fmt.Fprintf(w, "ledger %s: changed outside x402-mcp:\n", ie.Path)
	for _, s := range ie.Schema {
		fmt.Fprintf(w, "  %s\n", s)
	}
	for _, d := range ie.Sums {
		fmt.Fprintf(w, "  %s\n", d)
	}
	if ie.More {
		fmt.Fprintln(w, "  and more sums")
	}
}

// repairLedger rebuilds the triggers and rewrites the sums from the
// records. It refuses what the ledger's Open refuses before the integrity
// check (a ledger others can write, a deleted or swapped one): those are
// not put right by recounting.
func repairLedger(cfg *config.Config, stdout io.Writer) error {
	led, path, err := openLedgerFile(cfg, true, io.Discard)
	if err != nil {
		return err
	}
	led.Close()
	rep, err := ledger.Repair(path)
	if err != nil {
		return err
	}
	if len(rep.Schema)+len(rep.Sums) == 0 {
		fmt.Fprintf(stdout, "ledger %s: whole; nothing to repair\n", path)
		return nil
	}
	fmt.Fprintf(stdout, "ledger %s: repaired from its records:\n", path)
	for _, s := range rep.Schema {
		fmt.Fprintf(stdout, "  put right: %s\n", s)
	}
	const shown = 20
	for i, d := range rep.Sums {
		if i == shown {
			fmt.Fprintf(stdout, "  and %d more sums\n", len(rep.Sums)-shown)
			break
		}
		fmt.Fprintf(stdout, "  rewritten: %s\n", d)
	}
	return nil
}
