package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The PostgreSQL schema: SQLite's (schema.go), table for table and rule
// for rule, in schema x402. Differences, each for a reason:
//
//   - ns and nano-USD are BIGINT: an overflowing sum raises "bigint out of
//     range" and the statement fails, as SQLite's STRICT INTEGER does.
//   - records.id is given by the insert as max(id)+1, under the write
//     lock: ids without gaps, as SQLite's rowids (a sequence would leave
//     one per refused reservation).
//   - approvals has a column named rowid (an identity): the queries order
//     approvals by insertion as SQLite's rowid does, with the same text.
//   - Every rule a SQLite trigger raises is a PL/pgSQL trigger function
//     raising the same message. The sums guard is pg_trigger_depth(): sums
//     may be written only from inside another trigger (the records'
//     count and uncount), or by Repair, which sets x402.repair for its
//     transaction. No guard row is written per payment.
//   - TRUNCATE, which skips row triggers, is refused on every table.

// pgFunctions are the trigger functions, name → body. Verify compares the
// stored bodies with these.
var pgFunctions = map[string]string{
	"refuse": `
BEGIN
	RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'integrity_constraint_violation';
END`,
	"records_count": `
BEGIN
	INSERT INTO x402.sums AS s (host, span, start, usd_nano, count) VALUES
		('',       0, 0, NEW.usd_nano, 1),
		(NEW.host, 0, 0, NEW.usd_nano, 1),
		('',       3600000000000, NEW.created - (NEW.created % 3600000000000 + 3600000000000) % 3600000000000, NEW.usd_nano, 1),
		(NEW.host, 3600000000000, NEW.created - (NEW.created % 3600000000000 + 3600000000000) % 3600000000000, NEW.usd_nano, 1),
		('',       60000000000, NEW.created - (NEW.created % 60000000000 + 60000000000) % 60000000000, NEW.usd_nano, 1),
		(NEW.host, 60000000000, NEW.created - (NEW.created % 60000000000 + 60000000000) % 60000000000, NEW.usd_nano, 1)
	ON CONFLICT (host, span, start) DO UPDATE SET usd_nano = s.usd_nano + excluded.usd_nano, count = s.count + 1;
	RETURN NULL;
END`,
	"records_uncount": `
BEGIN
	UPDATE x402.sums SET usd_nano = usd_nano - OLD.usd_nano, count = count - 1
	WHERE host IN ('', OLD.host) AND (
		(span = 0 AND start = 0) OR
		(span = 3600000000000 AND start = OLD.created - (OLD.created % 3600000000000 + 3600000000000) % 3600000000000) OR
		(span = 60000000000 AND start = OLD.created - (OLD.created % 60000000000 + 60000000000) % 60000000000));
	RETURN NULL;
END`,
	"sums_guard": `
BEGIN
	IF pg_trigger_depth() < 2 AND coalesce(current_setting('x402.repair', true), '') <> 'on' THEN
		RAISE EXCEPTION 'ledger: sums change only with the records they count' USING ERRCODE = 'integrity_constraint_violation';
	END IF;
	RETURN NEW;
END`,
	"approvals_use": `
BEGIN
	IF NOT EXISTS (SELECT 1 FROM x402.records r WHERE r.id = NEW.record_id
		AND r.amount = NEW.amount AND r.network = NEW.network AND r.host = NEW.host
		AND lower(r.asset) = lower(NEW.asset) AND lower(r.pay_to) = lower(NEW.pay_to)) THEN
		RAISE EXCEPTION 'ledger: an approval is used only by a record with its terms' USING ERRCODE = 'integrity_constraint_violation';
	END IF;
	RETURN NEW;
END`,
}

