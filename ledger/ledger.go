package ledger

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"modernc.org/sqlite"
)

// State is where a payment record is in its life.
type State string

const (
	Reserved State = "reserved" // budget taken; the signature has not left the process
	Sent     State = "sent"     // the signed request is (about to be) on the wire
	Settled  State = "settled"  // the payment went through
	Failed   State = "failed"   // the authorization was never sent, or can never be used
	Unknown  State = "unknown"  // the outcome is ambiguous; treated as spent
)

// Counted reports whether a record in this state counts as spent: every
// state but Failed. Unknown counts because the server may still hold a
// usable authorization.
func (s State) Counted() bool { return s != Failed }

func (s State) valid() bool {
	switch s {
	case Reserved, Sent, Settled, Failed, Unknown:
		return true
	}
	return false
}

// Record is one payment, from reservation to outcome.
type Record struct {
	ID      int64
	Created time.Time
	Updated time.Time

	URL  string
	Host string // normalised by the caller: lower-case, punycode, no port

	Network  string         // CAIP-2, e.g. eip155:8453
	Asset    common.Address // token contract
	Token    string         // symbol, display only
	Decimals uint8          // of Asset, display only
	Amount   *big.Int       // atomic units
	USDNano  int64          // USD value in 1e-9 USD, rounded up by the caller; what budgets sum

	PayTo       common.Address
	Payer       common.Address
	Nonce       [32]byte // unique per payer
	ValidBefore int64    // unix seconds

	State       State
	Transaction string // settlement transaction hash, when known
	Settlement  string // raw settlement JSON, cut to maxSettlement bytes
	Note        string // why a record is failed or unknown, cut to maxNote bytes

	Owner      string    // process instance that reserved it (set by the ledger)
	LeaseUntil time.Time // until when the owner may still be working on it (set by the ledger)

	// Approval, when set, is the human's approval this payment uses:
	// Reserve consumes it in the transaction that records the payment, or
	// records nothing. It is not read back by Get, Recent or Pending (the
	// approval names its record instead: Approval.RecordID).
	Approval *ApprovalUse

	// Payload, when set (a RequestKey at least), records the request this
	// payment is for, and Reserve refuses it with an *InFlightError while
	// an earlier payment for the same request may still settle. Not read
	// back by Get, Recent or Pending; see InFlight.
	Payload *Payload

	// held is set by Reserve only: the proof of this reservation.
	held *hold
}

// ValidUntil is, for a record whose signed authorization may be in another
// party's hands (Sent or Unknown), its validBefore: until then whoever
// holds it can still settle it, and the record stays counted at least that
// long. ok is false in other states.
func (r Record) ValidUntil() (t time.Time, ok bool) {
	if r.State != Sent && r.State != Unknown {
		return time.Time{}, false
	}
	return time.Unix(r.ValidBefore, 0).UTC(), true
}

// Limit is one budget. Reserve refuses a payment that would make any of the
// given limits overflow.
type Limit struct {
	Name       string        // for messages, e.g. "daily budget"
	Window     time.Duration // rolling window ending now; 0 = lifetime
	Host       string        // "" = all hosts; else only records with exactly this Host
	MaxUSDNano int64         // 0 = no money limit
	MaxCount   int           // 0 = no count limit
}

// Usage is what counts against a limit right now.
type Usage struct {
	Limit        Limit
	SpentUSDNano int64
	Count        int
	LeftUSDNano  int64 // MaxUSDNano-SpentUSDNano, never negative; meaningful if MaxUSDNano > 0
}

// Options tune Open. The zero value is what production uses.
type Options struct {
	// Lease is how long a record may stay in flight (reserved or sent)
	// before another process may reconcile it. It must exceed the longest
	// time the paying flow takes from Reserve to its outcome; default 15 min.
	Lease time.Duration
	// Now replaces time.Now, for tests.
	Now func() time.Time
	// IDFile, when set, is where the ledger's identity is kept (see
	// IDFilePath): Open writes the ledger's id there the first time, and
	// afterwards refuses with an *IdentityError a ledger that is missing
	// or has another id, instead of starting an empty one. x402-mcp
	// always sets it; tests of other things may leave it empty.
	// SQLite only: a PostgreSQL ledger ignores it (see "PostgreSQL" in
	// doc.go).
	IDFile string
	// Inspect opens a ledger that fails the integrity check anyway, for
	// reading: Damage returns the *IntegrityError, and Reserve refuses
	// with it. Without Inspect, Open returns that error.
	Inspect bool
}

