package ledger

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// Run: go test -run '^$' -bench Reserve -benchtime 3s ./ledger/
// The figures are for durable commits (synchronous=FULL), on whatever disk
// holds the temporary directory; set TMPDIR to measure another one.

// benchLimits are the five limits a paying call typically checks.
var benchLimits = []Limit{
	{Name: "daily budget", Window: 24 * time.Hour, MaxUSDNano: 1 << 62},
	{Name: "budget for h3.example (day)", Window: 24 * time.Hour, Host: "h3.example", MaxUSDNano: 1 << 62},
	{Name: "weekly budget for h3.example", Window: 7 * 24 * time.Hour, Host: "h3.example", MaxUSDNano: 1 << 62},
	{Name: "lifetime budget", MaxUSDNano: 1 << 62},
	{Name: "payments per minute", Window: time.Minute, MaxCount: 1 << 30},
}

// seed fills the ledger with n records over the last three days across ten
// hosts, in one transaction (seeding through Reserve would take n fsyncs).
func seed(b testing.TB, l *Ledger, n int) {
	b.Helper()
	now := time.Now()
	err := l.write(context.Background(), func(ctx context.Context, tx *wtx) error {
		for i := 0; i < n; i++ {
			r := rec(fmt.Sprintf("h%d.example", i%10), 1_000_000+int64(i))
			r.State, r.Owner = Settled, "seed"
			at := now.Add(-time.Duration(i) * 72 * time.Hour / time.Duration(n))
			_, err := tx.ExecContext(ctx, qInsert,
				at.UnixNano(), at.UnixNano(), r.URL, r.Host, r.Network, addressText(r.Asset), r.Token, 6,
				r.Amount.String(), r.USDNano, addressText(r.PayTo), addressText(r.Payer), nonceText(r.Nonce), r.ValidBefore,
				string(r.State), r.Owner, at.UnixNano())
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

func BenchmarkReserve(b *testing.B) {
	l := openTest(b, Options{})
	seed(b, l, 10_000)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := l.Reserve(ctx, rec("h3.example", 1000), benchLimits); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reservations/s")
}

// BenchmarkReserveParallel is many goroutines of one process reserving at
// once, as when an agent fans out paid calls: group commit shares fsyncs.
func BenchmarkReserveParallel(b *testing.B) {
	l := openTest(b, Options{})
	seed(b, l, 10_000)
	ctx := context.Background()
	var failed atomic.Value
	b.SetParallelism(8) // 8 × GOMAXPROCS callers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Reserve(ctx, rec("h3.example", 1000), benchLimits); err != nil {
				failed.Store(err)
				return
			}
		}
	})
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reservations/s")
}

// BenchmarkVerify is the integrity check Open runs at every start (schema
// and a recount of every sum from the records), on 100k records over three
// days and ten hosts.
// Run: go test -run '^$' -bench Verify -benchtime 10x ./ledger/
func BenchmarkVerify(b *testing.B) {
	l := openTest(b, Options{})
	seed(b, l, 100_000)
	ctx := context.Background()
	if _, err := expectedSchema(); err != nil { // built once per process, not per Open
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := l.Verify(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
