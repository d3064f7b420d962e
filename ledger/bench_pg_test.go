package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// Run: go test -run '^$' -bench 'Clients|Postgres' -benchtime 3s ./ledger/
// (the PostgreSQL ones need X402_MCP_TEST_PG). Figures in doc.go.

// benchClients has clients callers reserve b.N payments between them.
// With one client it is one Ledger called in a loop; with more, each
// client has a Ledger of its own, as separate processes would (within one
// Ledger the writer would batch their calls into shared commits instead).
func benchClients(b *testing.B, bk backend, clients int) {
	loc := bk.place(b)
	ls := make([]*Ledger, clients)
	for i := range ls {
		ls[i] = bk.open(b, loc, Options{})
	}
	seed(b, ls[0], 2_000)
	ctx := context.Background()
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	b.ResetTimer()
	for _, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if _, err := l.Reserve(ctx, rec("h3.example", 1000), benchLimits); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reservations/s")
}

// BenchmarkReserveClients is SQLite's counterpart of
// BenchmarkReservePostgres: 1, 8 and 64 processes on one ledger file.
func BenchmarkReserveClients(b *testing.B) {
	for _, n := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) { benchClients(b, testBackends[0], n) })
	}
}

// BenchmarkReservePostgres: 1, 8 and 64 processes on one PostgreSQL
// ledger, through Ledger.Reserve (global advisory lock).
func BenchmarkReservePostgres(b *testing.B) {
	for _, n := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) { benchClients(b, pgBackend(), n) })
	}
}

// BenchmarkPostgresLocking compares ways to make PostgreSQL's Reserve
// exact, with the ledger's own reserve (the same statements) in one
// transaction per reservation, each client on a connection of its own:
//
//   - advisory: BEGIN; pg_advisory_xact_lock (what the ledger does);
//   - row: BEGIN; SELECT … FOR UPDATE of the sums rows the limits read
//     (the lifetime rows of all hosts and of the payment's host);
//   - serializable: BEGIN ISOLATION LEVEL SERIALIZABLE, and the whole
//     transaction again on a serialization failure or deadlock.
func BenchmarkPostgresLocking(b *testing.B) {
	for _, mode := range []string{"advisory", "row", "serializable"} {
		for _, n := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("%s/clients=%d", mode, n), func(b *testing.B) { benchLocking(b, mode, n) })
		}
	}
}

func benchLocking(b *testing.B, mode string, clients int) {
	l := pgBackend().openNew(b, Options{})
	seed(b, l, 2_000)
	ctx := context.Background()
	dbs := make([]*sql.DB, clients)
	for i := range dbs {
		dbs[i] = pgRaw(b, l.Path())
	}
	var next, retries atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	b.ResetTimer()
	for _, db := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				in, err := l.incoming(rec("h3.example", 1000), benchLimits, Reserved)
				if err != nil {
					failed.Store(err)
					return
				}
				for {
					err = reserveOnce(ctx, l, db, mode, in)
					var pe *pgconn.PgError
					if errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01") {
						retries.Add(1)
						continue
					}
					break
				}
				if err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reservations/s")
	b.ReportMetric(float64(retries.Load())/float64(b.N), "retries/op")
}

func reserveOnce(ctx context.Context, l *Ledger, db *sql.DB, mode string, in Record) error {
	var opts *sql.TxOptions
	if mode == "serializable" {
		opts = &sql.TxOptions{Isolation: sql.LevelSerializable}
	}
	sqltx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	defer sqltx.Rollback()
	tx := &wtx{Tx: sqltx, d: l.d}
	switch mode {
	case "advisory":
		_, err = tx.ExecContext(ctx, qWriteLock, pgWriteLock)
	case "row":
		_, err = tx.ExecContext(ctx, `SELECT 1 FROM sums WHERE host IN ('', ?) AND span = 0 AND start = 0 ORDER BY host FOR UPDATE`, in.Host)
	}
	if err != nil {
		return err
	}
	if _, err := l.reserve(ctx, tx, in, benchLimits); err != nil {
		return err
	}
	return sqltx.Commit()
}
