package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// applicationID marks a SQLite file as an x402-mcp ledger ("x402" in
// ASCII), so Open can tell its own file from any other database.
const applicationID = 0x78343032

// migrations[i] takes the schema from user_version i to i+1. Append only:
// a released migration is never edited, since files in the field have run it.
var migrations = []string{
	// v1.
	`
CREATE TABLE records (
	-- Records are never deleted, so rowids only grow: no AUTOINCREMENT,
	-- which would write sqlite_sequence on every insert.
	id           INTEGER PRIMARY KEY,
	created      INTEGER NOT NULL,                  -- unix ns; rolling windows use it
	updated      INTEGER NOT NULL,                  -- unix ns
	url          TEXT    NOT NULL,
	host         TEXT    NOT NULL,
	network      TEXT    NOT NULL,
	asset        TEXT    NOT NULL,
	token        TEXT    NOT NULL,
	decimals     INTEGER NOT NULL CHECK (decimals BETWEEN 0 AND 255),
	-- atomic units as decimal text: uint256 does not fit an INTEGER
	amount       TEXT    NOT NULL CHECK (length(amount) BETWEEN 1 AND 78
	                                     AND amount NOT GLOB '*[^0-9]*' AND amount NOT GLOB '0*'),
	usd_nano     INTEGER NOT NULL CHECK (usd_nano >= 0),
	pay_to       TEXT    NOT NULL,
	payer        TEXT    NOT NULL,
	nonce        TEXT    NOT NULL,
	valid_before INTEGER NOT NULL,
	state        TEXT    NOT NULL CHECK (state IN ('reserved', 'sent', 'settled', 'failed', 'unknown')),
	tx           TEXT    NOT NULL DEFAULT '',
	settlement   TEXT    NOT NULL DEFAULT '',
	note         TEXT    NOT NULL DEFAULT '',
	owner        TEXT    NOT NULL,
	lease_until  INTEGER NOT NULL                   -- unix ns
) STRICT;

-- One record per authorization. lower(): hex case carries no meaning.
CREATE UNIQUE INDEX records_payer_nonce ON records (lower(payer), lower(nonce));
-- Covering indexes for the edge of a rolling window (see sums).
CREATE INDEX records_created ON records (created, state, usd_nano);
CREATE INDEX records_host_created ON records (host, created, state, usd_nano);
-- Pending and Reconcile.
CREATE INDEX records_state ON records (state, lease_until);

-- Sums of counted records per host and time bucket, kept by the triggers
-- below, so that checking a limit reads a number of rows bounded by the
-- window's length (hours + 60 minutes + one minute of records), not by how
-- many records the ledger holds:
--   span 0, start 0:        lifetime total
--   span 1 h, start = hour: that hour's total
--   span 1 min:             that minute's total
-- A rolling window adds whole hours, then whole minutes, then the records
-- of its first, partial minute (see sum in reserve.go). host '' is the sum
-- over all hosts; a record's host is never empty. Times are unix ns.
CREATE TABLE sums (
	host     TEXT    NOT NULL,
	span     INTEGER NOT NULL,
	start    INTEGER NOT NULL,
	usd_nano INTEGER NOT NULL CHECK (usd_nano >= 0),
	count    INTEGER NOT NULL CHECK (count >= 0),
	PRIMARY KEY (host, span, start)
) STRICT, WITHOUT ROWID;

-- Overflow: usd_nano + x past int64 becomes a REAL, which a STRICT
-- INTEGER column refuses, failing the insert: totals never wrap.
CREATE TRIGGER records_count AFTER INSERT ON records WHEN NEW.state <> 'failed'
BEGIN
	INSERT INTO sums (host, span, start, usd_nano, count) VALUES
		('',       0, 0, NEW.usd_nano, 1),
		(NEW.host, 0, 0, NEW.usd_nano, 1),
		('',       3600000000000, NEW.created - (NEW.created % 3600000000000 + 3600000000000) % 3600000000000, NEW.usd_nano, 1),
		(NEW.host, 3600000000000, NEW.created - (NEW.created % 3600000000000 + 3600000000000) % 3600000000000, NEW.usd_nano, 1),
		('',       60000000000, NEW.created - (NEW.created % 60000000000 + 60000000000) % 60000000000, NEW.usd_nano, 1),
		(NEW.host, 60000000000, NEW.created - (NEW.created % 60000000000 + 60000000000) % 60000000000, NEW.usd_nano, 1)
	ON CONFLICT (host, span, start) DO UPDATE SET usd_nano = usd_nano + excluded.usd_nano, count = count + 1;
END;

CREATE TRIGGER records_uncount AFTER UPDATE OF state ON records
WHEN OLD.state <> 'failed' AND NEW.state = 'failed'
BEGIN
	UPDATE sums SET usd_nano = usd_nano - OLD.usd_nano, count = count - 1
	WHERE host IN ('', OLD.host) AND (
		(span = 0 AND start = 0) OR
		(span = 3600000000000 AND start = OLD.created - (OLD.created % 3600000000000 + 3600000000000) % 3600000000000) OR
		(span = 60000000000 AND start = OLD.created - (OLD.created % 60000000000 + 60000000000) % 60000000000));
END;

-- Backstops for the invariants in doc.go, so that no code path (nor a
-- future bug) can rewrite history.
CREATE TRIGGER records_transition BEFORE UPDATE OF state ON records
WHEN NOT (OLD.state = NEW.state
	OR (OLD.state = 'reserved' AND NEW.state IN ('sent', 'failed'))
	OR (OLD.state = 'sent'     AND NEW.state IN ('settled', 'unknown'))
	OR (OLD.state = 'unknown'  AND NEW.state IN ('settled', 'failed')))
BEGIN
	SELECT RAISE(ABORT, 'ledger: forbidden state transition');
END;

CREATE TRIGGER records_immutable BEFORE UPDATE OF
	id, created, url, host, network, asset, token, decimals, amount, usd_nano,
	pay_to, payer, nonce, valid_before, owner ON records
BEGIN
	SELECT RAISE(ABORT, 'ledger: payment fields are immutable');
END;

CREATE TRIGGER records_keep BEFORE DELETE ON records
BEGIN
	SELECT RAISE(ABORT, 'ledger: records are never deleted');
END;

CREATE TRIGGER sums_keep BEFORE DELETE ON sums
BEGIN
	SELECT RAISE(ABORT, 'ledger: sums are never deleted');
END;
`,
	// v2: approvals (see approvals.go).
	`
CREATE TABLE approvals (
	-- Typed by a human: "ap-" and 8 base32 letters, random.
	id          TEXT    PRIMARY KEY CHECK (length(id) = 11 AND id GLOB 'ap-[a-z2-7][a-z2-7][a-z2-7][a-z2-7][a-z2-7][a-z2-7][a-z2-7][a-z2-7]'),
	-- sha-256 sized hashes as lower-case hex, compared byte for byte
	binding     TEXT    NOT NULL CHECK (length(binding) = 64 AND binding NOT GLOB '*[^0-9a-f]*'),
	request_key TEXT    NOT NULL CHECK (length(request_key) = 64 AND request_key NOT GLOB '*[^0-9a-f]*'),
	method      TEXT    NOT NULL,
	url         TEXT    NOT NULL,
	host        TEXT    NOT NULL,
	network     TEXT    NOT NULL,
	asset       TEXT    NOT NULL,
	token       TEXT    NOT NULL,
	decimals    INTEGER NOT NULL CHECK (decimals BETWEEN 0 AND 255),
	amount      TEXT    NOT NULL CHECK (length(amount) BETWEEN 1 AND 78
	                                    AND amount NOT GLOB '*[^0-9]*' AND amount NOT GLOB '0*'),
	usd_nano    INTEGER NOT NULL CHECK (usd_nano >= 0),
	pay_to      TEXT    NOT NULL,
	requester   TEXT    NOT NULL,
	created     INTEGER NOT NULL,                  -- unix ns
	expires     INTEGER NOT NULL CHECK (expires > created),
	state       TEXT    NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'used')),
	decided     INTEGER NOT NULL DEFAULT 0,        -- unix ns; 0 while pending
	record_id   INTEGER NOT NULL DEFAULT 0,        -- the record that used it; 0 until used
	CHECK ((state = 'pending') = (decided = 0)),
	CHECK ((state = 'used') = (record_id <> 0))
) STRICT;

-- A repeated call finds its approval (LatestApproval).
CREATE INDEX approvals_request ON approvals (request_key, created);
-- What awaits a decision (Approvals), and dedupe in RequestApproval.
CREATE INDEX approvals_state ON approvals (state, expires);
-- A payment consumes at most one approval.
CREATE UNIQUE INDEX approvals_record ON approvals (record_id) WHERE record_id <> 0;

-- Backstops for the approval invariants in doc.go.
CREATE TRIGGER approvals_transition BEFORE UPDATE OF state ON approvals
WHEN NOT (OLD.state = NEW.state
	OR (OLD.state = 'pending'  AND NEW.state IN ('approved', 'denied'))
	OR (OLD.state = 'approved' AND NEW.state = 'used'))
BEGIN
	SELECT RAISE(ABORT, 'ledger: forbidden approval transition');
END;

-- decided and record_id are written once, by the transition that sets them.
CREATE TRIGGER approvals_outcome BEFORE UPDATE OF decided, record_id ON approvals
WHEN (NEW.decided IS NOT OLD.decided
		AND NOT (OLD.state = 'pending' AND NEW.state IN ('approved', 'denied')))
	OR (NEW.record_id IS NOT OLD.record_id
		AND NOT (OLD.state = 'approved' AND NEW.state = 'used'))
BEGIN
	SELECT RAISE(ABORT, 'ledger: approval outcome fields are written once');
END;

-- An approval pays only its own terms: the record that uses it must exist
-- and carry the same amount, token, network, payee and host.
CREATE TRIGGER approvals_use BEFORE UPDATE OF state ON approvals
WHEN NEW.state = 'used' AND OLD.state <> 'used' AND NOT EXISTS (
	SELECT 1 FROM records r WHERE r.id = NEW.record_id
		AND r.amount = NEW.amount AND r.network = NEW.network AND r.host = NEW.host
		AND lower(r.asset) = lower(NEW.asset) AND lower(r.pay_to) = lower(NEW.pay_to))
BEGIN
	SELECT RAISE(ABORT, 'ledger: an approval is used only by a record with its terms');
END;

CREATE TRIGGER approvals_immutable BEFORE UPDATE OF
	id, binding, request_key, method, url, host, network, asset, token, decimals,
	amount, usd_nano, pay_to, requester, created, expires ON approvals
BEGIN
	SELECT RAISE(ABORT, 'ledger: approval terms are immutable');
END;

CREATE TRIGGER approvals_keep BEFORE DELETE ON approvals
BEGIN
	SELECT RAISE(ABORT, 'ledger: approvals are never deleted');
END;
`,
	// v3: what was sent for a payment, so that a retry re-sends it (see
	// payloads.go).
	`
CREATE TABLE payloads (
	record_id    INTEGER PRIMARY KEY REFERENCES records (id),
	-- sha256 of the request (method, URL that asked, body, payer), hex:
	-- what "the same request" means for a retry.
	request_key  TEXT NOT NULL CHECK (length(request_key) = 64 AND request_key NOT GLOB '*[^0-9a-f]*'),
	-- The payment-identifier id sent with the payment, '' when the server
	-- did not advertise the extension.
	payment_id   TEXT NOT NULL DEFAULT '' CHECK (length(payment_id) <= 128),
	-- The payment header exactly as sent (set when the record is marked
	-- sent): a retry re-sends these bytes, never a new signature.
	header_name  TEXT NOT NULL DEFAULT '',
	header_value TEXT NOT NULL DEFAULT '',
	-- 1 once the resource was delivered for this payment. A payment that
	-- settled without delivering still stands for its request: it is
	-- re-sent, never paid anew, while its authorization is valid.
	delivered    INTEGER NOT NULL DEFAULT 0 CHECK (delivered IN (0, 1))
) STRICT;

CREATE INDEX payloads_request ON payloads (request_key);

CREATE TRIGGER payloads_keep BEFORE DELETE ON payloads
BEGIN
	SELECT RAISE(ABORT, 'ledger: payloads are never deleted');
END;

CREATE TRIGGER payloads_immutable BEFORE UPDATE OF record_id, request_key, payment_id ON payloads
BEGIN
	SELECT RAISE(ABORT, 'ledger: payload keys are immutable');
END;

-- The header is written once, when the record leaves Reserved.
CREATE TRIGGER payloads_header_once BEFORE UPDATE OF header_name, header_value ON payloads
WHEN OLD.header_value <> ''
BEGIN
	SELECT RAISE(ABORT, 'ledger: a sent payment header is never rewritten');
END;
`,
	// v4: integrity (see integrity.go). The ledger's identity, and sums
	// that change only inside the records triggers.
	`
-- ledger_id names this ledger: the identity file Open keeps outside the
-- ledger's directory (Options.IDFile) holds it too, so a ledger that was
-- deleted, or replaced by another, is noticed instead of started afresh.
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) STRICT, WITHOUT ROWID;

INSERT INTO meta (key, value) VALUES ('ledger_id', lower(hex(randomblob(16))));

CREATE TRIGGER meta_keep BEFORE DELETE ON meta
BEGIN
	SELECT RAISE(ABORT, 'ledger: the ledger''s identity is never deleted');
END;

CREATE TRIGGER meta_immutable BEFORE UPDATE ON meta
BEGIN
	SELECT RAISE(ABORT, 'ledger: the ledger''s identity never changes');
END;

-- The records triggers open this guard around their writes to sums, and
-- the sums triggers refuse any write made while it is closed: so an
-- UPDATE or INSERT on sums from any other statement (a bug, or a hand in
-- the sqlite3 shell) fails. SQLite has no roles: whoever can write the file
-- can open the guard or drop the triggers. Open's recount is what catches
-- that (see integrity.go).
CREATE TABLE sums_guard (
	one  INTEGER PRIMARY KEY CHECK (one = 1),
	open INTEGER NOT NULL CHECK (open IN (0, 1))
) STRICT;

INSERT INTO sums_guard (one, open) VALUES (1, 0);

CREATE TRIGGER sums_guard_keep BEFORE DELETE ON sums_guard
BEGIN
	SELECT RAISE(ABORT, 'ledger: the sums guard is never deleted');
END;

CREATE TRIGGER sums_written BEFORE UPDATE ON sums
WHEN (SELECT open FROM sums_guard) IS NOT 1
BEGIN
	SELECT RAISE(ABORT, 'ledger: sums change only with the records they count');
END;

CREATE TRIGGER sums_added BEFORE INSERT ON sums
WHEN (SELECT open FROM sums_guard) IS NOT 1
BEGIN
	SELECT RAISE(ABORT, 'ledger: sums change only with the records they count');
END;

DROP TRIGGER records_count;
CREATE TRIGGER records_count AFTER INSERT ON records WHEN NEW.state <> 'failed'
BEGIN
	UPDATE sums_guard SET open = 1;
	INSERT INTO sums (host, span, start, usd_nano, count) VALUES
		('',       0, 0, NEW.usd_nano, 1),
		(NEW.host, 0, 0, NEW.usd_nano, 1),
		('',       3600000000000, NEW.created - (NEW.created % 3600000000000 + 3600000000000) % 3600000000000, NEW.usd_nano, 1),
		(NEW.host, 3600000000000, NEW.created - (NEW.created % 3600000000000 + 3600000000000) % 3600000000000, NEW.usd_nano, 1),
		('',       60000000000, NEW.created - (NEW.created % 60000000000 + 60000000000) % 60000000000, NEW.usd_nano, 1),
		(NEW.host, 60000000000, NEW.created - (NEW.created % 60000000000 + 60000000000) % 60000000000, NEW.usd_nano, 1)
	ON CONFLICT (host, span, start) DO UPDATE SET usd_nano = usd_nano + excluded.usd_nano, count = count + 1;
	UPDATE sums_guard SET open = 0;
END;

DROP TRIGGER records_uncount;
CREATE TRIGGER records_uncount AFTER UPDATE OF state ON records
WHEN OLD.state <> 'failed' AND NEW.state = 'failed'
BEGIN
	UPDATE sums_guard SET open = 1;
	UPDATE sums SET usd_nano = usd_nano - OLD.usd_nano, count = count - 1
	WHERE host IN ('', OLD.host) AND (
		(span = 0 AND start = 0) OR
		(span = 3600000000000 AND start = OLD.created - (OLD.created % 3600000000000 + 3600000000000) % 3600000000000) OR
		(span = 60000000000 AND start = OLD.created - (OLD.created % 60000000000 + 60000000000) % 60000000000));
	UPDATE sums_guard SET open = 0;
END;
`,
}

