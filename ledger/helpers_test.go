package ledger

import (
	"context"
	"database/sql"
	"encoding/binary"
	"math/big"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/x402-mcp/x402-mcp/internal/pgtest"
)

// clock is a settable time source for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openTest(t testing.TB, opts Options) *Ledger {
	t.Helper()
	l, err := Open(filepath.Join(t.TempDir(), "ledger.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

var nonceSeq atomic.Uint64

var (
	testPayer = common.HexToAddress("0xAbCdEf0000000000000000000000000000001111")
	testPayTo = common.HexToAddress("0x2222222222222222222222222222222222222222")
	testAsset = common.HexToAddress("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913")
)

// testNonce is a nonce whose text is "0xfeed" and n in 60 hex digits.
func testNonce(n uint64) [32]byte {
	var b [32]byte
	b[0], b[1] = 0xfe, 0xed
	binary.BigEndian.PutUint64(b[24:], n)
	return b
}

// rec returns a valid record for host costing usd nano-USD, with a nonce
// unique in this test binary.
func rec(host string, usd int64) Record {
	return Record{
		URL:         "https://" + host + "/weather",
		Host:        host,
		Network:     "eip155:8453",
		Asset:       testAsset,
		Token:       "USDC",
		Decimals:    6,
		Amount:      big.NewInt(usd/1000 + 1),
		USDNano:     usd,
		PayTo:       testPayTo,
		Payer:       testPayer,
		Nonce:       testNonce(nonceSeq.Add(1)),
		ValidBefore: time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC).Unix(),
	}
}

func mustReserve(t testing.TB, l *Ledger, r Record, limits ...Limit) Record {
	t.Helper()
	out, err := l.Reserve(context.Background(), r, limits)
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	return out
}

func stateOf(t testing.TB, l *Ledger, id int64) State {
	t.Helper()
	r, err := l.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r.State
}

// recount sums counted records from the records table directly, to check
// the trigger-maintained sums and Usage against the plain definition.
func recount(t testing.TB, l *Ledger, host string) (int64, int) {
	t.Helper()
	var spent int64
	var n int
	q := `SELECT coalesce(sum(usd_nano), 0), count(*) FROM records WHERE state <> 'failed'`
	args := []any{}
	if host != "" {
		q += ` AND host = ?`
		args = append(args, host)
	}
	if err := l.rdb.QueryRowContext(context.Background(), q, args...).Scan(&spent, &n); err != nil {
		t.Fatal(err)
	}
	return spent, n
}

func usage(t testing.TB, l *Ledger, lim Limit) Usage {
	t.Helper()
	u, err := l.Usage(context.Background(), []Limit{lim})
	if err != nil {
		t.Fatal(err)
	}
	return u[0]
}

// rawDB opens the file without the ledger, for tests that must reach
// under it.
func rawDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// A backend is where a test's ledgers live: a SQLite file, or a database
// on the PostgreSQL server of X402_MCP_TEST_PG (pgtest.Database: skipped
// without it, failed under CI=true).
type backend struct {
	name string
	// place returns a new, empty ledger location.
	place func(t testing.TB) string
}

var testBackends = []backend{
	{"sqlite", func(t testing.TB) string { return filepath.Join(t.TempDir(), "ledger.db") }},
	{"postgres", func(t testing.TB) string { return pgtest.Database(t) }},
}

// open opens the ledger at loc, closed when the test ends.
func (b backend) open(t testing.TB, loc string, opts Options) *Ledger {
	t.Helper()
	l, err := Open(loc, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// openNew opens a new, empty ledger.
func (b backend) openNew(t testing.TB, opts Options) *Ledger {
	t.Helper()
	return b.open(t, b.place(t), opts)
}

// forEachBackend runs f once per backend, as subtests named after them.
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range testBackends {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

// rawExec runs a statement on the ledger's database outside the ledger's
// writer (on either backend): what a hand at a SQL prompt could do.
func rawExec(l *Ledger, query string, args ...any) (sql.Result, error) {
	return l.wdb.ExecContext(context.Background(), l.d.q(query), args...)
}

// rawHandle reaches under a ledger of either backend, as a hand at the
// database's own prompt would: its own connection, the ledger's SQL
// dialect.
type rawHandle struct {
	db *sql.DB
	d  *dialect
}

func (r rawHandle) Exec(query string, args ...any) (sql.Result, error) {
	return r.db.Exec(r.d.q(query), args...)
}

func raw(t testing.TB, l *Ledger) rawHandle {
	t.Helper()
	if l.d.pg {
		return rawHandle{pgRaw(t, l.Path()), l.d}
	}
	return rawHandle{rawDB(t, l.Path()), l.d}
}