// pgTriggers are the triggers, "table.name" → definition (after CREATE
// TRIGGER name).
var pgTriggers = map[string]string{
	"records.records_count":   `AFTER INSERT ON x402.records FOR EACH ROW WHEN (NEW.state <> 'failed') EXECUTE FUNCTION x402.records_count()`,
	"records.records_uncount": `AFTER UPDATE OF state ON x402.records FOR EACH ROW WHEN (OLD.state <> 'failed' AND NEW.state = 'failed') EXECUTE FUNCTION x402.records_uncount()`,
	"records.records_transition": `BEFORE UPDATE OF state ON x402.records FOR EACH ROW WHEN (NOT (OLD.state = NEW.state
	OR (OLD.state = 'reserved' AND NEW.state IN ('sent', 'failed'))
	OR (OLD.state = 'sent'     AND NEW.state IN ('settled', 'unknown'))
	OR (OLD.state = 'unknown'  AND NEW.state IN ('settled', 'failed'))))
	EXECUTE FUNCTION x402.refuse('ledger: forbidden state transition')`,
	"records.records_immutable": `BEFORE UPDATE OF id, created, url, host, network, asset, token, decimals, amount, usd_nano,
	pay_to, payer, nonce, valid_before, owner ON x402.records FOR EACH ROW EXECUTE FUNCTION x402.refuse('ledger: payment fields are immutable')`,
	"records.records_keep":     `BEFORE DELETE ON x402.records FOR EACH ROW EXECUTE FUNCTION x402.refuse('ledger: records are never deleted')`,
	"records.records_truncate": `BEFORE TRUNCATE ON x402.records EXECUTE FUNCTION x402.refuse('ledger: records are never deleted')`,
	"sums.sums_keep":           `BEFORE DELETE ON x402.sums FOR EACH ROW EXECUTE FUNCTION x402.refuse('ledger: sums are never deleted')`,
	"sums.sums_truncate":       `BEFORE TRUNCATE ON x402.sums EXECUTE FUNCTION x402.refuse('ledger: sums are never deleted')`,
	"sums.sums_written":        `BEFORE INSERT OR UPDATE ON x402.sums FOR EACH ROW EXECUTE FUNCTION x402.sums_guard()`,
	"approvals.approvals_transition": `BEFORE UPDATE OF state ON x402.approvals FOR EACH ROW WHEN (NOT (OLD.state = NEW.state
	OR (OLD.state = 'pending'  AND NEW.state IN ('approved', 'denied'))
	OR (OLD.state = 'approved' AND NEW.state = 'used')))
	EXECUTE FUNCTION x402.refuse('ledger: forbidden approval transition')`,
	"approvals.approvals_outcome": `BEFORE UPDATE OF decided, record_id ON x402.approvals FOR EACH ROW WHEN (
	(NEW.decided IS DISTINCT FROM OLD.decided AND NOT (OLD.state = 'pending' AND NEW.state IN ('approved', 'denied')))
	OR (NEW.record_id IS DISTINCT FROM OLD.record_id AND NOT (OLD.state = 'approved' AND NEW.state = 'used')))
	EXECUTE FUNCTION x402.refuse('ledger: approval outcome fields are written once')`,
	"approvals.approvals_use": `BEFORE UPDATE OF state ON x402.approvals FOR EACH ROW WHEN (NEW.state = 'used' AND OLD.state <> 'used')
	EXECUTE FUNCTION x402.approvals_use()`,
	"approvals.approvals_immutable": `BEFORE UPDATE OF rowid, id, binding, request_key, method, url, host, network, asset, token, decimals,
	amount, usd_nano, pay_to, requester, created, expires ON x402.approvals FOR EACH ROW EXECUTE FUNCTION x402.refuse('ledger: approval terms are immutable')`,
	"approvals.approvals_keep":     `BEFORE DELETE ON x402.approvals FOR EACH ROW EXECUTE FUNCTION x402.refuse('ledger: approvals are never deleted')`,
	"approvals.approvals_truncate": `BEFORE TRUNCATE ON x402.approvals EXECUTE FUNCTION x402.refuse('ledger: approvals are never deleted')`,
	"payloads.payloads_keep":       `BEFORE DELETE ON x402.payloads FOR EACH ROW EXECUTE FUNCTION x402.refuse('ledger: payloads are never deleted')`,
	"payloads.payloads_truncate":   `BEFORE TRUNCATE ON x402.payloads EXECUTE FUNCTION x402.refuse('ledger: payloads are never deleted')`,
	"payloads.payloads_immutable":  `BEFORE UPDATE OF record_id, request_key, payment_id ON x402.payloads FOR EACH ROW EXECUTE FUNCTION x402.refuse('ledger: payload keys are immutable')`,
	"payloads.payloads_header_once": `BEFORE UPDATE OF header_name, header_value ON x402.payloads FOR EACH ROW WHEN (OLD.header_value <> '')
	EXECUTE FUNCTION x402.refuse('ledger: a sent payment header is never rewritten')`,
	"meta.meta_keep":      `BEFORE DELETE ON x402.meta FOR EACH ROW EXECUTE FUNCTION x402.refuse('ledger: the ledger''s identity is never deleted')`,
	"meta.meta_truncate":  `BEFORE TRUNCATE ON x402.meta EXECUTE FUNCTION x402.refuse('ledger: the ledger''s identity is never deleted')`,
	"meta.meta_immutable": `BEFORE UPDATE ON x402.meta FOR EACH ROW WHEN (OLD.key <> 'schema_version') EXECUTE FUNCTION x402.refuse('ledger: the ledger''s identity never changes')`,
}

