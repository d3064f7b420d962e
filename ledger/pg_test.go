package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/x402-mcp/x402-mcp/internal/pgtest"
)

// PostgreSQL-only behaviour. What both backends share runs in the other
// tests through forEachBackend.

func pgBackend() backend { return testBackends[1] }

// pgRaw connects to loc as a hand at psql would: no ledger, search_path
// x402.
func pgRaw(t testing.TB, loc string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", loc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1) // the one connection whose search_path is set
	if _, err := db.Exec(`SET search_path = x402`); err != nil {
		t.Fatal(err)
	}
	return db
}

var _ = stdlib.GetDefaultDriver // registers "pgx"

func TestPostgresURLWithPasswordRefused(t *testing.T) {
	for _, u := range []string{
		"postgres://x402:s3cr3t-pw@127.0.0.1:5432/ledger",
		"postgresql://x402:s3cr3t-pw@db.example/ledger?sslmode=verify-full",
		"postgres://x402@127.0.0.1/ledger?password=s3cr3t-pw",
		"POSTGRES://x402@127.0.0.1/ledger?sslmode=require&sslpassword=s3cr3t-pw",
	} {
		l, err := Open(u, Options{})
		if err == nil {
			l.Close()
			t.Fatalf("Open(%q) succeeded", u)
		}
		msg := err.Error()
		if !errors.Is(err, ErrInvalid) || strings.Contains(msg, "s3cr3t") || strings.Contains(msg, "127.0.0.1") ||
			!strings.Contains(msg, "(value not shown)") || !strings.Contains(msg, "pgpass") || !strings.Contains(msg, "PGPASSWORD") {
			t.Errorf("Open(%q): %v", u, err)
		}
	}
}

func TestPostgresPathHasNoPassword(t *testing.T) {
	loc := pgtest.Database(t)
	l := pgBackend().open(t, loc, Options{})
	if l.Path() != loc || strings.Contains(l.Path(), "password") {
		t.Fatalf("Path() = %q, want %q", l.Path(), loc)
	}
}

