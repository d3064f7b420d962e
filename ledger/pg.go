package ledger

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// PostgreSQL: one ledger for every process on every machine that opens the
// same database (see "PostgreSQL" in doc.go).

// pgSchema is the schema the ledger's tables live in, in the URL's
// database: it keeps them apart from anything else there, and tells a
// database that holds an x402-mcp ledger from one that does not.
const pgSchema = "x402"

// The advisory lock keys ("x402ledg" and "x402migr" in ASCII). Every write
// transaction of every process takes pgWriteLock (transaction-level) right
// after BEGIN, which serialises writers exactly as SQLite's BEGIN
// IMMEDIATE does; Open takes pgMigrateLock (session-level) around the
// migrations, so processes starting together migrate once.
const (
	pgWriteLock   int64 = 0x783430326c656467
	pgMigrateLock int64 = 0x783430326d696772
)

const qWriteLock = `SELECT pg_advisory_xact_lock(?)`

// pgRetry is how often a ledger that cannot reach its server tries again,
// at most; the calls in between fail at once with ErrUnavailable.
const pgRetry = time.Second

// pgLockTimeout and pgIdleInTx: see openPostgres. Variables for tests.
var (
	pgLockTimeout = busyTimeout
	pgIdleInTx    = 3 * busyTimeout
)

// pgConnectTimeout bounds a connection attempt when the URL sets none
// (connect_timeout): a server that does not answer is unavailable, not a
// hang.
const pgConnectTimeout = 5 * time.Second

// ErrUnavailable: the PostgreSQL server of the ledger cannot be reached.
// Nothing was recorded (or, for a commit whose answer was lost, the record
// stays counted: see doc.go); no payment may be signed. The ledger tries
// again by itself on the next call.
var ErrUnavailable = errors.New("ledger: the PostgreSQL ledger is unreachable")

type unavailableError struct{ cause error }

func (e *unavailableError) Error() string {
	return ErrUnavailable.Error() + ": " + e.cause.Error() + "; payments are refused until it is back"
}
func (e *unavailableError) Is(target error) bool { return target == ErrUnavailable }
func (e *unavailableError) Unwrap() error        { return e.cause }

func unavailable(err error) error {
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	return &unavailableError{cause: err}
}

// IsPostgresURL reports whether a ledger location names a PostgreSQL
// database (postgres:// or postgresql://) rather than a SQLite file.
func IsPostgresURL(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

// checkPGURL refuses a URL that carries a password. The error never
// repeats the URL: it holds the secret.
func checkPGURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%w: the PostgreSQL URL does not parse (value not shown)", ErrInvalid)
	}
	secret := ""
	if _, ok := u.User.Password(); ok {
		secret = "a password"
	}
	for k := range u.Query() {
		switch strings.ToLower(k) {
		case "password", "sslpassword":
			secret = "a " + k + " parameter"
		}
	}
	if secret != "" {
		return fmt.Errorf("%w: the PostgreSQL URL carries %s (value not shown); remove it, and give the password in ~/.pgpass, in the file PGPASSFILE names (or the URL's passfile parameter), or in PGPASSWORD", ErrInvalid, secret)
	}
	return nil
}

// pgState is a PostgreSQL ledger's readiness: connected once, migrated and
// verified. Until then every call tries again (at most once per pgRetry)
// and fails with ErrUnavailable.
type pgState struct {
	ok   atomic.Bool
	mu   sync.Mutex
	last time.Time
	err  error
}

// ready returns nil once the ledger may be used: always for SQLite; for
// PostgreSQL after connect, migrate and verify succeeded once.
func (l *Ledger) ready(ctx context.Context) error {
	if l.pg == nil || l.pg.ok.Load() {
		return nil
	}
	s := l.pg
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ok.Load() {
		return nil
	}
	if time.Since(s.last) < pgRetry && s.err != nil {
		return s.err
	}
	s.last = time.Now()
	damage, err := l.setupPG(ctx)
	if err == nil && damage != nil {
		err = damage // Options.Inspect applies at Open only
	}
	s.err = err
	if err == nil {
		s.ok.Store(true)
	}
	return err
}

// notReady is ready without the attempt to connect, for the deferred
// writes, which must return at once.
func (l *Ledger) notReady() error {
	if l.pg == nil || l.pg.ok.Load() {
		return nil
	}
	if !l.pg.mu.TryLock() { // a call is connecting: do not wait for it
		return unavailable(errors.New("connecting"))
	}
	defer l.pg.mu.Unlock()
	if l.pg.ok.Load() {
		return nil
	}
	if l.pg.err == nil {
		return unavailable(errors.New("not connected yet"))
	}
	return l.pg.err
}