const pgTables = `
CREATE TABLE x402.meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
INSERT INTO x402.meta (key, value) VALUES ('ledger_id', replace(gen_random_uuid()::text, '-', ''));

CREATE TABLE x402.records (
	id           BIGINT  PRIMARY KEY,
	created      BIGINT  NOT NULL,
	updated      BIGINT  NOT NULL,
	url          TEXT    NOT NULL,
	host         TEXT    NOT NULL,
	network      TEXT    NOT NULL,
	asset        TEXT    NOT NULL,
	token        TEXT    NOT NULL,
	decimals     INTEGER NOT NULL CHECK (decimals BETWEEN 0 AND 255),
	amount       TEXT    NOT NULL CHECK (amount ~ '^[1-9][0-9]{0,77}$'),
	usd_nano     BIGINT  NOT NULL CHECK (usd_nano >= 0),
	pay_to       TEXT    NOT NULL,
	payer        TEXT    NOT NULL,
	nonce        TEXT    NOT NULL,
	valid_before BIGINT  NOT NULL,
	state        TEXT    NOT NULL CHECK (state IN ('reserved', 'sent', 'settled', 'failed', 'unknown')),
	tx           TEXT    NOT NULL DEFAULT '',
	settlement   TEXT    NOT NULL DEFAULT '',
	note         TEXT    NOT NULL DEFAULT '',
	owner        TEXT    NOT NULL,
	lease_until  BIGINT  NOT NULL
);
CREATE UNIQUE INDEX records_payer_nonce ON x402.records (lower(payer), lower(nonce));
CREATE INDEX records_created ON x402.records (created, state, usd_nano);
CREATE INDEX records_host_created ON x402.records (host, created, state, usd_nano);
CREATE INDEX records_state ON x402.records (state, lease_until);

CREATE TABLE x402.sums (
	host     TEXT   NOT NULL,
	span     BIGINT NOT NULL,
	start    BIGINT NOT NULL,
	usd_nano BIGINT NOT NULL CHECK (usd_nano >= 0),
	count    BIGINT NOT NULL CHECK (count >= 0),
	PRIMARY KEY (host, span, start)
);

CREATE TABLE x402.approvals (
	rowid       BIGINT  GENERATED ALWAYS AS IDENTITY UNIQUE,
	id          TEXT    PRIMARY KEY CHECK (id ~ '^ap-[a-z2-7]{8}$'),
	binding     TEXT    NOT NULL CHECK (binding ~ '^[0-9a-f]{64}$'),
	request_key TEXT    NOT NULL CHECK (request_key ~ '^[0-9a-f]{64}$'),
	method      TEXT    NOT NULL,
	url         TEXT    NOT NULL,
	host        TEXT    NOT NULL,
	network     TEXT    NOT NULL,
	asset       TEXT    NOT NULL,
	token       TEXT    NOT NULL,
	decimals    INTEGER NOT NULL CHECK (decimals BETWEEN 0 AND 255),
	amount      TEXT    NOT NULL CHECK (amount ~ '^[1-9][0-9]{0,77}$'),
	usd_nano    BIGINT  NOT NULL CHECK (usd_nano >= 0),
	pay_to      TEXT    NOT NULL,
	requester   TEXT    NOT NULL,
	created     BIGINT  NOT NULL,
	expires     BIGINT  NOT NULL CHECK (expires > created),
	state       TEXT    NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'used')),
	decided     BIGINT  NOT NULL DEFAULT 0,
	record_id   BIGINT  NOT NULL DEFAULT 0,
	CHECK ((state = 'pending') = (decided = 0)),
	CHECK ((state = 'used') = (record_id <> 0))
);
CREATE INDEX approvals_request ON x402.approvals (request_key, created);
CREATE INDEX approvals_state ON x402.approvals (state, expires);
CREATE UNIQUE INDEX approvals_record ON x402.approvals (record_id) WHERE record_id <> 0;

CREATE TABLE x402.payloads (
	record_id    BIGINT  PRIMARY KEY REFERENCES x402.records (id),
	request_key  TEXT    NOT NULL CHECK (request_key ~ '^[0-9a-f]{64}$'),
	payment_id   TEXT    NOT NULL DEFAULT '' CHECK (length(payment_id) <= 128),
	header_name  TEXT    NOT NULL DEFAULT '',
	header_value TEXT    NOT NULL DEFAULT '',
	delivered    INTEGER NOT NULL DEFAULT 0 CHECK (delivered IN (0, 1))
);
CREATE INDEX payloads_request ON x402.payloads (request_key);
`

