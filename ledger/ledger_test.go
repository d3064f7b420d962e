package ledger

import (
	"bytes"
	"context"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

func TestReserveStoresWhatItReturns(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		clk := newClock()
		l := bk.openNew(t, Options{Now: clk.Now, Lease: time.Minute})
		ctx := context.Background()

		r := rec("api.example.com", 10_000_000)
		// The largest uint256: must come back exactly, which no float or int64
		// column could do.
		r.Amount = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
		got := mustReserve(t, l, r)

		if got.ID <= 0 || got.State != Reserved || got.Owner != l.Owner() {
			t.Fatalf("stored record: id %d state %s owner %q", got.ID, got.State, got.Owner)
		}
		if !got.Created.Equal(clk.Now()) || !got.LeaseUntil.Equal(clk.Now().Add(time.Minute)) {
			t.Fatalf("created %v lease %v, want %v and +1m", got.Created, got.LeaseUntil, clk.Now())
		}
		back, err := l.Get(ctx, got.ID)
		if err != nil {
			t.Fatal(err)
		}
		if back.Amount.Cmp(r.Amount) != 0 {
			t.Fatalf("amount %s, want %s", back.Amount, r.Amount)
		}
		if back.URL != r.URL || back.Host != r.Host || back.Network != r.Network || back.Asset != r.Asset ||
			back.Token != r.Token || back.Decimals != r.Decimals || back.USDNano != r.USDNano ||
			back.PayTo != r.PayTo || back.Payer != r.Payer || back.Nonce != r.Nonce ||
			back.ValidBefore != r.ValidBefore || back.State != Reserved ||
			!back.Created.Equal(got.Created) || !back.LeaseUntil.Equal(got.LeaseUntil) || back.Owner != got.Owner {
			t.Fatalf("read back\n%+v\nwant\n%+v", back, got)
		}
		// The caller's big.Int is not shared with the stored record.
		r.Amount.SetInt64(1)
		if got.Amount.Sign() <= 0 || got.Amount.Cmp(big.NewInt(1)) == 0 {
			t.Fatal("Reserve kept a reference to the caller's Amount")
		}
	})
}

func TestDuplicateNonceRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		l := bk.openNew(t, Options{})
		r := rec("a.example", 1)
		first := mustReserve(t, l, r)

		// Same authorization, other terms: still the same (payer, nonce).
		dup := r
		dup.Host, dup.USDNano = "b.example", 2
		if _, err := l.Reserve(context.Background(), dup, nil); !errors.Is(err, ErrDuplicateNonce) {
			t.Fatalf("duplicate nonce: %v, want ErrDuplicateNonce", err)
		}
		// Another payer may use the same nonce.
		other := r
		other.Payer = common.HexToAddress("0x3333333333333333333333333333333333333333")
		mustReserve(t, l, other)

		recent, err := l.Recent(context.Background(), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(recent) != 2 || recent[1].ID != first.ID {
			t.Fatalf("records after refused duplicate: %d", len(recent))
		}
	})
}

func TestTransitions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		ctx := context.Background()
		clk := newClock()
		l := bk.openNew(t, Options{Now: clk.Now})

		// make returns a record in state s, reached through the public API.
		make := func(s State) int64 {
			r := mustReserve(t, l, rec("t.example", 5))
			steps := map[State][]func(int64) error{
				Reserved: nil,
				Sent:     {func(id int64) error { return l.MarkSent(ctx, id) }},
				Settled: {func(id int64) error { return l.MarkSent(ctx, id) },
					func(id int64) error { return l.Settle(ctx, id, "0xabc", []byte(`{"success":true}`)) }},
				Unknown: {func(id int64) error { return l.MarkSent(ctx, id) },
					func(id int64) error { return l.MarkUnknown(ctx, id, "", "timeout") }},
				Failed: {func(id int64) error { return l.Fail(ctx, id, "policy changed") }},
			}
			for _, step := range steps[s] {
				if err := step(r.ID); err != nil {
					t.Fatalf("reaching %s: %v", s, err)
				}
			}
			if got := stateOf(t, l, r.ID); got != s {
				t.Fatalf("reached %s, want %s", got, s)
			}
			return r.ID
		}
		ops := map[State]func(int64) error{
			Sent:    func(id int64) error { return l.MarkSent(ctx, id) },
			Settled: func(id int64) error { return l.Settle(ctx, id, "0xdef", nil) },
			Unknown: func(id int64) error { return l.MarkUnknown(ctx, id, "", "x") },
			Failed:  func(id int64) error { return l.Fail(ctx, id, "x") },
		}
		allowed := map[[2]State]bool{
			{Reserved, Sent}: true, {Reserved, Failed}: true,
			{Sent, Settled}: true, {Sent, Unknown}: true,
			{Unknown, Settled}: true,
			// A re-sent payment can end ambiguous again.
			{Unknown, Unknown}: true,
		}
		for _, from := range []State{Reserved, Sent, Settled, Unknown, Failed} {
			for _, to := range []State{Sent, Settled, Unknown, Failed} {
				id := make(from)
				err := ops[to](id)
				got := stateOf(t, l, id)
				if allowed[[2]State{from, to}] {
					if err != nil || got != to {
						t.Errorf("%s → %s: err %v, state %s", from, to, err, got)
					}
					continue
				}
				var te *TransitionError
				if !errors.Is(err, ErrBadTransition) || !errors.As(err, &te) || te.From != from || te.To != to || te.ID != id {
					t.Errorf("%s → %s: err %v, want a TransitionError", from, to, err)
				}
				if got != from {
					t.Errorf("%s → %s refused but state became %s", from, to, got)
				}
			}
		}

		for name, op := range ops {
			if err := op(999999); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s on a missing record: %v, want ErrNotFound", name, err)
			}
		}
	})
}