func openPostgres(loc string, opts Options) (*Ledger, error) {
	if err := checkPGURL(loc); err != nil {
		return nil, err
	}
	if i := strings.Index(loc, "://"); i > 0 {
		loc = strings.ToLower(loc[:i]) + loc[i:] // pgx knows only the lower-case schemes
	}
	cfg, err := pgx.ParseConfig(loc)
	if err != nil {
		return nil, fmt.Errorf("%w: the PostgreSQL URL: %v", ErrInvalid, err)
	}
	cfg.RuntimeParams["search_path"] = pgSchema
	// A commit returns only once it is durable, whatever the server's
	// default: a reservation the caller saw survives a crash of the server.
	cfg.RuntimeParams["synchronous_commit"] = "on"
	// SQLite's busy_timeout: a writer waits this long for the lock, then
	// fails (a stuck process, not load). And a process stopped inside its
	// transaction (SIGSTOP, a frozen VM) loses its session, and with it
	// the lock, instead of stopping the fleet; its commit then fails, so
	// it recorded and sent nothing.
	cfg.RuntimeParams["lock_timeout"] = strconv.FormatInt(pgLockTimeout.Milliseconds(), 10)
	cfg.RuntimeParams["idle_in_transaction_session_timeout"] = strconv.FormatInt(pgIdleInTx.Milliseconds(), 10)
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "x402-mcp"
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = pgConnectTimeout
	}
	d := &dialect{pg: true}
	l := &Ledger{
		path:    loc,
		owner:   newOwner(),
		lease:   opts.Lease,
		now:     opts.Now,
		d:       d,
		pg:      &pgState{},
		wdb:     stdlib.OpenDB(*cfg),
		ops:     make(chan *writeOp, 256),
		stopped: make(chan struct{}),
		nudges:  make(chan struct{}, 1),
	}
	l.rdb = &reader{db: stdlib.OpenDB(*cfg), d: d, ready: l.ready}
	// One writer connection, as for SQLite; database/sql replaces it when
	// the driver reports it broken (the server restarted), so service
	// resumes without a restart of this process.
	l.wdb.SetMaxOpenConns(1)
	l.wdb.SetMaxIdleConns(1)
	l.wdb.SetConnMaxIdleTime(5 * time.Minute)
	l.rdb.db.SetMaxOpenConns(4)
	l.rdb.db.SetMaxIdleConns(4)
	l.rdb.db.SetConnMaxIdleTime(5 * time.Minute)

	l.pg.last = time.Now()
	damage, err := l.setupPG(context.Background())
	switch {
	case errors.Is(err, ErrUnavailable):
		l.pg.err = err // not ready: every call tries again (see ready)
	case err != nil:
		l.wdb.Close()
		l.rdb.Close()
		return nil, err
	case damage != nil && !opts.Inspect:
		l.wdb.Close()
		l.rdb.Close()
		return nil, damage
	default:
		l.damage = damage
		l.pg.ok.Store(true)
	}
	go l.run()
	return l, nil
}

// setupPG migrates and verifies the database: Open's work, done again by
// ready when the server was unreachable at Open.
func (l *Ledger) setupPG(ctx context.Context) (*IntegrityError, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*pgConnectTimeout+busyTimeout)
	defer cancel()
	if err := migratePG(ctx, l.wdb, l.path); err != nil {
		return nil, l.d.wrap(err)
	}
	tx, err := l.rdb.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead})
	if err != nil {
		return nil, l.d.wrap(fmt.Errorf("ledger: open %s: begin: %w", l.path, err))
	}
	defer tx.Rollback()
	damage, err := verifyPG(ctx, &rtx{Tx: tx, d: l.d}, l.path)
	return damage, l.d.wrap(err)
}

// pgUnreachable reports whether err means the server could not be
// reached or the connection was lost, as opposed to an answer from it
// (bad credentials, no such database, a refused statement).
func pgUnreachable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// 08: connection exception; 57P01-3: shutting down, crashed,
		// starting up; 53300: too many connections.
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03" || pe.Code == "53300"
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne), pgconn.Timeout(err),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	}
	return strings.Contains(err.Error(), "conn closed")
}
