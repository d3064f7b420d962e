package ledger

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// 200 goroutines race for one budget; exactly floor(limit/price) win, and
// every loser gets a BudgetError (not a busy error or a lost update).
func TestConcurrentReservationsHoldBudgetExactly(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		l := bk.openNew(t, Options{})
		const (
			limit = 1_000_000_000 // 1 USD
			price = 12_345_679    // just over 0.0123 USD: 81 fit, with 0.000000001 USD left
		)
		lim := Limit{Name: "daily budget", Window: 24 * time.Hour, MaxUSDNano: limit}
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			admitted int
			refused  int
			other    []error
		)
		start := make(chan struct{})
		for i := 0; i < 200; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := l.Reserve(context.Background(), rec("c.example", price), []Limit{lim})
				var be *BudgetError
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					admitted++
				case errors.As(err, &be):
					refused++
				default:
					other = append(other, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(other) > 0 {
			t.Fatalf("unexpected errors: %v", other[0])
		}
		if want := limit / price; admitted != want || refused != 200-want {
			t.Fatalf("admitted %d, refused %d; want %d and %d", admitted, refused, want, 200-want)
		}
		u := usage(t, l, lim)
		if u.SpentUSDNano != int64(admitted)*price || u.LeftUSDNano != limit-int64(admitted)*price || u.Count != admitted {
			t.Fatalf("usage %+v", u)
		}
	})
}

func TestBudgetEdgeIsInclusive(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		l := bk.openNew(t, Options{})
		lim := Limit{Name: "lifetime", MaxUSDNano: 100}
		mustReserve(t, l, rec("e.example", 60), lim)
		mustReserve(t, l, rec("e.example", 40), lim) // exactly reaches the limit
		_, err := l.Reserve(context.Background(), rec("e.example", 1), []Limit{lim})
		var be *BudgetError
		if !errors.As(err, &be) || be.SpentUSDNano != 100 || be.RequestUSDNano != 1 || be.Count != 2 {
			t.Fatalf("one nano-USD over: %v", err)
		}
		// A free call passes a full money limit: it spends nothing.
		mustReserve(t, l, rec("e.example", 0), lim)
	})
}

func TestPerHostLimitCountsOnlyThatHost(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		l := bk.openNew(t, Options{})
		perHost := Limit{Name: "budget for a.example (day)", Window: 24 * time.Hour, Host: "a.example", MaxUSDNano: 100}
		perHostLife := Limit{Name: "budget for a.example", Host: "a.example", MaxUSDNano: 100}
		for i := 0; i < 5; i++ {
			mustReserve(t, l, rec("b.example", 1000), perHost, perHostLife) // other hosts do not count
		}
		mustReserve(t, l, rec("a.example", 100), perHost, perHostLife)
		for _, lim := range []Limit{perHost, perHostLife} {
			_, err := l.Reserve(context.Background(), rec("a.example", 1), []Limit{lim})
			var be *BudgetError
			if !errors.As(err, &be) || be.Limit.Name != lim.Name || be.SpentUSDNano != 100 {
				t.Fatalf("%s: %v", lim.Name, err)
			}
		}
		mustReserve(t, l, rec("b.example", 1), perHost, perHostLife)
		if u := usage(t, l, Limit{Host: "b.example"}); u.SpentUSDNano != 5001 || u.Count != 6 {
			t.Fatalf("b.example lifetime usage %+v", u)
		}
	})
}

func TestCountLimitPerMinute(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		clk := newClock()
		l := bk.openNew(t, Options{Now: clk.Now})
		lim := Limit{Name: "payments per minute", Window: time.Minute, MaxCount: 3}
		for i := 0; i < 3; i++ {
			mustReserve(t, l, rec("m.example", 1), lim)
			clk.Advance(10 * time.Second)
		}
		_, err := l.Reserve(context.Background(), rec("m.example", 1), []Limit{lim})
		var be *BudgetError
		if !errors.As(err, &be) || be.Count != 3 {
			t.Fatalf("fourth payment within a minute: %v", err)
		}
		// 30s after the last: the first (created at t0, now t0+60s) has left
		// the window, which holds (now-1m, now].
		clk.Advance(30 * time.Second)
		mustReserve(t, l, rec("m.example", 1), lim)
	})
}

