package ledger

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// spendSome makes a ledger at path with three counted payments (one on
// another host) and one failed one, and closes it.
func spendSome(t *testing.T, path string, opts Options) {
	t.Helper()
	l, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	mustReserve(t, l, rec("a.example", 500_000_000))
	mustReserve(t, l, rec("a.example", 250_000_000))
	mustReserve(t, l, rec("b.example", 100_000_000))
	f := mustReserve(t, l, rec("b.example", 999_000_000))
	if err := l.Fail(context.Background(), f.ID, "never sent"); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func daySpent(t *testing.T, l *Ledger) int64 {
	t.Helper()
	return usage(t, l, Limit{Window: 24 * time.Hour, MaxUSDNano: 1}).SpentUSDNano
}

// The reported attack: resetting the sums in the file reset the budget.
// The triggers refuse the plain UPDATE; done anyway (guard opened, or the
// trigger dropped), Open refuses the ledger, naming the difference, and
// Repair recomputes the sums from the records.
func TestTamperedSums(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) { testTamperedSums(t, bk) })
}

func testTamperedSums(t *testing.T, bk backend) {
	tampers := map[string][]string{
		"guard opened": {
			`UPDATE sums_guard SET open = 1`, `UPDATE sums SET usd_nano = 0`, `UPDATE sums_guard SET open = 0`},
		"trigger dropped": {
			`DROP TRIGGER sums_written`, `UPDATE sums SET usd_nano = 0, count = 0`},
		"guard left open": {
			`UPDATE sums_guard SET open = 1`, `UPDATE sums SET usd_nano = 1 WHERE span = 60000000000`},
	}
	if bk.name == "postgres" {
		tampers = map[string][]string{
			"guard opened": {
				`SELECT set_config('x402.repair', 'on', false)`, `UPDATE sums SET usd_nano = 0`, `SELECT set_config('x402.repair', 'off', false)`},
			"trigger dropped": {
				`DROP TRIGGER sums_written ON sums`, `UPDATE sums SET usd_nano = 0, count = 0`},
			"guard left open": { // the nearest thing: the guard's trigger disabled
				`ALTER TABLE sums DISABLE TRIGGER sums_written`, `UPDATE sums SET usd_nano = 1 WHERE span = 60000000000`},
		}
	}
	for name, tamper := range tampers {
		t.Run(name, func(t *testing.T) {
			clk := newClock()
			path := bk.place(t)
			spendSome(t, path, Options{Now: clk.Now})
			var db interface {
				Exec(string, ...any) (sql.Result, error)
				Close() error
			}
			if bk.name == "postgres" {
				db = pgRaw(t, path)
			} else {
				db = rawDB(t, path)
			}
			for _, q := range []string{
				`UPDATE sums SET usd_nano = 0`,
				`INSERT INTO sums (host, span, start, usd_nano, count) VALUES ('x', 0, 0, 0, 0)`,
				`DELETE FROM sums`,
				`UPDATE records SET state = 'failed' WHERE state = 'reserved' AND 1 = 0`, // harmless: allowed
			} {
				_, err := db.Exec(q)
				if allowed := strings.HasSuffix(q, "AND 1 = 0"); (err == nil) != allowed {
					t.Errorf("%s: err %v", q, err)
				}
			}
			for _, q := range tamper {
				if _, err := db.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			db.Close()

			_, err := Open(path, Options{Now: clk.Now})
			var ie *IntegrityError
			if !errors.As(err, &ie) || !errors.Is(err, ErrTampered) {
				t.Fatalf("Open of a tampered ledger: %v", err)
			}
			if name != "guard left open" && !strings.Contains(err.Error(), "lifetime total (all hosts) is 0.00 USD") ||
				!strings.Contains(err.Error(), "records add up to") {
				t.Errorf("error does not name the difference: %v", err)
			}
			if !ie.Repairable() {
				t.Errorf("not repairable: %v", ie.Schema)
			}

			// Inspect: readable, and refuses to pay.
			l, err := Open(path, Options{Now: clk.Now, Inspect: true})
			if err != nil {
				t.Fatal(err)
			}
			if !errors.Is(l.Damage(), ErrTampered) {
				t.Errorf("Damage() = %v", l.Damage())
			}
			if recs, err := l.Recent(context.Background(), 10); err != nil || len(recs) != 4 {
				t.Errorf("Recent: %d records, %v", len(recs), err)
			}
			if _, err := l.Reserve(context.Background(), rec("a.example", 1), nil); !errors.Is(err, ErrTampered) {
				t.Errorf("Reserve on a damaged ledger: %v", err)
			}
			l.Close()

			rep, err := Repair(path)
			if err != nil || len(rep.Sums) == 0 {
				t.Fatalf("Repair: %+v, %v", rep, err)
			}
			l, err = Open(path, Options{Now: clk.Now})
			if err != nil {
				t.Fatalf("Open after Repair: %v", err)
			}
			defer l.Close()
			if got := daySpent(t, l); got != 850_000_000 {
				t.Errorf("day spent after repair %d, want 850000000", got)
			}
			if err := l.Verify(context.Background()); err != nil {
				t.Error(err)
			}
			// The triggers are back.
			if _, err := l.wdb.Exec(`UPDATE sums SET usd_nano = 0`); err == nil {
				t.Error("sums writable after Repair")
			}
			if rep, err := Repair(path); err != nil || len(rep.Sums)+len(rep.Schema) != 0 {
				t.Errorf("second Repair: %+v, %v", rep, err)
			}
		})
	}
}

// A dropped trigger is refused even when no sum was changed yet: the next
// write would not be counted.
func TestDroppedTrigger(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	spendSome(t, path, Options{})
	db := rawDB(t, path)
	if _, err := db.Exec(`DROP TRIGGER records_count`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err := Open(path, Options{})
	if !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "trigger records_count is missing") {
		t.Fatalf("Open: %v", err)
	}
	if _, err := Repair(path); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	mustReserve(t, l, rec("a.example", 1))
	if err := l.Verify(context.Background()); err != nil {
		t.Error(err)
	}
}

// A changed table cannot be rebuilt from the records: Repair refuses.
func TestRepairRefusesChangedTable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	spendSome(t, path, Options{})
	db := rawDB(t, path)
	if _, err := db.Exec(`DROP INDEX records_state`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err := Open(path, Options{})
	var ie *IntegrityError
	if !errors.As(err, &ie) || ie.Repairable() {
		t.Fatalf("Open: %v", err)
	}
	if _, err := Repair(path); err == nil || !strings.Contains(err.Error(), "cannot be repaired") {
		t.Fatalf("Repair: %v", err)
	}
}

// The recount agrees with the triggers through every state a record goes
// through, including failed ones and many hosts, minutes and hours.
func TestRecountAgrees(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		clk := newClock()
		l := bk.openNew(t, Options{Now: clk.Now})
		ctx := context.Background()
		for i := range 50 {
			r := mustReserve(t, l, rec([]string{"a.example", "b.example", "c.example"}[i%3], int64(1+i*1000)))
			switch i % 4 {
			case 1:
				if err := l.Fail(ctx, r.ID, "no"); err != nil {
					t.Fatal(err)
				}
			case 2:
				if err := l.MarkSent(ctx, r.ID); err != nil {
					t.Fatal(err)
				}
			}
			clk.Advance(7 * time.Minute)
		}
		if err := l.Verify(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// A ledger created at a path and then deleted is not started afresh:
// Open refuses until the identity file is removed on purpose. Another
// ledger put in its place is refused too.
func TestIdentity(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "data", "ledger.db")
	idFile := filepath.Join(dir, "state", "ledger.id")
	spendSome(t, path, Options{IDFile: idFile})
	if _, err := os.Stat(idFile); err != nil {
		t.Fatal(err)
	}
	// Reopening is fine.
	l, err := Open(path, Options{IDFile: idFile})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()

	// Another ledger in its place.
	other := filepath.Join(dir, "other.db")
	spendSome(t, other, Options{})
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, Options{IDFile: idFile})
	var ie *IdentityError
	if !errors.As(err, &ie) || ie.Found == "" || !strings.Contains(err.Error(), "rm "+idFile) {
		t.Fatalf("Open of another ledger: %v", err)
	}

	// Emptied: refused before it is made a new ledger.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, Options{IDFile: idFile})
	if !errors.As(err, &ie) || ie.Found != "" {
		t.Fatalf("Open of an emptied ledger: %v", err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != 0 {
		t.Errorf("the refused Open wrote to the emptied file: %v", err)
	}

	// Deleted, with its directory.
	if err := os.RemoveAll(filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, Options{IDFile: idFile})
	if !errors.As(err, &ie) || ie.Found != "" || !strings.Contains(err.Error(), "is missing") || !strings.Contains(err.Error(), "rm "+idFile) {
		t.Fatalf("Open of a deleted ledger: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused Open created something: %v", err)
	}

	// Starting over on purpose.
	if err := os.Remove(idFile); err != nil {
		t.Fatal(err)
	}
	l, err = Open(path, Options{IDFile: idFile})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := daySpent(t, l); got != 0 {
		t.Errorf("new ledger spent %d", got)
	}
}

func TestIDFilePath(t *testing.T) {
	a, err := IDFilePath("/x/a/ledger.db")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := IDFilePath("/x/b/ledger.db")
	if a == b || filepath.Dir(a) != filepath.Dir(b) {
		t.Errorf("two ledgers, identity files %s and %s", a, b)
	}
	for _, c := range []struct {
		goos string
		env  map[string]string
		want string
	}{
		{"linux", map[string]string{"XDG_STATE_HOME": "/s", "HOME": "/h"}, "/s/x402-mcp/ledger-ids"},
		{"linux", map[string]string{"XDG_STATE_HOME": "rel", "HOME": "/h"}, "/h/.local/state/x402-mcp/ledger-ids"},
		{"darwin", map[string]string{"HOME": "/h"}, "/h/Library/Application Support/x402-mcp-ledger-ids"},
	} {
		got, err := idDir(c.goos, func(k string) string { return c.env[k] })
		if err != nil || got != c.want {
			t.Errorf("%s %v: %q, %v; want %q", c.goos, c.env, got, err, c.want)
		}
	}
}

// Processes starting together on a new ledger agree on its identity: the
// identity file is created whole, once.
func TestIdentityRace(t *testing.T) {
	dir := t.TempDir()
	path, idFile := filepath.Join(dir, "ledger.db"), filepath.Join(dir, "ids", "ledger.id")
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			l, err := Open(path, Options{IDFile: idFile})
			if err == nil {
				err = l.Close()
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(idFile))
	if len(entries) != 1 {
		t.Errorf("identity directory holds %d files, want 1", len(entries))
	}
}