// DefaultLease is the lease used when Options.Lease is zero.
const DefaultLease = 15 * time.Minute

// busyTimeout bounds how long a call waits for another process holding the
// write lock. Transactions here last milliseconds, so reaching it means a
// stuck process, not load.
const busyTimeout = 10 * time.Second

// Ledger is an open ledger file. It is safe for concurrent use.
type Ledger struct {
	path  string
	owner string
	lease time.Duration
	now   func() time.Time

	d     *dialect             // SQLite or PostgreSQL (dialect.go)
	pg    *pgState             // PostgreSQL only: readiness (pg.go)
	wdb   *sql.DB              // one connection, used only by the writer goroutine
	stmts map[string]*sql.Stmt // prepared on wdb; see wtx
	rdb   *reader              // readers; WAL lets them run beside the writer

	mu      sync.RWMutex // guards closed against sends on ops
	closed  bool
	ops     chan *writeOp
	stopped chan struct{}

	deferred laterState // writes queued off the caller's path (later.go)

	nudges      chan struct{} // buffered 1: a record became Unknown (see ReconcileEvery)
	reconciling atomic.Bool   // ReconcileEvery is running

	damage *IntegrityError // what Open found with Options.Inspect; nil when whole

	// file is the ledger file as Open found it: every write transaction
	// checks that the path still names this file (see checkFile).
	file os.FileInfo
}

// Open opens the ledger at path, creating it (directory 0700, file 0600) if
// needed and migrating its schema. A path that is a postgres:// or
// postgresql:// URL opens a ledger in that PostgreSQL database instead
// (see "PostgreSQL" in doc.go): one ledger for every process on every
// machine that opens it. It refuses a file that is not an
// x402-mcp ledger, or one written by a newer version, without changing it.
//
// It also refuses (see "Integrity" in doc.go) a ledger that others could
// write (*AccessError), one that was created at this path and is missing
// or replaced (*IdentityError, with Options.IDFile), and one whose sums
// disagree with its records or whose schema was changed (*IntegrityError,
// unless Options.Inspect).
func Open(path string, opts Options) (*Ledger, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: empty ledger path", ErrInvalid)
	}
	if opts.Lease < 0 {
		return nil, fmt.Errorf("%w: negative lease %v", ErrInvalid, opts.Lease)
	}
	if opts.Lease == 0 {
		opts.Lease = DefaultLease
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if IsPostgresURL(path) {
		return openPostgres(path, opts)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	// A ledger that was created here and is gone is not a fresh start:
	// look before creating anything.
	var wantID string
	if opts.IDFile != "" {
		if wantID, err = readIDFile(opts.IDFile); err != nil {
			return nil, err
		}
		if _, err := os.Lstat(abs); wantID != "" && errors.Is(err, fs.ErrNotExist) {
			return nil, &IdentityError{Path: abs, IDFile: opts.IDFile, Want: wantID}
		}
	}
	// The modes are the most the umask can leave: it only removes bits.
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("ledger: create directory: %w", err)
	}
	if err := checkAccess(filepath.Dir(abs), "the ledger's directory", true); err != nil {
		return nil, err
	}
	// Create the file ourselves so it is born 0600 (SQLite would use 0644),
	// and the -wal and -shm files SQLite derives from it inherit that mode.
	// O_EXCL means we open no descriptor on an existing file: closing one
	// would drop the POSIX locks another connection in this process holds.
	if f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("ledger: %w", err)
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("ledger: create %s: %w", abs, err)
	}
	if err := checkFiles(abs); err != nil {
		return nil, err
	}
	// An emptied file would be initialised as a new ledger below: refuse
	// it as missing before anything writes to it.
	if st, err := os.Stat(abs); wantID != "" && err == nil && st.Size() == 0 {
		return nil, &IdentityError{Path: abs, IDFile: opts.IDFile, Want: wantID}
	}

	opened, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	connector, err := sqlite.NewConnector(dsn(abs))
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	l := &Ledger{
		file:    opened,
		path:    abs,
		owner:   newOwner(),
		lease:   opts.Lease,
		now:     opts.Now,
		d:       sqliteDialect,
		wdb:     sql.OpenDB(connector),
		ops:     make(chan *writeOp, 256),
		stopped: make(chan struct{}),
		nudges:  make(chan struct{}, 1),
	}
	// One writer connection: the writer goroutine is its only user, and a
	// second one would only contend with it for the file lock.
	l.rdb = &reader{db: sql.OpenDB(connector), d: sqliteDialect, ready: l.ready}
	l.wdb.SetMaxOpenConns(1)
	l.wdb.SetMaxIdleConns(1)
	l.wdb.SetConnMaxLifetime(0)
	l.rdb.db.SetMaxOpenConns(4)
	l.rdb.db.SetMaxIdleConns(4)

	if err := migrate(context.Background(), l.wdb, abs); err != nil {
		l.wdb.Close()
		l.rdb.Close()
		return nil, err
	}
	if err := l.checkIdentity(opts.IDFile, wantID); err != nil {
		l.wdb.Close()
		l.rdb.Close()
		return nil, err
	}
	// Budgets are enforced from the sums: a ledger whose sums were
	// lowered, or whose triggers were dropped, must not pay.
	damage, err := verify(context.Background(), l.wdb, abs)
	if err == nil && damage != nil && !opts.Inspect {
		err = damage
	}
	if err != nil {
		l.wdb.Close()
		l.rdb.Close()
		return nil, err
	}
	l.damage = damage
	if l.stmts, err = prepare(context.Background(), l.wdb); err != nil {
		l.wdb.Close()
		l.rdb.Close()
		return nil, err
	}
	go l.run()
	return l, nil
}