func TestRollingWindowForgetsOldRecords(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		clk := newClock()
		l := bk.openNew(t, Options{Now: clk.Now})
		day := Limit{Name: "daily budget", Window: 24 * time.Hour, MaxUSDNano: 1000}
		life := Limit{Name: "lifetime budget", MaxUSDNano: 2500}

		mustReserve(t, l, rec("w.example", 600), day, life)
		clk.Advance(12 * time.Hour)
		mustReserve(t, l, rec("w.example", 400), day, life)
		if _, err := l.Reserve(context.Background(), rec("w.example", 1), []Limit{day, life}); err == nil {
			t.Fatal("daily budget not enforced")
		}
		clk.Advance(12*time.Hour - time.Nanosecond) // the first record is 1ns short of a day old
		if _, err := l.Reserve(context.Background(), rec("w.example", 1), []Limit{day, life}); err == nil {
			t.Fatal("record 1ns younger than the window stopped counting")
		}
		clk.Advance(time.Nanosecond) // exactly a day old: out
		mustReserve(t, l, rec("w.example", 600), day, life)
		if u := usage(t, l, day); u.SpentUSDNano != 1000 || u.Count != 2 {
			t.Fatalf("daily usage %+v", u)
		}
		// The lifetime limit never forgets.
		clk.Advance(1000 * time.Hour)
		mustReserve(t, l, rec("w.example", 900), day, life)
		_, err := l.Reserve(context.Background(), rec("w.example", 1), []Limit{day, life})
		var be *BudgetError
		if !errors.As(err, &be) || be.Limit.Name != "lifetime budget" || be.SpentUSDNano != 2500 {
			t.Fatalf("lifetime limit: %v", err)
		}
	})
}

func TestFailedDoNotCountUnknownDo(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		ctx := context.Background()
		l := bk.openNew(t, Options{})
		day := Limit{Name: "daily", Window: 24 * time.Hour, MaxUSDNano: 100}
		life := Limit{Name: "life", MaxUSDNano: 100}
		host := Limit{Name: "host", Host: "f.example", MaxUSDNano: 100}
		limits := []Limit{day, life, host}

		a := mustReserve(t, l, rec("f.example", 100), limits...)
		if _, err := l.Reserve(ctx, rec("f.example", 1), limits); err == nil {
			t.Fatal("full budget admitted more")
		}
		if err := l.Fail(ctx, a.ID, "signing failed"); err != nil {
			t.Fatal(err)
		}
		for _, lim := range limits {
			if u := usage(t, l, lim); u.SpentUSDNano != 0 || u.Count != 0 || u.LeftUSDNano != 100 {
				t.Fatalf("%s after Fail: %+v", lim.Name, u)
			}
		}
		b := mustReserve(t, l, rec("f.example", 100), limits...)
		if err := l.MarkSent(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
		if err := l.MarkUnknown(ctx, b.ID, "", "timeout"); err != nil {
			t.Fatal(err)
		}
		for _, lim := range limits {
			if u := usage(t, l, lim); u.SpentUSDNano != 100 || u.LeftUSDNano != 0 {
				t.Fatalf("%s with an unknown record: %+v", lim.Name, u)
			}
		}
		if _, err := l.Reserve(ctx, rec("f.example", 1), limits); err == nil {
			t.Fatal("unknown record did not count")
		}
	})
}

// Sums are int64; a sum that would overflow must refuse, not wrap around to
// a small or negative number.
func TestSumsNeverOverflow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		l := bk.openNew(t, Options{})
		half := int64(math.MaxInt64/2 + 1)
		lim := Limit{Name: "huge", MaxUSDNano: math.MaxInt64}
		mustReserve(t, l, rec("o.example", half), lim)
		_, err := l.Reserve(context.Background(), rec("o.example", half), []Limit{lim})
		var be *BudgetError
		if !errors.As(err, &be) {
			t.Fatalf("spent+request overflows int64: %v, want BudgetError", err)
		}
		// Without a limit the insert itself must fail: the lifetime total
		// cannot hold it (STRICT column, sum overflow), and the ledger never
		// stores a total it cannot represent.
		if _, err := l.Reserve(context.Background(), rec("o.example", half), nil); err == nil {
			t.Fatal("reservation that overflows the lifetime total was accepted")
		}
		if u := usage(t, l, Limit{}); u.SpentUSDNano != half || u.Count != 1 {
			t.Fatalf("usage after refused overflow %+v", u)
		}
	})
}

