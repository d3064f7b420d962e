package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

// maxBatch bounds how many calls share one transaction, so one commit never
// keeps the write lock from other processes for long.
const maxBatch = 64

// A writeOp is one call's work, run by the writer goroutine inside a
// transaction under its own savepoint.
type writeOp struct {
	ctx context.Context
	fn  func(ctx context.Context, tx *wtx) error
	// claimed is set by whichever side gets there first: the writer before
	// running fn, or the caller giving up on a cancelled context. It makes
	// "cancelled" and "ran" mutually exclusive, so a caller that got
	// ctx.Err() knows nothing was recorded.
	claimed atomic.Bool
	done    chan error // buffered: the writer never blocks on a caller
	// seq numbers a deferred write (see later.go); 0 for the others.
	seq uint64
}

// write runs fn in a durable write transaction and returns its error, or
// the commit's. It returns only after the commit is on disk.
//
// fn must confine its effects to tx and to variables the caller reads only
// when write returns nil: a later call's failure or a failed commit can
// undo it.
func (l *Ledger) write(ctx context.Context, fn func(ctx context.Context, tx *wtx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := l.ready(ctx); err != nil {
		return err
	}
	op := &writeOp{ctx: ctx, fn: fn, done: make(chan error, 1)}
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	select {
	case l.ops <- op:
	case <-ctx.Done():
		l.mu.RUnlock()
		return ctx.Err()
	}
	l.mu.RUnlock()

	select {
	case err := <-op.done:
		return err
	case <-ctx.Done():
		if op.claimed.CompareAndSwap(false, true) {
			return ctx.Err()
		}
		// Already running: its outcome will be durable or not, and the
		// caller must know which (a reservation it cannot see would sit
		// counted until its lease ran out).
		return <-op.done
	}
}

// run is the writer goroutine. It takes the calls waiting at the moment and
// commits them together: the commit's fsync dominates the cost of a call,
// and this way concurrent callers share one.
func (l *Ledger) run() {
	defer close(l.stopped)
	batch := make([]*writeOp, 0, maxBatch)
	for first := range l.ops {
		batch = append(batch[:0], first)
	more:
		for len(batch) < maxBatch {
			select {
			case op, ok := <-l.ops:
				if !ok {
					break more
				}
				batch = append(batch, op)
			default:
				break more
			}
		}
		l.commit(batch)
		var seq uint64
		for _, op := range batch {
			seq = max(seq, op.seq)
		}
		if seq > 0 {
			l.finished(seq)
		}
	}
}

// commit runs a batch in one transaction. Each op runs under a savepoint,
// so one op's error (a refused budget, a bad transition) undoes only that
// op. If the transaction itself fails, every op in it fails.
//
// Statements run with a background context, never an op's: interrupting a
// statement midway would fail the whole batch for one impatient caller.
func (l *Ledger) commit(batch []*writeOp) {
	ctx := context.Background()
	errs := make([]error, len(batch))
	ran := make([]bool, len(batch))
	fail := func(err error) {
		for i, op := range batch {
			if ran[i] || op.claimed.CompareAndSwap(false, true) {
				op.done <- err
			}
		}
	}

	sqltx, err := l.wdb.BeginTx(ctx, nil) // BEGIN IMMEDIATE (see dsn)
	if err != nil {
		fail(l.d.wrap(fmt.Errorf("ledger: begin: %w", err)))
		return
	}
	tx := &wtx{Tx: sqltx, stmts: l.stmts, d: l.d}
	if l.d.pg {
		// PostgreSQL's BEGIN IMMEDIATE: one writer at a time, in every
		// process on every machine (see "PostgreSQL" in doc.go).
		if _, err := tx.ExecContext(ctx, qWriteLock, pgWriteLock); err != nil {
			sqltx.Rollback()
			fail(l.d.wrap(fmt.Errorf("ledger: lock: %w", err)))
			return
		}
	} else if err := l.checkFile(); err != nil {
		// Under the write lock: nothing is recorded into a file that is no
		// longer the ledger at its path.
		sqltx.Rollback()
		fail(err)
		return
	}
	for i, op := range batch {
		if !op.claimed.CompareAndSwap(false, true) {
			continue // the caller gave up before we got to it
		}
		ran[i] = true
		if err := op.ctx.Err(); err != nil {
			errs[i] = err // gave up, and has not noticed yet: record nothing
			continue
		}
		if _, err := tx.ExecContext(ctx, qSavepoint); err != nil {
			tx.Rollback()
			fail(l.d.wrap(fmt.Errorf("ledger: savepoint: %w", err)))
			return
		}
		errs[i] = op.fn(ctx, tx)
		if errs[i] != nil {
			// If SQLite rolled the whole transaction back on its own (I/O
			// error, disk full), the savepoint is gone and this fails;
			// then the ops before this one were undone too, and the
			// batch must fail as a whole rather than go on in autocommit.
			if _, err := tx.ExecContext(ctx, qRollbackTo); err != nil {
				tx.Rollback()
				fail(l.d.wrap(fmt.Errorf("ledger: transaction aborted: %w (after: %v)", err, errs[i])))
				return
			}
		}
		if _, err := tx.ExecContext(ctx, qRelease); err != nil {
			tx.Rollback()
			fail(l.d.wrap(fmt.Errorf("ledger: release savepoint: %w", err)))
			return
		}
	}
	if err := tx.Commit(); err != nil {
		fail(l.d.wrap(fmt.Errorf("ledger: commit: %w", err)))
		return
	}
	for i, op := range batch {
		if ran[i] {
			op.done <- errs[i]
		}
	}
}

// wtx is the write transaction handed to ops. Queries listed in
// writeQueries run through statements prepared once on the writer's
// connection at Open: parsing SQL was a fifth of Reserve's CPU time. Other
// queries are prepared per call, as database/sql does by default.
type wtx struct {
	*sql.Tx
	stmts map[string]*sql.Stmt
	d     *dialect
}

func (t *wtx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := t.stmts[query]; s != nil {
		return t.Tx.StmtContext(ctx, s).ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, t.d.q(query), args...)
}

func (t *wtx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if s := t.stmts[query]; s != nil {
		return t.Tx.StmtContext(ctx, s).QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, t.d.q(query), args...)
}

func (t *wtx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := t.stmts[query]; s != nil {
		return t.Tx.StmtContext(ctx, s).QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, t.d.q(query), args...)
}

// prepare readies the writer's statements. It runs before the writer
// goroutine starts: later, the writer's only connection is busy inside
// its transaction and preparing on the DB would wait for it forever.
func prepare(ctx context.Context, db *sql.DB) (map[string]*sql.Stmt, error) {
	stmts := make(map[string]*sql.Stmt, len(writeQueries))
	for _, q := range writeQueries {
		s, err := db.PrepareContext(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("ledger: prepare: %w", err)
		}
		stmts[q] = s
	}
	return stmts, nil
}

// ErrReplaced is returned by every write after the ledger file was deleted
// or replaced while this process had it open: recording a payment into a
// file nobody will read again would let the budgets be spent twice.
var ErrReplaced = errors.New("ledger: the ledger file was deleted or replaced while in use")

// checkFile reports ErrReplaced when the ledger's path no longer names the
// file Open opened (deleted, or another file moved into its place).
func (l *Ledger) checkFile() error {
	st, err := os.Stat(l.path)
	if err == nil && os.SameFile(st, l.file) {
		return nil
	}
	return fmt.Errorf("%w: %s; nothing was recorded. Restart the process so that it opens the ledger at that path (x402-mcp devnet starts a new ledger on every start: restart the MCP server after it)", ErrReplaced, l.path)
}
