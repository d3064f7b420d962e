package ledger

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// fakeChain answers authorizationState from a table keyed by nonce. A fake
// is right here: a real chain cannot be made to lose its RPC on demand.
type fakeChain struct {
	used  map[[32]byte]bool  // nonce → used
	cant  map[[32]byte]bool  // nonce → cannot tell
	fails map[[32]byte]error // nonce → RPC error
	calls int
}

func (f *fakeChain) check(_ context.Context, network string, asset, payer common.Address, nonce [32]byte) (bool, bool, error) {
	f.calls++
	if err := f.fails[nonce]; err != nil {
		return false, false, err
	}
	if f.cant[nonce] {
		return false, false, nil
	}
	return f.used[nonce], true, nil
}

func TestReconcile(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		ctx := context.Background()
		clk := newClock()
		path := bk.place(t)
		dead, err := Open(path, Options{Now: clk.Now, Lease: time.Minute})
		if err != nil {
			t.Fatal(err)
		}

		// What a process leaves behind when it dies in the middle of things.
		validBefore := clk.Now().Add(5 * time.Minute).Unix()
		mk := func(s State) Record {
			r := rec("r.example", 100)
			r.ValidBefore = validBefore
			r = mustReserve(t, dead, r)
			if s == Sent || s == Unknown || s == Settled {
				if err := dead.MarkSent(ctx, r.ID); err != nil {
					t.Fatal(err)
				}
			}
			if s == Unknown {
				if err := dead.MarkUnknown(ctx, r.ID, "", "timeout"); err != nil {
					t.Fatal(err)
				}
			}
			if s == Settled {
				if err := dead.Settle(ctx, r.ID, "0x01", nil); err != nil {
					t.Fatal(err)
				}
			}
			return r
		}
		reserved := mk(Reserved)
		sent := mk(Sent)
		settled := mk(Settled)
		unkUsed := mk(Unknown)
		unkUnused := mk(Unknown)
		unkCant := mk(Unknown)
		unkRPCErr := mk(Unknown)
		sentThenUsed := mk(Sent)
		dead.Close() // no Close in a real crash; the state on disk is the same

		chain := &fakeChain{
			used:  map[[32]byte]bool{unkUsed.Nonce: true, sentThenUsed.Nonce: true},
			cant:  map[[32]byte]bool{unkCant.Nonce: true},
			fails: map[[32]byte]error{unkRPCErr.Nonce: errors.New("rpc: connection refused")},
		}
		l, err := Open(path, Options{Now: clk.Now, Lease: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()

		check := AuthorizationChecker(chain.check)

		// Leases still running: nothing in flight may be touched. The records
		// their owner marked unknown are no longer in its hands (MarkUnknown
		// ends the lease), so the chain is asked about those at once.
		rep, err := l.Reconcile(ctx, check)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Changes) != 1 || rep.Changes[0].ID != unkUsed.ID || rep.Changes[0].To != Settled || chain.calls != 4 {
			t.Fatalf("with leases running: %+v, %d checks; want only the used unknown record settled, 4 checks", rep, chain.calls)
		}
		for id, want := range map[int64]State{reserved.ID: Reserved, sent.ID: Sent, sentThenUsed.ID: Sent} {
			if got := stateOf(t, l, id); got != want {
				t.Fatalf("record %d in flight became %s", id, got)
			}
		}
		// A live owner elsewhere: its reservation is still in its hands.
		live := mustReserve(t, l, rec("r.example", 100))

		// Leases expired, validBefore not yet passed by the margin: unused
		// authorizations are still usable, so they stay unknown.
		clk.Advance(2 * time.Minute)
		live2 := mustReserve(t, l, rec("r.example", 100)) // fresh lease
		rep, err = l.Reconcile(ctx, check)
		if err != nil {
			t.Fatal(err)
		}
		want := map[int64]State{
			reserved.ID:     Failed,
			sent.ID:         Unknown, // nobody knows yet; the checker says unused but still valid
			settled.ID:      Settled,
			unkUsed.ID:      Settled,
			unkUnused.ID:    Unknown,
			unkCant.ID:      Unknown,
			unkRPCErr.ID:    Unknown,
			sentThenUsed.ID: Settled, // sent → unknown → settled in one run
			live.ID:         Failed,  // its lease (1 min) expired too: 2 min passed
			live2.ID:        Reserved,
		}
		for id, s := range want {
			if got := stateOf(t, l, id); got != s {
				t.Errorf("record %d: %s, want %s", id, got, s)
			}
		}
		if len(rep.CheckErrors) != 1 || rep.Unknown != 4 {
			t.Errorf("report: %d check errors, %d unknown; want 1 and 4", len(rep.CheckErrors), rep.Unknown)
		}
		got, _ := l.Get(ctx, unkUsed.ID)
		if got.Transaction != "" || got.Note != "settled per authorizationState; was unknown: timeout" {
			t.Errorf("settled by reconcile: tx %q note %q", got.Transaction, got.Note)
		}
		changed := map[int64]Change{}
		for _, c := range rep.Changes {
			changed[c.ID] = c
		}
		if c := changed[sent.ID]; c.From != Sent || c.To != Unknown {
			t.Errorf("change for sent record: %+v", c)
		}
		if _, ok := changed[sentThenUsed.ID]; !ok {
			t.Error("report misses a change")
		}

		// The owner of a failed reservation can no longer mark it sent.
		if err := l.MarkSent(ctx, live.ID); !errors.Is(err, ErrBadTransition) {
			t.Fatalf("MarkSent after reconcile failed it: %v", err)
		}

		// Past validBefore + margin: unused means it can never be used.
		clk.Advance(5*time.Minute + ExpiryMargin)
		if _, err := l.Reconcile(ctx, check); err != nil {
			t.Fatal(err)
		}
		for id, s := range map[int64]State{
			sent.ID: Failed, unkUnused.ID: Failed, unkCant.ID: Unknown, unkRPCErr.ID: Unknown,
			live2.ID: Failed,
		} {
			if got := stateOf(t, l, id); got != s {
				t.Errorf("after expiry, record %d: %s, want %s", id, got, s)
			}
		}

		// Without a checker nothing unknown is resolved: never under-count.
		rep, err = l.Reconcile(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Unknown != 2 || len(rep.Changes) != 0 {
			t.Fatalf("nil checker: %+v", rep)
		}
		spent, _ := recount(t, l, "")
		if u := usage(t, l, Limit{}); u.SpentUSDNano != spent {
			t.Fatalf("totals %d, recount %d", u.SpentUSDNano, spent)
		}
	})
}
