package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"modernc.org/sqlite"
)

// RepairReport says what Repair changed.
type RepairReport struct {
	Schema []string  // schema differences put right (triggers restored or removed)
	Sums   []SumDiff // sums rewritten to what the records add up to
}

// Repair puts a ledger that fails the integrity check right, from the
// records: it restores this program's triggers (dropping any other) and
// rewrites every sum to what the records add up to. It never trusts the
// stored sums, and it refuses a ledger whose tables or indexes were
// changed (those it cannot rebuild). The records themselves are not
// checked: Repair makes the budgets count what the records say was paid.
// It needs no other process to stop: it is one write transaction. path
// may be a PostgreSQL URL (see "PostgreSQL" in doc.go).
func Repair(path string) (RepairReport, error) {
	if IsPostgresURL(path) {
		return repairPG(path)
	}
	var rep RepairReport
	abs, err := filepath.Abs(path)
	if err != nil {
		return rep, fmt.Errorf("ledger: %w", err)
	}
	if _, err := os.Stat(abs); err != nil {
		return rep, fmt.Errorf("ledger: %w", err)
	}
	if err := checkFiles(abs); err != nil {
		return rep, err
	}
	connector, err := sqlite.NewConnector(dsn(abs))
	if err != nil {
		return rep, fmt.Errorf("ledger: %w", err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	if err := migrate(ctx, db, abs); err != nil {
		return rep, err
	}
	tx, err := db.BeginTx(ctx, nil) // IMMEDIATE (see dsn)
	if err != nil {
		return rep, openError(abs, "begin", err)
	}
	defer tx.Rollback()
	e, err := verifyTx(ctx, tx, abs)
	if err != nil || e == nil {
		return rep, err
	}
	if !e.Repairable() {
		return rep, fmt.Errorf("ledger: %s cannot be repaired: %s; keep the file for inspection and restore the ledger from a backup", abs, strings.Join(e.Schema, "; "))
	}
	want, err := expectedSchema()
	if err != nil {
		return rep, err
	}
	have, err := schemaOf(ctx, tx)
	if err != nil {
		return rep, err
	}
	for k, h := range have {
		if w, ok := want[k]; h.typ == "trigger" && (!ok || w.sql != h.sql) {
			if _, err := tx.ExecContext(ctx, `DROP TRIGGER "`+strings.ReplaceAll(h.name, `"`, `""`)+`"`); err != nil {
				return rep, fmt.Errorf("ledger: repair: %w", err)
			}
		}
	}
	for k, w := range want {
		if h, ok := have[k]; w.typ == "trigger" && (!ok || w.sql != h.sql) {
			if _, err := tx.ExecContext(ctx, w.sql); err != nil {
				return rep, fmt.Errorf("ledger: repair: %w", err)
			}
		}
	}
	rep.Schema = e.Schema
	// Every differing sum, not only the first maxDiffs.
	diffs, err := recountSums(ctx, tx, -1)
	if err != nil {
		return rep, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE sums_guard SET open = 1`); err != nil {
		return rep, fmt.Errorf("ledger: repair: %w", err)
	}
	if err := rewriteSums(ctx, tx, diffs); err != nil {
		return rep, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE sums_guard SET open = 0`); err != nil {
		return rep, fmt.Errorf("ledger: repair: %w", err)
	}
	rep.Sums = diffs
	if e, err := verifyTx(ctx, tx, abs); err != nil || e != nil {
		return RepairReport{}, fmt.Errorf("ledger: repair left %s inconsistent (%v, %v); nothing was changed", abs, e, err)
	}
	if err := tx.Commit(); err != nil {
		return RepairReport{}, fmt.Errorf("ledger: repair: commit: %w", err)
	}
	return rep, nil
}

// rewriteSums sets every sum in diffs to its recounted value, inside a
// repair's transaction (SQLite's or PostgreSQL's) whose caller has opened
// the guard on the sums table.
func rewriteSums(ctx context.Context, tx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}, diffs []SumDiff) error {
	for _, d := range diffs {
		var start int64
		if d.Span != 0 {
			start = d.Start.UnixNano()
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sums (host, span, start, usd_nano, count) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (host, span, start) DO UPDATE SET usd_nano = excluded.usd_nano, count = excluded.count`,
			d.Host, int64(d.Span), start, d.Counted.USDNano, d.Counted.Count); err != nil {
			return fmt.Errorf("ledger: repair: %w", err)
		}
	}
	return nil
}