// The sums kept by triggers agree with a plain recount after a
// mix of every transition.
func TestTotalsMatchRecount(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		ctx := context.Background()
		l := bk.openNew(t, Options{})
		hosts := []string{"a.example", "b.example", "c.example"}
		for i := 0; i < 60; i++ {
			r := mustReserve(t, l, rec(hosts[i%3], int64(1000+i)))
			switch i % 5 {
			case 0:
				l.Fail(ctx, r.ID, "x")
			case 1:
				l.MarkSent(ctx, r.ID)
			case 2:
				l.MarkSent(ctx, r.ID)
				l.Settle(ctx, r.ID, "", nil)
			case 3:
				l.MarkSent(ctx, r.ID)
				l.MarkUnknown(ctx, r.ID, "", "")
			}
		}
		for _, h := range append(hosts, "") {
			spent, n := recount(t, l, h)
			u := usage(t, l, Limit{Host: h})
			if u.SpentUSDNano != spent || u.Count != n {
				t.Errorf("host %q: totals %d/%d, recount %d/%d", h, u.SpentUSDNano, u.Count, spent, n)
			}
			w := usage(t, l, Limit{Host: h, Window: time.Hour})
			if w.SpentUSDNano != spent || w.Count != n {
				t.Errorf("host %q: window sum %d/%d, recount %d/%d", h, w.SpentUSDNano, w.Count, spent, n)
			}
		}
	})
}

// A caller that gives up before its turn records nothing; one whose turn
// has come waits for the outcome. Either way it can trust what it is told.
func TestCancelledReserveRecordsNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		l := bk.openNew(t, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := l.Reserve(ctx, rec("x.example", 1), nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("Reserve with cancelled ctx: %v", err)
		}
		if rs, _ := l.Recent(context.Background(), 10); len(rs) != 0 {
			t.Fatal("cancelled Reserve left a record")
		}
	})
}

// Window sums read hour and minute buckets plus the records of a partial
// minute; they must equal the plain definition (counted records created in
// (now-window, now]), computed here in Go, for every window, host and
// instant, boundaries included.
func TestWindowSumsMatchPlainDefinition(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		ctx := context.Background()
		l := bk.openNew(t, Options{})
		base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano()
		rng := rand.New(rand.NewPCG(1, 2))
		hosts := []string{"a.example", "b.example"}
		type plain struct {
			id      int64
			created int64
			host    string
			usd     int64
			failed  bool
		}
		var all []plain
		err := l.write(ctx, func(ctx context.Context, tx *wtx) error {
			// Dense enough (about 3 a minute) that partial minutes hold records.
			for i := 0; i < 1000; i++ {
				at := base - rng.Int64N(int64(6*time.Hour))
				switch i % 10 {
				case 0: // on a minute boundary
					at -= at % minuteNS
				case 1: // on an hour boundary
					at -= at % hourNS
				case 2: // just before a minute boundary
					at -= at%minuteNS + 1
				}
				r := rec(hosts[i%2], 1+rng.Int64N(1_000_000_000))
				id, err := tx.insertID(ctx, qInsert, at, at, r.URL, r.Host, r.Network, addressText(r.Asset), r.Token, 6,
					r.Amount.String(), r.USDNano, addressText(r.PayTo), addressText(r.Payer), nonceText(r.Nonce), r.ValidBefore, string(Reserved), l.owner, at)
				if err != nil {
					return err
				}
				all = append(all, plain{id: id, created: at, host: r.Host, usd: r.USDNano})
			}
			// Failed records must leave every bucket; fail some through the
			// code path Fail uses.
			for i := range all[:100] {
				if err := l.moveTx(ctx, tx, all[i].id, change{to: Failed, from: []State{Reserved}}); err != nil {
					return err
				}
				all[i].failed = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		windows := []time.Duration{time.Nanosecond, time.Second, 59 * time.Second, time.Minute, time.Minute + 1,
			61 * time.Second, time.Hour - 1, time.Hour, time.Hour + 1, 90 * time.Minute, 24 * time.Hour,
			7 * 24 * time.Hour, 100 * 365 * 24 * time.Hour}
		nows := []int64{base, base - base%hourNS, base - base%minuteNS + 1, base - 3*int64(time.Hour) + 7}
		for i := 0; i < 20; i++ {
			nows = append(nows, base-rng.Int64N(int64(7*time.Hour)))
		}
		tx, err := l.rdb.BeginTx(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		for _, now := range nows {
			for _, w := range windows {
				for _, h := range append(hosts, "") {
					got, gotN, err := sum(ctx, tx, Limit{Window: w, Host: h}, time.Unix(0, now))
					if err != nil {
						t.Fatal(err)
					}
					var want int64
					var wantN int
					for _, r := range all {
						if !r.failed && r.created > now-int64(w) && (h == "" || r.host == h) {
							want += r.usd
							wantN++
						}
					}
					if got != want || gotN != wantN {
						t.Fatalf("now %d window %v host %q: sum %d/%d, plain %d/%d", now, w, h, got, gotN, want, wantN)
					}
				}
			}
		}
	})
}