// checkIdentity compares the ledger's id with the one the identity file
// holds (want), or records it there when there is none yet.
func (l *Ledger) checkIdentity(idFile, want string) error {
	if idFile == "" {
		return nil
	}
	var id string
	if err := l.wdb.QueryRow(`SELECT value FROM meta WHERE key = 'ledger_id'`).Scan(&id); err != nil {
		return openError(l.path, "read the ledger id", err)
	}
	if want == "" {
		var err error
		if want, err = writeIDFile(idFile, l.path, id); err != nil {
			return err
		}
	}
	if want != id {
		return &IdentityError{Path: l.path, IDFile: idFile, Want: want, Found: id}
	}
	return nil
}

// dsn builds a SQLite URI for path. Going through a file: URI with an
// escaped path keeps a '?' or '#' in the path from being read as a query.
//
// synchronous=FULL makes every commit fsync the WAL: a committed
// reservation survives power loss, which NORMAL does not promise in WAL
// mode. _txlock=immediate makes write transactions take the write lock
// when they begin, so a budget check can never be invalidated by another
// writer between its read and its insert.
//
// cache_size bounds each connection's page cache (see cacheKiB).
func dsn(abs string) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // Windows: C:/x → /C:/x
	}
	u := url.URL{Scheme: "file", Path: p}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "synchronous(FULL)")
	// Savepoints (one per call in a batch) keep their undo log in a
	// temporary file by default: thousands of small writes per commit.
	q.Add("_pragma", "temp_store(MEMORY)")
	q.Add("_pragma", fmt.Sprintf("cache_size(-%d)", cacheKiB))
	q.Add("_txlock", "immediate")
	return u.String() + "?" + q.Encode()
}

// cacheKiB bounds the page cache of each of the ledger's connections (one
// writer, up to four readers); SQLite's default is 2000 KiB each. The
// ledger file is in the kernel's page cache anyway, so SQLite's cache is a
// second copy that saves a read(2) per page: after a thousand payments
// the default kept about 3 MB of such copies resident (issue 10, goal 4),
// with no reservations/s to show for it (BenchmarkReserveParallel). 512
// KiB keeps the B-trees' interior pages and the pages being appended to.
// A reader's cache is dropped anyway whenever another connection has
// committed since its last transaction (WAL mode).
const cacheKiB = 512

// newOwner names this Ledger instance. The pid helps a human reading the
// file; the random part keeps two Opens in one process, or a recycled pid,
// from being mistaken for each other.
func newOwner() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return fmt.Sprintf("pid%d-%s", os.Getpid(), hex.EncodeToString(b[:]))
}

// Path returns the absolute path of the ledger file, or the URL of a
// PostgreSQL ledger (which holds no password: Open refuses one).
func (l *Ledger) Path() string { return l.path }

// Owner returns the name this instance writes into the records it reserves.
func (l *Ledger) Owner() string { return l.owner }

// Close waits for pending writes to commit and closes the file. Calls made
// after Close return ErrClosed.
func (l *Ledger) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.ops)
	l.mu.Unlock()
	<-l.stopped
	return errors.Join(l.rdb.Close(), l.wdb.Close())
}
