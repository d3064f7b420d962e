package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// repairPG is Repair for a PostgreSQL ledger: in one transaction, under
// the write lock, it puts back every trigger function and trigger of
// pgFunctions and pgTriggers (dropping any other trigger on the ledger's
// tables) and rewrites every sum from the records.
func repairPG(loc string) (RepairReport, error) {
	var rep RepairReport
	if err := checkPGURL(loc); err != nil {
		return rep, err
	}
	cfg, err := pgx.ParseConfig(loc)
	if err != nil {
		return rep, fmt.Errorf("%w: the PostgreSQL URL: %v", ErrInvalid, err)
	}
	cfg.RuntimeParams["search_path"] = pgSchema
	cfg.RuntimeParams["synchronous_commit"] = "on"
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = pgConnectTimeout
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	db.SetMaxOpenConns(1)
	d := &dialect{pg: true}
	ctx := context.Background()
	if err := migratePG(ctx, db, loc); err != nil {
		return rep, d.wrap(err)
	}
	sqltx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return rep, d.wrap(fmt.Errorf("ledger: repair: begin: %w", err))
	}
	defer sqltx.Rollback()
	tx := &rtx{Tx: sqltx, d: d}
	if _, err := tx.ExecContext(ctx, qWriteLock, pgWriteLock); err != nil {
		return rep, d.wrap(fmt.Errorf("ledger: repair: lock: %w", err))
	}
	e, err := verifyPG(ctx, tx, loc)
	if err != nil || e == nil {
		return rep, err
	}
	if !e.Repairable() {
		return rep, fmt.Errorf("ledger: %s cannot be repaired: %s", loc, strings.Join(e.Schema, "; "))
	}
	if len(e.Schema) > 0 {
		if err := resetTriggers(ctx, sqltx); err != nil {
			return rep, err
		}
	}
	rep.Schema = e.Schema
	diffs, err := recountSums(ctx, tx, -1)
	if err != nil {
		return rep, err
	}
	if _, err := tx.ExecContext(ctx, `SELECT set_config('x402.repair', 'on', true)`); err != nil {
		return rep, fmt.Errorf("ledger: repair: %w", err)
	}
	if err := rewriteSums(ctx, tx, diffs); err != nil {
		return rep, err
	}
	if _, err := tx.ExecContext(ctx, `SELECT set_config('x402.repair', 'off', true)`); err != nil {
		return rep, fmt.Errorf("ledger: repair: %w", err)
	}
	rep.Sums = diffs
	if e, err := verifyPG(ctx, tx, loc); err != nil || e != nil {
		return RepairReport{}, fmt.Errorf("ledger: repair left %s inconsistent (%v, %v); nothing was changed", loc, e, err)
	}
	if err := sqltx.Commit(); err != nil {
		return RepairReport{}, d.wrap(fmt.Errorf("ledger: repair: commit: %w", err))
	}
	return rep, nil
}

// resetTriggers drops every trigger on the ledger's tables and creates
// this program's functions and triggers again.
func resetTriggers(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT format('DROP TRIGGER %I ON %I.%I', t.tgname, n.nspname, c.relname)
		FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND NOT t.tgisinternal`, pgSchema)
	if err != nil {
		return fmt.Errorf("ledger: repair: %w", err)
	}
	var drops []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return err
		}
		drops = append(drops, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, q := range append(drops, pgFunctionsDDL(), pgTriggersDDL()) {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return errors.Join(errors.New("ledger: repair: triggers"), err)
		}
	}
	return nil
}