func TestOnlyOwnerMarksSentOrFails(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		ctx := context.Background()
		path := bk.place(t)
		a, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if a.Owner() == b.Owner() {
			t.Fatal("two instances share an owner name")
		}
		r := mustReserve(t, a, rec("o.example", 1))
		if err := b.MarkSent(ctx, r.ID); !errors.Is(err, ErrNotOwner) {
			t.Fatalf("MarkSent by another instance: %v, want ErrNotOwner", err)
		}
		if err := b.Fail(ctx, r.ID, "not mine"); !errors.Is(err, ErrNotOwner) {
			t.Fatalf("Fail by another instance: %v, want ErrNotOwner", err)
		}
		if err := a.MarkSent(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		// Outcomes may be recorded by anyone (e.g. a later reconciliation).
		if err := b.Settle(ctx, r.ID, "0x01", nil); err != nil {
			t.Fatal(err)
		}
	})
}

func TestMarkSentRenewsLease(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		clk := newClock()
		l := bk.openNew(t, Options{Now: clk.Now, Lease: time.Minute})
		r := mustReserve(t, l, rec("l.example", 1))
		clk.Advance(50 * time.Second)
		if err := l.MarkSent(context.Background(), r.ID); err != nil {
			t.Fatal(err)
		}
		got, _ := l.Get(context.Background(), r.ID)
		if want := clk.Now().Add(time.Minute); !got.LeaseUntil.Equal(want) {
			t.Fatalf("lease %v, want %v", got.LeaseUntil, want)
		}
	})
}

func TestOutcomeFieldsBounded(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		ctx := context.Background()
		l := bk.openNew(t, Options{})
		r := mustReserve(t, l, rec("b.example", 1))
		if err := l.MarkSent(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		note := strings.Repeat("é", 3000) // 6000 bytes, cut inside no rune
		if err := l.MarkUnknown(ctx, r.ID, "", note); err != nil {
			t.Fatal(err)
		}
		big := append([]byte(`{"transaction":"`), bytes.Repeat([]byte("a"), 20000)...)
		if err := l.Settle(ctx, r.ID, "0x"+strings.Repeat("ab", 32), big); err != nil {
			t.Fatal(err)
		}
		got, _ := l.Get(ctx, r.ID)
		if len(got.Settlement) != maxSettlement || !strings.HasPrefix(got.Settlement, `{"transaction":"aaa`) {
			t.Fatalf("settlement kept %d bytes, want %d", len(got.Settlement), maxSettlement)
		}
		if len(got.Note) > maxNote || len(got.Note) < maxNote-1 || !strings.HasPrefix(note, got.Note) {
			t.Fatalf("note kept %d bytes, want a %d-byte prefix", len(got.Note), maxNote)
		}
		if got.Transaction != "0x"+strings.Repeat("ab", 32) {
			t.Fatalf("transaction %q", got.Transaction)
		}
		if err := l.Settle(ctx, r.ID, strings.Repeat("f", 200), nil); !errors.Is(err, ErrInvalid) {
			t.Fatalf("oversized tx hash: %v", err)
		}
	})
}

