package ledger

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"
)

// claimSign is a SignFunc that claims the reservation it is given, as the
// policy does, and returns a fixed header.
func claimSign(t *testing.T, r Record, calls *int) SignFunc {
	nonce := r.Nonce
	return func(res Reservation) (string, string, error) {
		*calls++
		// Runs on the ledger's writer goroutine: report, never t.Fatal.
		if res.ID() == 0 {
			return "", "", errors.New("sign called without a reservation")
		}
		if err := res.Claim(r.Payer, r.PayTo, r.Amount, nonce); err != nil {
			return "", "", err
		}
		return "PAYMENT-SIGNATURE", "eyJzaWduZWQiOnRydWV9", nil
	}
}

// TestRecordSent: one transaction checks the limits, inserts the record as
// sent, signs against a real reservation and stores the header; the
// reservation backs one signature only.
func TestRecordSent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		c := newClock()
		l := bk.openNew(t, Options{Now: c.Now})
		ctx := context.Background()
		r := withPayload(rec("api.example", 10), key1, "")
		var calls int
		var kept Reservation
		sign := claimSign(t, r, &calls)
		out, err := l.RecordSent(ctx, r, []Limit{{Name: "daily", Window: 24 * time.Hour, MaxUSDNano: 100}}, func(res Reservation) (string, string, error) {
			kept = res
			return sign(res)
		})
		if err != nil || calls != 1 {
			t.Fatalf("RecordSent: %v (sign called %d times)", err, calls)
		}
		if out.State != Sent || out.Payload == nil || out.Payload.HeaderValue != "eyJzaWduZWQiOnRydWV9" || out.ID != kept.ID() {
			t.Fatalf("returned %+v %+v", out, out.Payload)
		}
		got, p, ok, err := l.InFlight(ctx, key1)
		if err != nil || !ok || got.ID != out.ID || got.State != Sent || p.HeaderName != "PAYMENT-SIGNATURE" || p.HeaderValue != out.Payload.HeaderValue {
			t.Fatalf("stored: %+v %+v %v %v", got, p, ok, err)
		}
		if !got.LeaseUntil.After(c.Now()) {
			t.Errorf("lease %v is not after now %v", got.LeaseUntil, c.Now())
		}
		if err := kept.Claim(r.Payer, r.PayTo, r.Amount, r.Nonce); !errors.Is(err, ErrReservationClaimed) {
			t.Errorf("a second claim: %v", err)
		}
		if spent, n := recount(t, l, ""); spent != 10 || n != 1 {
			t.Errorf("counted %d nano-USD in %d records, want 10 in 1", spent, n)
		}
	})
}

// TestRecordSentRefusals: a full budget never reaches the signer; a sign
// error, a bad header or an unclaimable reservation record nothing.
func TestRecordSentRefusals(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		l := bk.openNew(t, Options{})
		ctx := context.Background()
		limits := []Limit{{Name: "daily", Window: 24 * time.Hour, MaxUSDNano: 15}}
		mustReserve(t, l, rec("api.example", 10))

		var calls int
		r := withPayload(rec("api.example", 10), key1, "")
		var over *BudgetError
		if _, err := l.RecordSent(ctx, r, limits, claimSign(t, r, &calls)); !errors.As(err, &over) || calls != 0 {
			t.Fatalf("over budget: %v, sign called %d times", err, calls)
		}

		boom := errors.New("signer unavailable")
		for name, sign := range map[string]SignFunc{
			"sign fails":   func(Reservation) (string, string, error) { return "", "", boom },
			"empty header": func(Reservation) (string, string, error) { return "", "", nil },
			"header too big": func(Reservation) (string, string, error) {
				return "X-PAYMENT", strings.Repeat("a", maxHeaderValue+1), nil
			},
			"sign panics": func(Reservation) (string, string, error) { panic("signer bug") },
			"other terms": func(res Reservation) (string, string, error) {
				return "X-PAYMENT", "x", res.Claim(r.Payer, r.PayTo, big.NewInt(999), [32]byte{1})
			},
		} {
			r := withPayload(rec("api.example", 1), key1, "")
			if _, err := l.RecordSent(ctx, r, nil, sign); err == nil {
				t.Errorf("%s: recorded", name)
			} else if name == "sign fails" && err != boom {
				t.Errorf("%s: error %v, want sign's own", name, err)
			}
		}
		if spent, n := recount(t, l, ""); spent != 10 || n != 1 {
			t.Errorf("after refusals: %d nano-USD in %d records, want only the first", spent, n)
		}
		if _, _, ok, _ := l.InFlight(ctx, key1); ok {
			t.Error("a refused payment left a payload")
		}
		if _, err := l.RecordSent(ctx, rec("api.example", 1), nil, claimSign(t, r, &calls)); !errors.Is(err, ErrInvalid) {
			t.Errorf("without a payload: %v", err)
		}
	})
}