// schemaVersion is the version this program writes.
var schemaVersion = len(migrations)

// migrate checks that the file at path is ours (or empty), switches it to
// WAL and brings its schema up to date. It changes nothing in a file that
// fails the check: the identity test runs before the first write.
func migrate(ctx context.Context, db *sql.DB, path string) error {
	if err := identify(ctx, db, path); err != nil {
		return err
	}
	// WAL lets readers run beside the writer and makes a commit one
	// sequential append + fsync. The mode is persistent, stored in the file.
	mode, err := switchToWAL(ctx, db)
	if err != nil {
		return openError(path, "switch to WAL", err)
	}
	if mode != "wal" {
		return fmt.Errorf("ledger: %s: cannot use WAL mode (got %q); the ledger needs a local file system", path, mode)
	}
	var sync int
	if err := db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		return openError(path, "read synchronous", err)
	}
	if sync != 2 { // FULL; the DSN sets it, this makes sure the driver honoured it
		return fmt.Errorf("ledger: %s: synchronous is %d, want 2 (FULL)", path, sync)
	}

	tx, err := db.BeginTx(ctx, nil) // IMMEDIATE: two processes opening a new file migrate once
	if err != nil {
		return openError(path, "begin", err)
	}
	defer tx.Rollback()
	// Identify again under the write lock: another process may have
	// initialised the file since the first look.
	app, version, objects, err := header(ctx, tx)
	if err != nil {
		return openError(path, "read header", err)
	}
	if err := judge(path, app, version, objects); err != nil {
		return err
	}
	if version == schemaVersion {
		return nil
	}
	for v := version; v < schemaVersion; v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("ledger: %s: migrate to schema v%d: %w", path, v+1, err)
		}
	}
	// PRAGMA takes no parameters; the values are our own constants.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d", applicationID)); err != nil {
		return openError(path, "set application_id", err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
		return openError(path, "set user_version", err)
	}
	if err := tx.Commit(); err != nil {
		return openError(path, "commit", err)
	}
	return nil
}

