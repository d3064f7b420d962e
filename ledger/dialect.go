package ledger

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"sync"
)

// The backend seam. The ledger's SQL is written once, in SQLite's dialect
// with '?' and '?N' parameters; a dialect turns a query into what its
// database runs. SQLite runs the text as written (no lookup, no copy: its
// hot path is unchanged). PostgreSQL gets each query rewritten once —
// '?' → '$1…', '?N' → '$N', or a hand-written replacement where the SQL
// differs (pgOverrides) — and cached by the query's text. Every statement
// the two backends share reaches the database through wtx, reader or rtx,
// which apply the dialect. What only one backend has is written in its own
// SQL, in its own files: SQLite's migrations, WAL and header checks,
// schema comparison and Repair (schema.go, integrity.go, repair.go);
// PostgreSQL's migrations, trigger checks and Repair (pgschema.go,
// pgrepair.go). Where they differ in the write path — SQLite checks that
// the file was not replaced, PostgreSQL takes the advisory lock — the
// writer asks the dialect (commit in writer.go).
type dialect struct {
	pg    bool
	cache sync.Map // query text → PostgreSQL text
}

var sqliteDialect = &dialect{}

// q returns query as this dialect runs it.
func (d *dialect) q(query string) string {
	if !d.pg {
		return query
	}
	if s, ok := d.cache.Load(query); ok {
		return s.(string)
	}
	s, ok := pgOverrides[query]
	if !ok {
		s = rebind(query)
	}
	d.cache.Store(query, s)
	return s
}

// rebind rewrites SQLite parameters as PostgreSQL's: '?' is numbered in
// order, '?N' keeps its number. Quoted text is left alone.
func rebind(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	quote := byte(0)
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
			b.WriteByte(c)
		case c == '\'' || c == '"':
			quote = c
			b.WriteByte(c)
		case c == '?':
			j := i + 1
			for j < len(query) && query[j] >= '0' && query[j] <= '9' {
				j++
			}
			b.WriteByte('$')
			if j > i+1 {
				b.WriteString(query[i+1 : j])
				i = j - 1
			} else {
				n++
				b.WriteString(strconv.Itoa(n))
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// insertID runs an INSERT of one record and returns its id: SQLite's
// LastInsertId, PostgreSQL's RETURNING (pgx has no LastInsertId).
func (t *wtx) insertID(ctx context.Context, query string, args ...any) (int64, error) {
	if t.d.pg {
		var id int64
		err := t.QueryRowContext(ctx, query, args...).Scan(&id)
		return id, err
	}
	res, err := t.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// reader is the readers' pool, through the dialect. On PostgreSQL it
// first makes sure the ledger is ready (connected, migrated, verified):
// see Ledger.ready.
type reader struct {
	db    *sql.DB
	d     *dialect
	ready func(ctx context.Context) error
}

func (r *reader) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if err := r.ready(ctx); err != nil {
		return nil, err
	}
	rows, err := r.db.QueryContext(ctx, r.d.q(query), args...)
	return rows, r.d.wrap(err)
}

// row is a *sql.Row, or the error that kept the query from running.
type row struct {
	*sql.Row
	d   *dialect
	err error
}

func (r row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	return r.d.wrap(r.Row.Scan(dest...))
}

func (r *reader) QueryRowContext(ctx context.Context, query string, args ...any) row {
	if err := r.ready(ctx); err != nil {
		return row{err: err}
	}
	return row{Row: r.db.QueryRowContext(ctx, r.d.q(query), args...), d: r.d}
}

// BeginTx starts a read-only transaction that sees one snapshot: SQLite's
// read transactions do; PostgreSQL's need REPEATABLE READ for that.
func (r *reader) BeginTx(ctx context.Context) (*rtx, error) {
	if err := r.ready(ctx); err != nil {
		return nil, err
	}
	opts := &sql.TxOptions{ReadOnly: true}
	if r.d.pg {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := r.db.BeginTx(ctx, opts)
	if err != nil {
		return nil, r.d.wrap(err)
	}
	return &rtx{Tx: tx, d: r.d}, nil
}

func (r *reader) Close() error { return r.db.Close() }

// rtx is a read transaction through the dialect.
type rtx struct {
	*sql.Tx
	d *dialect
}

func (t *rtx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.Tx.QueryContext(ctx, t.d.q(query), args...)
}

func (t *rtx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.Tx.QueryRowContext(ctx, t.d.q(query), args...)
}

func (t *rtx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.Tx.ExecContext(ctx, t.d.q(query), args...)
}

// wrap marks an error that says the PostgreSQL server cannot be reached
// as ErrUnavailable; SQLite's errors pass as they are.
func (d *dialect) wrap(err error) error {
	if err == nil || !d.pg || !pgUnreachable(err) {
		return err
	}
	return unavailable(err)
}
