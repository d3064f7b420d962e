package ledger

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

const key1 = "1111111111111111111111111111111111111111111111111111111111111111"

func withPayload(r Record, key, id string) Record {
	r.Payload = &Payload{RequestKey: key, PaymentID: id}
	return r
}

// TestPayloadOneInFlight: a request's payment blocks another for the same
// request while it may settle, keeps the header as sent for a retry, and
// stops blocking once past its window.
func TestPayloadOneInFlight(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		c := newClock()
		l := bk.openNew(t, Options{Now: c.Now})
		ctx := context.Background()
		r := withPayload(rec("api.example", 10), key1, "pay_0123456789abcdef0123")
		r.ValidBefore = c.Now().Add(5 * time.Minute).Unix()
		first, err := l.Reserve(ctx, r, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Reserved: in flight, without a header yet.
		got, p, ok, err := l.InFlight(ctx, key1)
		if err != nil || !ok || got.ID != first.ID || got.State != Reserved || p.HeaderValue != "" || p.PaymentID != "pay_0123456789abcdef0123" {
			t.Fatalf("InFlight after Reserve: %+v %+v %v %v", got, p, ok, err)
		}
		second := withPayload(rec("api.example", 10), key1, "")
		second.ValidBefore = r.ValidBefore
		var inFlight *InFlightError
		if _, err := l.Reserve(ctx, second, nil); !errors.As(err, &inFlight) || inFlight.Record.ID != first.ID {
			t.Fatalf("a second payment for the same request: %v", err)
		}
		if err := l.MarkSentPayload(ctx, first.ID, "PAYMENT-SIGNATURE", "eyJ4NDAyVmVyc2lvbiI6Mn0="); err != nil {
			t.Fatal(err)
		}
		if err := l.MarkUnknown(ctx, first.ID, "0xabc", "settlement pending"); err != nil {
			t.Fatal(err)
		}
		got, p, ok, _ = l.InFlight(ctx, key1)
		if !ok || got.State != Unknown || got.Transaction != "0xabc" || p.HeaderName != "PAYMENT-SIGNATURE" || p.HeaderValue != "eyJ4NDAyVmVyc2lvbiI6Mn0=" {
			t.Fatalf("InFlight after MarkSentPayload and MarkUnknownTx: %+v %+v", got, p)
		}
		// The header as sent is never rewritten.
		if _, err := rawExec(l, `UPDATE payloads SET header_value = 'forged' WHERE record_id = ?`, first.ID); err == nil || !strings.Contains(err.Error(), "never rewritten") {
			t.Errorf("rewriting a sent header: %v", err)
		}
		// Settled without delivering: it still stands for its request.
		if err := l.Settle(ctx, first.ID, "0xabc", nil); err != nil {
			t.Fatal(err)
		}
		if got, _, ok, _ := l.InFlight(ctx, key1); !ok || got.ID != first.ID || got.State != Settled {
			t.Fatalf("settled, not delivered: %+v %v", got, ok)
		}
		if _, err := l.Reserve(ctx, withPayload(rec("api.example", 10), key1, ""), nil); !errors.As(err, &inFlight) {
			t.Fatalf("a new payment while the settled one did not deliver: %v", err)
		}
		// Delivered: an identical request is a new purchase.
		if err := l.MarkDelivered(ctx, first.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, ok, _ := l.InFlight(ctx, key1); ok {
			t.Fatal("a delivered payment still in flight")
		}
		// Another request is not blocked.
		other := withPayload(rec("api.example", 10), strings.Repeat("2", 64), "")
		if _, err := l.Reserve(ctx, other, nil); err != nil {
			t.Errorf("another request: %v", err)
		}
		// An undelivered one past its window and the margin no longer blocks.
		key2 := strings.Repeat("3", 64)
		old := withPayload(rec("api.example", 10), key2, "")
		old.ValidBefore = c.Now().Add(time.Minute).Unix()
		mustReserve(t, l, old)
		c.Advance(time.Minute + InFlightMargin + time.Second)
		third := withPayload(rec("api.example", 10), key2, "")
		third.ValidBefore = c.Now().Add(5 * time.Minute).Unix()
		if _, err := l.Reserve(ctx, third, nil); err != nil {
			t.Errorf("after the first can no longer settle: %v", err)
		}
	})
}

func TestPayloadValidation(t *testing.T) {
	l := openTest(t, Options{})
	ctx := context.Background()
	for _, p := range []Payload{{RequestKey: "short"}, {RequestKey: strings.Repeat("AB", 32)}, {RequestKey: key1, PaymentID: "too-short"}, {RequestKey: key1, PaymentID: strings.Repeat("a", 20) + " x"}} {
		r := rec("api.example", 1)
		r.Payload = &p
		if _, err := l.Reserve(ctx, r, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("payload %+v: %v", p, err)
		}
	}
	r, err := l.Reserve(ctx, rec("api.example", 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	// A record reserved without a payload cannot store a header.
	if err := l.MarkSentPayload(ctx, r.ID, "X-PAYMENT", "abc"); err == nil {
		t.Error("a header stored for a record without a payload")
	}
	if got, err := l.Get(ctx, r.ID); err != nil || got.State != Reserved {
		t.Errorf("the refused MarkSentPayload changed the record: %+v %v", got, err)
	}
}
