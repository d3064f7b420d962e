package ledger

import (
	"context"
	"reflect"
	"testing"
	"time"
)

// A SQLite ledger with a record in every state, payloads and approvals in
// every state is copied into a new ledger of each backend: the same
// records, approvals and sums; a second copy copies nothing.
func TestCopyTo(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		ctx := context.Background()
		clk := newClock()
		src := testBackends[0].openNew(t, Options{Now: clk.Now})

		mustReserve(t, src, rec("a.example", 100))
		failed := mustReserve(t, src, rec("a.example", 200))
		if err := src.Fail(ctx, failed.ID, "never sent"); err != nil {
			t.Fatal(err)
		}
		clk.Advance(2 * time.Hour) // other hours and minutes
		sent, err := src.RecordSent(ctx, payment("b.example", 300), nil, fakeSign)
		if err != nil {
			t.Fatal(err)
		}
		settled, err := src.RecordSent(ctx, payment("b.example", 400), nil, fakeSign)
		if err != nil {
			t.Fatal(err)
		}
		if err := src.Settle(ctx, settled.ID, "0xfeed", []byte(`{"success":true}`)); err != nil {
			t.Fatal(err)
		}
		if err := src.MarkDelivered(ctx, settled.ID); err != nil {
			t.Fatal(err)
		}
		unknown := mustReserve(t, src, rec("c.example", 500))
		if err := src.MarkSent(ctx, unknown.ID); err != nil {
			t.Fatal(err)
		}
		if err := src.MarkUnknown(ctx, unknown.ID, "0xabc", "timed out"); err != nil {
			t.Fatal(err)
		}
		r := rec("d.example", 600)
		used := mustRequest(t, src, approvalFor(r, "used"), time.Hour)
		mustDecide(t, src, used.ID, true)
		mustReserve(t, src, paying(r, used))
		denied := mustRequest(t, src, approvalFor(rec("d.example", 1), "denied"), time.Hour)
		mustDecide(t, src, denied.ID, false)
		approved := mustRequest(t, src, approvalFor(rec("d.example", 2), "approved"), time.Hour)
		mustDecide(t, src, approved.ID, true)
		mustRequest(t, src, approvalFor(rec("d.example", 3), "pending"), time.Hour)

		dst := bk.openNew(t, Options{Now: clk.Now})
		rep, err := CopyTo(ctx, src, dst)
		if err != nil {
			t.Fatal(err)
		}
		if rep != (CopyReport{Records: 6, Approvals: 4}) {
			t.Fatalf("first copy: %+v", rep)
		}
		rep, err = CopyTo(ctx, src, dst)
		if err != nil || rep != (CopyReport{SkippedRecords: 6, SkippedApprovals: 4}) {
			t.Fatalf("second copy: %+v, %v", rep, err)
		}

		want, _ := src.Recent(ctx, 100)
		got, _ := dst.Recent(ctx, 100)
		if !reflect.DeepEqual(got, want) { // same ids too: dst was empty
			t.Fatalf("records differ:\n got %+v\nwant %+v", got, want)
		}
		wantA, _ := src.Approvals(ctx, true, 100)
		gotA, _ := dst.Approvals(ctx, true, 100)
		if !reflect.DeepEqual(gotA, wantA) {
			t.Fatalf("approvals differ:\n got %+v\nwant %+v", gotA, wantA)
		}
		for _, lim := range []Limit{{Name: "all"}, {Name: "b", Host: "b.example"}, {Name: "hour", Window: time.Hour}, {Name: "day", Window: 24 * time.Hour}} {
			if u, w := usage(t, dst, lim), usage(t, src, lim); u != w {
				t.Errorf("%s: %+v, want %+v", lim.Name, u, w)
			}
		}
		_, wp, _, _ := src.InFlight(ctx, sent.Payload.RequestKey)
		_, gp, ok, _ := dst.InFlight(ctx, sent.Payload.RequestKey)
		if !ok || gp != wp {
			t.Fatalf("payload: %+v, want %+v", gp, wp)
		}
		if _, _, ok, _ := dst.InFlight(ctx, settled.Payload.RequestKey); ok {
			t.Fatal("the delivered payment is in flight in the copy")
		}
		if err := dst.Verify(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