// TestSettleLater: a deferred settlement is seen by this ledger's next
// read, and Close commits it before returning: nothing is lost on a clean
// shutdown.
func TestSettleLater(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		path := bk.place(t)
		l, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		var ids []int64
		for i := 0; i < 20; i++ {
			var calls int
			key := fmt.Sprintf("%064x", i+1)
			r := withPayload(rec("api.example", 10), key, "")
			out, err := l.RecordSent(ctx, r, nil, claimSign(t, r, &calls))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, out.ID)
		}
		reports := make(chan error, len(ids))
		for _, id := range ids[:10] {
			l.SettleLater(id, "0x01", []byte(`{"success":true}`), true, func(err error) { reports <- err })
		}
		// Read at once: the read waits for the writes queued before it.
		got, err := l.Get(ctx, ids[0])
		if err != nil || got.State != Settled || got.Transaction != "0x01" {
			t.Fatalf("read after SettleLater: %+v %v", got, err)
		}
		if _, _, ok, err := l.InFlight(ctx, fmt.Sprintf("%064x", 1)); ok || err != nil {
			t.Fatalf("a delivered payment is still in flight (%v)", err)
		}
		for _, id := range ids[10:] {
			l.MarkDeliveredLater(id, func(err error) { reports <- err })
			l.SettleLater(id, "0x02", nil, false, func(err error) { reports <- err })
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		for range 30 {
			if err := <-reports; err != nil {
				t.Errorf("deferred write: %v", err)
			}
		}
		l.SettleLater(ids[0], "0x01", nil, false, func(err error) { reports <- err })
		if err := <-reports; !errors.Is(err, ErrClosed) {
			t.Errorf("after Close: %v", err)
		}

		l, err = Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		for _, id := range ids {
			if r, err := l.Get(ctx, id); err != nil || r.State != Settled {
				t.Errorf("record %d after reopening: %s %v", id, r.State, err)
			}
		}
		if _, _, ok, _ := l.InFlight(ctx, fmt.Sprintf("%064x", 15)); ok {
			t.Error("a delivery recorded before Close was lost")
		}
	})
}

// TestSentWithoutAnswer: a record left sent by a process that died (no
// settlement, no unknown) stays counted, and Reconcile makes it unknown
// once its lease expires, never failed.
func TestSentWithoutAnswer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		c := newClock()
		l := bk.openNew(t, Options{Now: c.Now, Lease: time.Minute})
		ctx := context.Background()
		var calls int
		r := withPayload(rec("api.example", 10), key1, "")
		out, err := l.RecordSent(ctx, r, nil, claimSign(t, r, &calls))
		if err != nil {
			t.Fatal(err)
		}
		c.Advance(2 * time.Minute)
		if _, err := l.Reconcile(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if s := stateOf(t, l, out.ID); s != Unknown {
			t.Fatalf("after the lease: %s, want unknown", s)
		}
		if spent, n := recount(t, l, ""); spent != 10 || n != 1 {
			t.Errorf("counted %d in %d records, want 10 in 1", spent, n)
		}
	})
}