// switchToWAL sets WAL mode, retrying while other connections hold the
// file: leaving rollback mode takes an exclusive lock without calling the
// busy handler, so processes opening a new ledger together would otherwise
// fail at once with SQLITE_BUSY. Once the file is in WAL mode this is a
// read that returns at once.
func switchToWAL(ctx context.Context, db *sql.DB) (string, error) {
	deadline := time.Now().Add(busyTimeout)
	for {
		var mode string
		err := db.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode)
		var se *sqlite.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return mode, err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Duration(1+mrand.IntN(20)) * time.Millisecond): // jitter: no lockstep
		}
	}
}

// identify refuses a foreign file before anything writes to it: setting
// WAL mode alone would rewrite its header.
func identify(ctx context.Context, db *sql.DB, path string) error {
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return openError(path, "begin", err)
	}
	defer tx.Rollback()
	app, version, objects, err := header(ctx, tx)
	if err != nil {
		return openError(path, "read header", err)
	}
	return judge(path, app, version, objects)
}

func header(ctx context.Context, tx *sql.Tx) (app, version, objects int, err error) {
	err = tx.QueryRowContext(ctx, `SELECT
		(SELECT application_id FROM pragma_application_id()),
		(SELECT user_version FROM pragma_user_version()),
		(SELECT count(*) FROM sqlite_schema)`).Scan(&app, &version, &objects)
	return app, version, objects, err
}

// judge decides from the header whether the file is ours: either it
// carries our application_id, or it is an empty database (a new file).
func judge(path string, app, version, objects int) error {
	switch {
	case app == applicationID && version > schemaVersion:
		return fmt.Errorf("%w: %s has schema v%d, this program knows v%d; upgrade x402-mcp", ErrTooNew, path, version, schemaVersion)
	case app == applicationID && version >= 1:
		return nil
	case app == 0 && version == 0 && objects == 0:
		return nil // empty: ours to initialise
	default:
		return fmt.Errorf("%w: %s is another program's SQLite database; move it aside or choose another path", ErrNotLedger, path)
	}
}

// openError turns the SQLite codes a foreign or damaged file produces into
// ErrNotLedger with a hint; anything else is wrapped as is.
func openError(path, step string, err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_NOTADB:
			return fmt.Errorf("%w: %s is not a database; move it aside or choose another path", ErrNotLedger, path)
		case sqlite3.SQLITE_CORRUPT:
			return fmt.Errorf("%w: %s is damaged (%v); move it aside and keep it for inspection", ErrNotLedger, path, err)
		}
	}
	return fmt.Errorf("ledger: open %s: %s: %w", path, step, err)
}
