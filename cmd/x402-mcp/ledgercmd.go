package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/x402-mcp/x402-mcp/config"
	"github.com/x402-mcp/x402-mcp/ledger"
)

// ledgerCommand checks the ledger's integrity (verify) or puts its sums
// right from its records (repair); see "Integrity" in ledger's doc.go.
func ledgerCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "migrate" {
		return migrateLedger(ctx, args[1:], stdout, stderr)
	}
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

// migrateLedger copies the configured SQLite ledger into the PostgreSQL
// ledger --to names (see "Running a fleet" in the README). Running it again
// copies nothing twice; the file is only read.
func migrateLedger(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ledger migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (TOML)")
	to := fs.String("to", "", "the PostgreSQL ledger: postgres://USER@HOST:PORT/DATABASE (the password from ~/.pgpass, PGPASSFILE or PGPASSWORD)")
	pos, err := parseFlags(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos, 0, 0, stderr); err != nil {
		return err
	}
	if !config.IsDatabaseURL(*to) {
		return misuse(fs, stderr, "--to must name a PostgreSQL database: postgres://USER@HOST:PORT/DATABASE")
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	src, path, err := openLedgerFile(cfg, false, stderr)
	if err != nil {
		return err
	}
	defer src.Close()
	if config.IsDatabaseURL(path) {
		return fmt.Errorf("the configured ledger is already a database; ledger migrate copies a SQLite ledger file into PostgreSQL\n\thint: point --config at the configuration that names the file")
	}
	dst, err := ledger.Open(*to, ledger.Options{Lease: ledgerLease(cfg)})
	if err != nil {
		return err
	}
	defer dst.Close()
	rep, err := ledger.CopyTo(ctx, src, dst)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "copied %d payments and %d approvals from %s into %s (already there: %d payments, %d approvals)\n",
		rep.Records, rep.Approvals, path, dst.Path(), rep.SkippedRecords, rep.SkippedApprovals)
	fmt.Fprintln(stdout, "set ledger to that URL (or X402_MCP_LEDGER) on every machine; running this again copies nothing twice")
	return nil
}