func TestReserveValidates(t *testing.T) {
	l := openTest(t, Options{})
	cases := map[string]func(*Record){
		"empty url":       func(r *Record) { r.URL = "" },
		"huge url":        func(r *Record) { r.URL = "https://x/" + strings.Repeat("a", maxURL) },
		"upper host":      func(r *Record) { r.Host = "API.example.com" },
		"host with slash": func(r *Record) { r.Host = "a/b" },
		"empty host":      func(r *Record) { r.Host = "" },
		"network":         func(r *Record) { r.Network = "base" },
		"asset":           func(r *Record) { r.Asset = common.Address{} },
		"payTo":           func(r *Record) { r.PayTo = common.Address{} },
		"payer":           func(r *Record) { r.Payer = common.Address{} },
		"nonce":           func(r *Record) { r.Nonce = [32]byte{} },
		"nil amount":      func(r *Record) { r.Amount = nil },
		"zero amount":     func(r *Record) { r.Amount = big.NewInt(0) },
		"negative amount": func(r *Record) { r.Amount = big.NewInt(-5) },
		"amount > 2^256":  func(r *Record) { r.Amount = new(big.Int).Lsh(big.NewInt(1), 256) },
		"negative usd":    func(r *Record) { r.USDNano = -1 },
		"token control":   func(r *Record) { r.Token = "US\nDC" },
		"validBefore":     func(r *Record) { r.ValidBefore = 0 },
	}
	for name, mutate := range cases {
		r := rec("v.example", 1)
		mutate(&r)
		if _, err := l.Reserve(context.Background(), r, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	bad := []Limit{{Name: "neg", MaxUSDNano: -1}}
	if _, err := l.Reserve(context.Background(), rec("v.example", 1), bad); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative limit: %v", err)
	}
	if rs, _ := l.Recent(context.Background(), 100); len(rs) != 0 {
		t.Fatalf("%d records stored by refused calls", len(rs))
	}
}

func TestRecentAndPending(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		ctx := context.Background()
		l := bk.openNew(t, Options{})
		var ids []int64
		for i := 0; i < 5; i++ {
			ids = append(ids, mustReserve(t, l, rec("r.example", 1)).ID)
		}
		_ = l.MarkSent(ctx, ids[1])
		_ = l.MarkSent(ctx, ids[2])
		_ = l.Settle(ctx, ids[2], "", nil)
		_ = l.Fail(ctx, ids[3], "x")
		_ = l.MarkSent(ctx, ids[4])
		_ = l.MarkUnknown(ctx, ids[4], "", "timeout")

		recent, err := l.Recent(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(recent) != 3 || recent[0].ID != ids[4] || recent[2].ID != ids[2] {
			t.Fatalf("Recent(3) = %v", recent)
		}
		if rs, _ := l.Recent(ctx, 0); len(rs) != 0 {
			t.Fatal("Recent(0) returned records")
		}
		pending, err := l.Pending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, r := range pending {
			got = append(got, r.ID)
		}
		if want := []int64{ids[0], ids[1], ids[4]}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
			t.Fatalf("Pending ids %v, want %v", got, want)
		}
	})
}

func TestOpenRefusesGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	garbage := bytes.Repeat([]byte("not a database, just some bytes\n"), 300)
	if err := os.WriteFile(path, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, Options{})
	if !errors.Is(err, ErrNotLedger) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open(garbage) = %v, want ErrNotLedger naming the file", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(after, garbage) {
		t.Fatal("Open changed a file it refused")
	}
	for _, side := range []string{"-wal", "-shm", "-journal"} {
		if _, err := os.Stat(path + side); err == nil {
			t.Errorf("Open left %s behind", side)
		}
	}
}

func TestOpenRefusesForeignDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	db := rawDB(t, path)
	if _, err := db.Exec(`CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hi')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	before, _ := os.ReadFile(path)

	_, err := Open(path, Options{})
	if !errors.Is(err, ErrNotLedger) {
		t.Fatalf("Open(foreign db) = %v, want ErrNotLedger", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("Open changed a foreign database (e.g. switched it to WAL)")
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustReserve(t, l, rec("n.example", 1))
	l.Close()

	db := rawDB(t, path)
	if _, err := db.Exec(`PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(path, Options{}); !errors.Is(err, ErrTooNew) {
		t.Fatalf("Open(newer schema) = %v, want ErrTooNew", err)
	}
}