func TestPostgresConcurrentOpenMigratesOnce(t *testing.T) {
	loc := pgtest.Database(t)
	const n = 8
	var wg sync.WaitGroup
	ls := make([]*Ledger, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ls[i], errs[i] = Open(loc, Options{})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		defer ls[i].Close()
	}
	db := pgRaw(t, loc)
	var ids, versions, triggers int
	if err := db.QueryRow(`SELECT count(*) FILTER (WHERE key = 'ledger_id'), count(*) FILTER (WHERE key = 'schema_version') FROM meta`).Scan(&ids, &versions); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
		JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = 'x402' AND NOT t.tgisinternal`).Scan(&triggers); err != nil {
		t.Fatal(err)
	}
	if ids != 1 || versions != 1 || triggers != len(pgTriggers) {
		t.Fatalf("meta: %d ids, %d versions; %d triggers (want 1, 1, %d)", ids, versions, triggers, len(pgTriggers))
	}
	// Every instance writes to the one ledger.
	for _, l := range ls {
		mustReserve(t, l, rec("m.example", 1))
	}
	if _, n := recount(t, ls[0], ""); n != len(ls) {
		t.Fatalf("%d records, want %d", n, len(ls))
	}
}

// Several *Ledger instances (each with its own writer and batches, as
// separate processes would have) race for one budget: the advisory lock
// admits exactly what fits.
func TestPostgresBudgetExactAcrossInstances(t *testing.T) {
	loc := pgtest.Database(t)
	const (
		instances = 4
		each      = 50
		limit     = 1_000_000_000
		price     = 12_345_679 // 81 fit
	)
	lim := Limit{Name: "daily budget", Window: 24 * time.Hour, MaxUSDNano: limit}
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, instances*each)
	for range instances {
		l := pgBackend().open(t, loc, Options{})
		for range each {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := l.Reserve(context.Background(), rec("c.example", price), []Limit{lim})
				var be *BudgetError
				switch {
				case err == nil:
					admitted.Add(1)
				case errors.As(err, &be):
					refused.Add(1)
				default:
					errs <- err
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if admitted.Load() != limit/price || refused.Load() != instances*each-limit/price {
		t.Fatalf("admitted %d, refused %d; want %d", admitted.Load(), refused.Load(), limit/price)
	}
	l := pgBackend().open(t, loc, Options{})
	if spent, n := recount(t, l, ""); spent != limit/price*price || n != limit/price {
		t.Fatalf("ledger holds %d records worth %d", n, spent)
	}
}

func TestPostgresTriggersRefuseDirectWrites(t *testing.T) {
	loc := pgtest.Database(t)
	l := pgBackend().open(t, loc, Options{})
	r := mustReserve(t, l, rec("g.example", 5))
	db := pgRaw(t, loc)
	for q, want := range map[string]string{
		`UPDATE sums SET usd_nano = 0`: "sums change only with the records they count",
		`INSERT INTO sums (host, span, start, usd_nano, count) VALUES ('x', 0, 0, 0, 0)`: "sums change only",
		`DELETE FROM sums`:                                    "sums are never deleted",
		`TRUNCATE sums`:                                       "sums are never deleted",
		`DELETE FROM records`:                                 "records are never deleted",
		`TRUNCATE records CASCADE`:                            "never deleted",
		`UPDATE records SET usd_nano = 1`:                     "payment fields are immutable",
		`UPDATE records SET state = 'settled'`:                "forbidden state transition",
		`UPDATE meta SET value = 'x' WHERE key = 'ledger_id'`: "identity never changes",
	} {
		if _, err := db.Exec(q); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", q, err, want)
		}
	}
	if err := l.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := stateOf(t, l, r.ID); got != Reserved {
		t.Fatalf("state %s", got)
	}
}

func TestPostgresTamperingDetectedAtOpen(t *testing.T) {
	loc := pgtest.Database(t)
	l, err := Open(loc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustReserve(t, l, rec("t.example", 700))
	l.Close()

	// Lower the sums with the guard opened by hand, as someone with the
	// database's password could.
	db := pgRaw(t, loc)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`SELECT set_config('x402.repair', 'on', true)`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`UPDATE x402.sums SET usd_nano = 0`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	_, err = Open(loc, Options{})
	var ie *IntegrityError
	if !errors.As(err, &ie) || !errors.Is(err, ErrTampered) || len(ie.Sums) == 0 {
		t.Fatalf("Open of a tampered ledger: %v", err)
	}
	l, err = Open(loc, Options{Inspect: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Reserve(context.Background(), rec("t.example", 1), nil); !errors.Is(err, ErrTampered) {
		t.Fatalf("Reserve on a damaged ledger: %v", err)
	}

	// A dropped trigger is noticed too.
	if _, err := db.Exec(`DROP TRIGGER sums_written ON x402.sums`); err != nil {
		t.Fatal(err)
	}
	err = l.Verify(context.Background())
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "trigger sums_written is missing") {
		t.Fatalf("Verify after DROP TRIGGER: %v", err)
	}

	// Repair puts back the trigger and the sums, from the records.
	rep, err := Repair(loc)
	if err != nil || len(rep.Schema) != 1 || len(rep.Sums) == 0 {
		t.Fatalf("Repair: %+v, %v", rep, err)
	}
	if err := l.Verify(context.Background()); err != nil {
		t.Fatalf("Verify after Repair: %v", err)
	}
	l2 := pgBackend().open(t, loc, Options{})
	if u := usage(t, l2, Limit{Name: "all"}); u.SpentUSDNano != 700 || u.Count != 1 {
		t.Fatalf("usage after Repair: %+v", u)
	}
}

func TestPostgresRefusesOthersAndBadLogins(t *testing.T) {
	loc := pgtest.Database(t)
	db := pgRaw(t, loc)
	if _, err := db.Exec(`CREATE SCHEMA x402; CREATE TABLE x402.records (id int)`); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(loc, Options{}); !errors.Is(err, ErrNotLedger) {
		t.Fatalf("Open of another program's schema x402: %v", err)
	}
	bad := strings.Replace(loc, "x402@", "nosuchuser@", 1)
	if _, err := Open(bad, Options{}); err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Open with a bad login: %v", err)
	}
}

// A server that is down at Open, or goes away later, makes every call fail
// with ErrUnavailable, records nothing and signs nothing; when it is back
// the same Ledger works again, without a reopen.
func TestPostgresUnavailableThenBack(t *testing.T) {
	c := pgtest.Start(t)
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	loc := c.URL("postgres")
	l, err := Open(loc, Options{})
	if err != nil {
		t.Fatalf("Open with the server down: %v", err)
	}
	defer l.Close()
	ctx := context.Background()
	var signed atomic.Int64
	sign := func(res Reservation) (string, string, error) {
		signed.Add(1)
		return "PAYMENT-SIGNATURE", "eyJ4In0=", nil
	}
	down := func(when string) {
		t.Helper()
		_, err := l.Reserve(ctx, rec("d.example", 1), nil)
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "payments are refused until it is back") {
			t.Fatalf("%s: Reserve: %v", when, err)
		}
		if _, err := l.RecordSent(ctx, payment("d.example", 1), nil, sign); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("%s: RecordSent: %v", when, err)
		}
		if _, err := l.Usage(ctx, []Limit{{Name: "all"}}); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("%s: Usage: %v", when, err)
		}
		if _, err := l.Recent(ctx, 5); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("%s: Recent: %v", when, err)
		}
		if signed.Load() != 0 {
			t.Fatalf("%s: signed with the ledger down", when)
		}
	}
	up := func(when string) Record {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			r, err := l.RecordSent(ctx, payment("d.example", 1), nil, sign)
			if err == nil {
				return r
			}
			if !errors.Is(err, ErrUnavailable) || time.Now().After(deadline) {
				t.Fatalf("%s: RecordSent: %v", when, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	down("down at Open")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	first := up("back after Open")
	if rs, err := l.Recent(ctx, 10); err != nil || len(rs) != 1 || signed.Load() != 1 {
		t.Fatalf("after the server came back: %d records, %d signatures, %v", len(rs), signed.Load(), err)
	}

	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	signed.Store(0)
	down("went away")
	// A deferred settlement fails too; the record stays Sent, counted.
	errc := make(chan error, 1)
	l.SettleLater(first.ID, "0xabc", nil, true, func(err error) { errc <- err })
	select {
	case err := <-errc:
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("SettleLater while down: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("SettleLater while down did not report")
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	up("back again")
	if got := stateOf(t, l, first.ID); got != Sent {
		t.Fatalf("the record whose settlement was lost is %s, want sent", got)
	}
	if rs, err := l.Recent(ctx, 10); err != nil || len(rs) != 2 || signed.Load() != 1 {
		t.Fatalf("after the server came back again: %d records, %d signatures, %v", len(rs), signed.Load(), err)
	}
}

var paymentSeq atomic.Int64

// payment is rec with a payload of its own, for RecordSent.
func payment(host string, usd int64) Record {
	r := rec(host, usd)
	r.Payload = &Payload{RequestKey: fmt.Sprintf("%064x", paymentSeq.Add(1))}
	return r
}

// Outside text that PostgreSQL's text cannot hold (NUL) or that is not
// UTF-8 is stored the same, cleaned, on both backends.
func TestSettlementTextSameOnBothBackends(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		l := bk.openNew(t, Options{})
		ctx := context.Background()
		r := mustReserve(t, l, rec("n.example", 1))
		if err := l.MarkSent(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if err := l.Settle(ctx, r.ID, "0xabc", []byte("{\"a\":\"x\x00y\xff\"}")); err != nil {
			t.Fatal(err)
		}
		got, err := l.Get(ctx, r.ID)
		if err != nil || got.Settlement != "{\"a\":\"x\uFFFDy\uFFFD\"}" {
			t.Fatalf("settlement %q, %v", got.Settlement, err)
		}
	})
}

// A process holding the write lock too long (stuck) makes the others fail
// after the lock timeout, as SQLite's busy timeout does, recording
// nothing; and once it lets go they write again.
func TestPostgresStuckWriterTimesOut(t *testing.T) {
	defer func(d time.Duration) { pgLockTimeout = d }(pgLockTimeout)
	pgLockTimeout = 300 * time.Millisecond
	loc := pgtest.Database(t)
	l := pgBackend().open(t, loc, Options{})
	db := pgRaw(t, loc)
	if _, err := db.Exec(`SELECT pg_advisory_lock($1)`, pgWriteLock); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := l.Reserve(context.Background(), rec("s.example", 1), nil)
	if err == nil || errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "lock timeout") {
		t.Fatalf("Reserve while another holds the lock: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("waited %v", d)
	}
	if _, err := db.Exec(`SELECT pg_advisory_unlock($1)`, pgWriteLock); err != nil {
		t.Fatal(err)
	}
	mustReserve(t, l, rec("s.example", 1))
	if _, n := recount(t, l, ""); n != 1 {
		t.Fatalf("%d records, want 1", n)
	}
}

// A dropped CHECK or unique index is a changed table: refused, and not
// repairable.
func TestPostgresChangedTableRefused(t *testing.T) {
	loc := pgtest.Database(t)
	l, err := Open(loc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	db := pgRaw(t, loc)
	if _, err := db.Exec(`ALTER TABLE sums DROP CONSTRAINT sums_usd_nano_check`); err != nil {
		t.Fatal(err)
	}
	_, err = Open(loc, Options{})
	var ie *IntegrityError
	if !errors.As(err, &ie) || ie.Repairable() || !strings.Contains(err.Error(), "constraint sums.sums_usd_nano_check is missing") {
		t.Fatalf("Open after a dropped CHECK: %v", err)
	}
	if _, err := Repair(loc); err == nil || !strings.Contains(err.Error(), "cannot be repaired") {
		t.Fatalf("Repair: %v", err)
	}
}