// pgMigrations()[i] takes the schema from version i to i+1. Append only.
// They are built on first use, not at package init: only a PostgreSQL
// ledger needs them, and formatting the DDL delayed every start (issue 10,
// goal 3).
var pgMigrations = sync.OnceValue(func() []string {
	return []string{
		pgTables + pgFunctionsDDL() + pgTriggersDDL(),
	}
})

func pgFunctionsDDL() string {
	var b strings.Builder
	for _, name := range sortedKeys(pgFunctions) {
		fmt.Fprintf(&b, "CREATE OR REPLACE FUNCTION x402.%s() RETURNS trigger LANGUAGE plpgsql AS $fn$%s$fn$;\n", name, pgFunctions[name])
	}
	return b.String()
}

func pgTriggersDDL() string {
	var b strings.Builder
	for _, k := range sortedKeys(pgTriggers) {
		_, name, _ := strings.Cut(k, ".")
		fmt.Fprintf(&b, "CREATE TRIGGER %s %s;\n", name, pgTriggers[k])
	}
	return b.String()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// pgOverrides are the queries whose PostgreSQL text is not a rebind of
// SQLite's (see dialect).
var pgOverrides = map[string]string{
	// Gapless ids as SQLite's rowids; max(id) reads one index entry, and
	// the write lock keeps two inserts from computing the same one.
	qInsert: `INSERT INTO records
		(id, created, updated, url, host, network, asset, token, decimals, amount, usd_nano,
		 pay_to, payer, nonce, valid_before, state, owner, lease_until)
		VALUES ((SELECT coalesce(max(id), 0) + 1 FROM records), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
		RETURNING id`,
	// PostgreSQL before 16 wants a name for a subquery in FROM.
	qSumWindow:     rebind(qSumWindow) + " AS w",
	qSumWindowHost: rebind(qSumWindowHost) + " AS w",
	// INDEXED BY is SQLite's; PostgreSQL picks records_host_created itself.
	qRecountRecords: `SELECT host, created, usd_nano FROM records WHERE state <> 'failed' ORDER BY host, created`,
}

// migratePG brings the schema up to date under a session-level advisory
// lock on one connection: processes opening a new database together
// migrate it once, the others wait and find it done.
func migratePG(ctx context.Context, db *sql.DB, loc string) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("ledger: open %s: connect: %w", loc, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, pgMigrateLock); err != nil {
		return fmt.Errorf("ledger: open %s: lock for migration: %w", loc, err)
	}
	defer conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, pgMigrateLock)

	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("ledger: open %s: begin: %w", loc, err)
	}
	defer tx.Rollback()
	version, err := pgVersion(ctx, tx, loc)
	if err != nil {
		return err
	}
	if version == len(pgMigrations()) {
		return nil
	}
	if version == 0 {
		if _, err := tx.ExecContext(ctx, `CREATE SCHEMA `+pgSchema); err != nil {
			return fmt.Errorf("ledger: open %s: create schema %s: %w", loc, pgSchema, err)
		}
	}
	for v := version; v < len(pgMigrations()); v++ {
		if _, err := tx.ExecContext(ctx, pgMigrations()[v]); err != nil {
			return fmt.Errorf("ledger: %s: migrate to schema v%d: %w", loc, v+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO x402.meta (key, value) VALUES ('schema_version', $1)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, strconv.Itoa(len(pgMigrations()))); err != nil {
		return fmt.Errorf("ledger: open %s: set the schema version: %w", loc, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("ledger: open %s: commit: %w", loc, err)
	}
	return nil
}

// pgVersion reads the schema version: 0 for a database without schema
// x402 (ours to create), ErrNotLedger when x402 exists but is not ours.
func pgVersion(ctx context.Context, tx *sql.Tx, loc string) (int, error) {
	var hasSchema, hasMeta bool
	if err := tx.QueryRowContext(ctx, `SELECT
		EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),
		to_regclass($1 || '.meta') IS NOT NULL`, pgSchema).Scan(&hasSchema, &hasMeta); err != nil {
		return 0, fmt.Errorf("ledger: open %s: %w", loc, err)
	}
	if !hasSchema {
		return 0, nil
	}
	notOurs := fmt.Errorf("%w: %s has a schema %s that is not an x402-mcp ledger; choose another database", ErrNotLedger, loc, pgSchema)
	if !hasMeta {
		return 0, notOurs
	}
	var s string
	err := tx.QueryRowContext(ctx, `SELECT value FROM x402.meta WHERE key = 'schema_version'`).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, notOurs
	}
	if err != nil {
		return 0, fmt.Errorf("ledger: open %s: %w", loc, err)
	}
	v, err := strconv.Atoi(s)
	switch {
	case err != nil || v < 1:
		return 0, notOurs
	case v > len(pgMigrations()):
		return 0, fmt.Errorf("%w: %s has schema v%d, this program knows v%d; upgrade x402-mcp", ErrTooNew, loc, v, len(pgMigrations()))
	}
	return v, nil
}

// verifyPG is verify for PostgreSQL: every trigger of pgTriggers is there
// and enabled and no other is, every trigger function has its body, and
// every sum equals the recount of the records.
func verifyPG(ctx context.Context, tx *rtx, loc string) (*IntegrityError, error) {
	e := &IntegrityError{Path: loc}
	rows, err := tx.Tx.QueryContext(ctx, `SELECT c.relname || '.' || t.tgname, t.tgenabled <> 'D'
		FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND NOT t.tgisinternal`, pgSchema)
	if err != nil {
		return nil, fmt.Errorf("ledger: open %s: read triggers: %w", loc, err)
	}
	seen := map[string]bool{}
	for rows.Next() {
		var name string
		var enabled bool
		if err := rows.Scan(&name, &enabled); err != nil {
			rows.Close()
			return nil, err
		}
		seen[name] = true
		_, short, _ := strings.Cut(name, ".")
		switch _, ours := pgTriggers[name]; {
		case !ours:
			e.Schema = append(e.Schema, "trigger "+short+" is not x402-mcp's")
		case !enabled:
			e.Schema = append(e.Schema, "trigger "+short+" is disabled")
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for name := range pgTriggers {
		if !seen[name] {
			_, short, _ := strings.Cut(name, ".")
			e.Schema = append(e.Schema, "trigger "+short+" is missing")
		}
	}
	rows, err = tx.Tx.QueryContext(ctx, `SELECT p.proname, p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = $1`, pgSchema)
	if err != nil {
		return nil, fmt.Errorf("ledger: open %s: read functions: %w", loc, err)
	}
	fseen := map[string]bool{}
	for rows.Next() {
		var name, src string
		if err := rows.Scan(&name, &src); err != nil {
			rows.Close()
			return nil, err
		}
		fseen[name] = true
		if want, ok := pgFunctions[name]; !ok || want != src {
			e.Schema = append(e.Schema, "trigger function "+name+" is not x402-mcp's (changed)")
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for name := range pgFunctions {
		if !fseen[name] {
			e.Schema = append(e.Schema, "trigger function "+name+" is missing")
		}
	}
	objs, err := pgObjectsOf(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("ledger: open %s: read indexes and constraints: %w", loc, err)
	}
	for _, o := range pgObjects {
		if !objs[o] {
			e.Schema = append(e.Schema, o+" is missing")
		}
		delete(objs, o)
	}
	for o := range objs {
		e.Schema = append(e.Schema, o+" is not x402-mcp's")
	}
	slices.Sort(e.Schema)
	if len(e.Schema) > 0 && !e.Repairable() {
		return e, nil // a table is changed: a recount could fail or mislead
	}
	return e.recount(ctx, tx)
}

// pgObjects are the indexes and constraints (primary, unique, foreign
// key, check) of the schema, by the names PostgreSQL gives them: a
// dropped CHECK or unique index is noticed. Their definitions are not
// compared (their text varies with the server's version); the triggers,
// which hold the rules that matter most, are.
var pgObjects = []string{
	"constraint approvals.approvals_amount_check", "constraint approvals.approvals_binding_check",
	"constraint approvals.approvals_check", "constraint approvals.approvals_check1",
	"constraint approvals.approvals_check2", "constraint approvals.approvals_decimals_check",
	"constraint approvals.approvals_id_check", "constraint approvals.approvals_pkey",
	"constraint approvals.approvals_request_key_check", "constraint approvals.approvals_rowid_key",
	"constraint approvals.approvals_state_check", "constraint approvals.approvals_usd_nano_check",
	"index approvals.approvals_pkey", "index approvals.approvals_record", "index approvals.approvals_request",
	"index approvals.approvals_rowid_key", "index approvals.approvals_state",
	"constraint meta.meta_pkey", "index meta.meta_pkey",
	"constraint payloads.payloads_delivered_check", "constraint payloads.payloads_payment_id_check",
	"constraint payloads.payloads_pkey", "constraint payloads.payloads_record_id_fkey",
	"constraint payloads.payloads_request_key_check",
	"index payloads.payloads_pkey", "index payloads.payloads_request",
	"constraint records.records_amount_check", "constraint records.records_decimals_check",
	"constraint records.records_pkey", "constraint records.records_state_check",
	"constraint records.records_usd_nano_check",
	"index records.records_created", "index records.records_host_created", "index records.records_payer_nonce",
	"index records.records_pkey", "index records.records_state",
	"constraint sums.sums_count_check", "constraint sums.sums_pkey", "constraint sums.sums_usd_nano_check",
	"index sums.sums_pkey",
}

func pgObjectsOf(ctx context.Context, tx *rtx) (map[string]bool, error) {
	rows, err := tx.Tx.QueryContext(ctx, `SELECT 'index ' || c.relname || '.' || i.relname
		FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1
		UNION ALL
		SELECT 'constraint ' || c.relname || '.' || k.conname
		FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND k.contype IN ('c', 'p', 'u', 'f')`, pgSchema)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[string]bool{}
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			return nil, err
		}
		m[o] = true
	}
	return m, rows.Err()
}