func TestReopenKeepsRecords(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		path := bk.place(t)
		l, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		r := mustReserve(t, l, rec("p.example", 123))
		l.Close()
		if _, err := l.Reserve(context.Background(), rec("p.example", 1), nil); !errors.Is(err, ErrClosed) {
			t.Fatalf("Reserve after Close: %v, want ErrClosed", err)
		}

		l, err = Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		got, err := l.Get(context.Background(), r.ID)
		if err != nil || got.USDNano != 123 || got.State != Reserved {
			t.Fatalf("after reopen: %+v, %v", got, err)
		}
		if l.d.pg {
			return // the schema version is in x402.meta (TestPostgresConcurrentOpenMigratesOnce)
		}
		var version, app int
		l.rdb.QueryRowContext(context.Background(), `PRAGMA user_version`).Scan(&version)
		l.rdb.QueryRowContext(context.Background(), `PRAGMA application_id`).Scan(&app)
		if version != schemaVersion || app != applicationID {
			t.Fatalf("user_version %d application_id %#x", version, app)
		}
	})
}

func TestFileModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes")
	}
	dir := filepath.Join(t.TempDir(), "new", "x402-mcp")
	path := filepath.Join(dir, "ledger.db")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	mustReserve(t, l, rec("m.example", 1)) // makes SQLite create -wal and -shm
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", fi.Mode().Perm())
	}
}

func TestHistoryCannotBeRewritten(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		l := bk.openNew(t, Options{})
		r := mustReserve(t, l, rec("h.example", 7))
		db := raw(t, l)
		for _, q := range []string{
			`DELETE FROM records`,
			`UPDATE records SET usd_nano = 0`,
			`UPDATE records SET host = 'other.example'`,
			`UPDATE records SET state = 'settled'`, // reserved → settled skips sent
			`DELETE FROM sums`,
		} {
			if _, err := db.Exec(q); err == nil {
				t.Errorf("%s succeeded", q)
			}
		}
		if got, _ := l.Get(context.Background(), r.ID); got.USDNano != 7 || got.State != Reserved {
			t.Fatalf("record changed: %+v", got)
		}
	})
}

func TestFormatUSDNano(t *testing.T) {
	for n, want := range map[int64]string{
		0:             "0.00",
		1:             "0.000000001",
		950_000_000:   "0.95",
		1_000_000_000: "1.00",
		1_500_000_000: "1.50",
		1_234_567_891: "1.234567891",
		-100_000_000:  "-0.10",
		1<<63 - 1:     "9223372036.854775807",
		-1 << 63:      "-9223372036.854775808",
	} {
		if got := FormatUSDNano(n); got != want {
			t.Errorf("FormatUSDNano(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestBudgetErrorMessage(t *testing.T) {
	e := &BudgetError{
		Limit:        Limit{Name: "daily budget", Window: 24 * time.Hour, MaxUSDNano: 1_000_000_000},
		SpentUSDNano: 950_000_000, Count: 3, RequestUSDNano: 100_000_000,
	}
	if got, want := e.Error(), "daily budget: 0.95 USD of 1.00 USD spent; this payment (0.10 USD) would exceed it"; got != want {
		t.Errorf("money: %q\nwant  %q", got, want)
	}
	e = &BudgetError{Limit: Limit{Name: "payments per minute", Window: time.Minute, MaxCount: 10}, Count: 10, RequestUSDNano: 1}
	if got, want := e.Error(), "payments per minute: 10 of 10 payments made; this payment would exceed it"; got != want {
		t.Errorf("count: %q\nwant  %q", got, want)
	}
}

// Instances in one process that open a new ledger at the same moment all
// succeed. (Across processes: TestConcurrentOpenAcrossProcesses.)
func TestConcurrentOpenOfNewFile(t *testing.T) {
	for round := 0; round < 10; round++ {
		path := filepath.Join(t.TempDir(), "ledger.db")
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		start := make(chan struct{})
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				l, err := Open(path, Options{})
				if err != nil {
					errs <- err
					return
				}
				_, err = l.Reserve(context.Background(), rec("o.example", 1), nil)
				errs <- errors.Join(err, l.Close())
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}

// TestReplacedWhileOpen: a ledger whose file is deleted, or replaced by
// another, while it is open records nothing more and says so; the
// budgets are never counted in a file nobody reads.
func TestReplacedWhileOpen(t *testing.T) {
	for name, replace := range map[string]func(t *testing.T, path string){
		"deleted": func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		},
		"replaced": func(t *testing.T, path string) {
			other := path + ".other"
			o, err := Open(other, Options{})
			if err != nil {
				t.Fatal(err)
			}
			o.Close()
			if err := os.Rename(other, path); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ledger.db")
			l, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			mustReserve(t, l, rec("api.example.com", 1000))
			replace(t, path)
			_, err = l.Reserve(context.Background(), rec("api.example.com", 1000), nil)
			if !errors.Is(err, ErrReplaced) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Reserve after the file was %s: %v", name, err)
			}
		})
	}
}
