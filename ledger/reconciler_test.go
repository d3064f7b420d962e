package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// fakeNet is a Chain whose answers a test sets per nonce. A fake is right
// here: a real chain cannot be made to lack finality, lose its RPC
// endpoint or hold two views at once on demand.
type fakeNet struct {
	mu         sync.Mutex
	noRPC      bool
	used       map[[32]byte]bool  // nonce → used at the newest block
	final      map[[32]byte]int64 // nonce → time of a finalized block where it is unused; absent: no finality (an error)
	receipts   map[string]bool    // tx → its receipt shows the authorization used
	receiptErr error
	fails      map[[32]byte]error // nonce → authorizationState fails
	calls      map[string]int     // method → calls
	// before, if set, runs in AuthorizationState before it answers.
	before func(nonce [32]byte)
}

func newFakeNet() *fakeNet {
	return &fakeNet{used: map[[32]byte]bool{}, final: map[[32]byte]int64{}, receipts: map[string]bool{},
		fails: map[[32]byte]error{}, calls: map[string]int{}}
}

func (f *fakeNet) count(method string) {
	f.mu.Lock()
	f.calls[method]++
	f.mu.Unlock()
}

func (f *fakeNet) AuthorizationState(_ context.Context, _ string, _, _ common.Address, nonce [32]byte) (bool, bool, error) {
	f.count("state")
	if f.before != nil {
		f.before(nonce)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.noRPC {
		return false, false, nil
	}
	if err := f.fails[nonce]; err != nil {
		return false, false, err
	}
	return f.used[nonce], true, nil
}

func (f *fakeNet) FinalizedAuthorizationState(_ context.Context, _ string, _, _ common.Address, nonce [32]byte) (bool, int64, bool, error) {
	f.count("final")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.noRPC {
		return false, 0, false, nil
	}
	at, ok := f.final[nonce]
	if !ok {
		return false, 0, true, errors.New("finalized block not found")
	}
	return false, at, true, nil
}

func (f *fakeNet) TransactionUsedAuthorization(_ context.Context, _, tx string, _, _ common.Address, _ [32]byte) (bool, bool, error) {
	f.count("receipt")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.noRPC {
		return false, false, nil
	}
	if f.receiptErr != nil {
		return false, false, f.receiptErr
	}
	return f.receipts[tx], true, nil
}

const testTx = "0x" + "ab12000000000000000000000000000000000000000000000000000000000000"

// unknownRecord reserves a record valid for 10 s and leaves it Unknown the
// way the paying flow does when a server answers 500 to the paid request.
func unknownRecord(t *testing.T, l *Ledger, clk *clock, tx string) Record {
	t.Helper()
	ctx := context.Background()
	r := rec("r.example", 1_000_000)
	r.ValidBefore = clk.Now().Add(10 * time.Second).Unix()
	r = mustReserve(t, l, r)
	if err := l.MarkSent(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if err := l.MarkUnknown(ctx, r.ID, tx, "the server answered 500 to the paid request"); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestReconcileRules runs each rule for an Unknown record at the moment it
// starts to hold, or just before, with the settable clock: what settles
// it, what releases it (and frees the budget), and what leaves it counted.
func TestReconcileRules(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		nrpc, expiry := NoRPCMargin, ExpiryMargin
		cases := []struct {
			name    string
			tx      string
			setup   func(f *fakeNet, nonce [32]byte)
			nilNet  bool
			at      time.Duration // after validBefore (negative: before)
			want    State
			note    string // in the note of a resolved record
			errs    int    // check errors reported
			noFinal bool   // finality must not be asked
		}{
			{name: "receipt shows it used", tx: testTx, at: -5 * time.Second, want: Settled, note: "receipt shows the authorization used",
				setup: func(f *fakeNet, _ [32]byte) { f.receipts[testTx] = true }},
			{name: "receipt says nothing, authorizationState used", tx: testTx, at: -5 * time.Second, want: Settled, note: "settled per authorizationState",
				setup: func(f *fakeNet, n [32]byte) { f.used[n] = true }},
			{name: "receipt lookup fails: authorizationState answers", tx: testTx, at: -5 * time.Second, want: Settled, note: "settled per authorizationState",
				setup: func(f *fakeNet, n [32]byte) { f.receiptErr = errors.New("rpc down"); f.used[n] = true }},
			{name: "unused before validBefore", at: -1 * time.Second, want: Unknown, noFinal: true,
				setup: func(f *fakeNet, n [32]byte) { f.final[n] = 1 << 40 }}, // a chain far ahead is not asked yet
			{name: "unused at a finalized block at validBefore", at: 0, want: Failed, note: "finalized block at or past validBefore",
				setup: func(f *fakeNet, n [32]byte) { f.final[n] = -1 }}, // -1: set to validBefore below
			{name: "unused at a finalized block before validBefore", at: 30 * time.Second, want: Unknown,
				setup: func(f *fakeNet, n [32]byte) { f.final[n] = -2 }}, // -2: validBefore - 1
			{name: "no finality, clock margin not yet passed", at: expiry - time.Second, want: Unknown},
			{name: "no finality, clock margin passed", at: expiry, want: Failed, note: "unused per authorizationState and expired"},
			{name: "used long after validBefore", at: 2 * nrpc, want: Settled, note: "settled per authorizationState",
				setup: func(f *fakeNet, n [32]byte) { f.used[n] = true }},
			{name: "no RPC, margin not yet passed", at: nrpc - time.Second, want: Unknown,
				setup: func(f *fakeNet, _ [32]byte) { f.noRPC = true }},
			{name: "no RPC, margin passed", at: nrpc, want: Failed, note: "released unchecked: no RPC endpoint for eip155:8453",
				setup: func(f *fakeNet, _ [32]byte) { f.noRPC = true }},
			{name: "RPC fails: never released by time", at: 2 * nrpc, want: Unknown, errs: 1,
				setup: func(f *fakeNet, n [32]byte) { f.fails[n] = errors.New("connection refused") }},
			{name: "no chain at all", nilNet: true, at: 2 * nrpc, want: Unknown},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ctx := context.Background()
				clk := newClock()
				l := bk.openNew(t, Options{Now: clk.Now, Lease: time.Minute})
				r := unknownRecord(t, l, clk, tc.tx)
				net := newFakeNet()
				if tc.setup != nil {
					tc.setup(net, r.Nonce)
				}
				switch net.final[r.Nonce] {
				case -1:
					net.final[r.Nonce] = r.ValidBefore
				case -2:
					net.final[r.Nonce] = r.ValidBefore - 1
				}
				clk.Advance(time.Unix(r.ValidBefore, 0).Add(tc.at).Sub(clk.Now()))
				var chain Chain = net
				if tc.nilNet {
					chain = nil
				}
				before := usage(t, l, Limit{}).SpentUSDNano

				rep, err := l.Reconcile(ctx, chain)
				if err != nil {
					t.Fatal(err)
				}
				got, err := l.Get(ctx, r.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.State != tc.want {
					t.Fatalf("state %s, want %s (note %q)", got.State, tc.want, got.Note)
				}
				if len(rep.CheckErrors) != tc.errs {
					t.Errorf("check errors %v, want %d", rep.CheckErrors, tc.errs)
				}
				if tc.noFinal && net.calls["final"] != 0 {
					t.Error("finality asked before validBefore")
				}
				if tc.tx == "" && net.calls["receipt"] != 0 {
					t.Error("a receipt looked up for a record without a transaction")
				}
				after := usage(t, l, Limit{}).SpentUSDNano
				if tc.want == Unknown {
					if len(rep.Changes) != 0 || rep.Unknown != 1 || after != before {
						t.Errorf("left unknown, but report %+v, spent %d → %d", rep, before, after)
					}
					return
				}
				unchecked := tc.want == Failed && net.noRPC
				if len(rep.Changes) != 1 || rep.Changes[0] != (Change{ID: r.ID, From: Unknown, To: tc.want, Note: got.Note, Unchecked: unchecked}) {
					t.Errorf("report %+v", rep)
				}
				if !strings.Contains(got.Note, tc.note) || !strings.Contains(got.Note, "was unknown: the server answered 500") {
					t.Errorf("note %q: want %q and the earlier reason", got.Note, tc.note)
				}
				if tc.want == Settled {
					if after != before {
						t.Errorf("settling changed the spent total %d → %d", before, after)
					}
					return
				}
				// Released: the budget it held is usable again.
				if after != before-r.USDNano {
					t.Errorf("spent %d → %d, want %d freed", before, after, r.USDNano)
				}
				if _, err := l.Reserve(ctx, rec("r.example", r.USDNano), []Limit{{Name: "budget", MaxUSDNano: r.USDNano}}); err != nil {
					t.Errorf("the freed budget cannot pay again: %v", err)
				}
			})
		}
	})
}

// TestMarkUnknownKeepsTransactionAndEndsLease: the hash a failed settlement
// named is kept for the receipt lookup, and a live owner's unknown record
// is resolved without waiting for its lease.
func TestMarkUnknownKeepsTransactionAndEndsLease(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		ctx := context.Background()
		clk := newClock()
		l := bk.openNew(t, Options{Now: clk.Now, Lease: time.Hour})
		r := mustReserve(t, l, rec("r.example", 100))
		if err := l.MarkSent(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if err := l.MarkUnknown(ctx, r.ID, "0x01\n", "x"); !errors.Is(err, ErrInvalid) {
			t.Fatalf("a transaction id with a newline: %v", err)
		}
		if err := l.MarkUnknown(ctx, r.ID, testTx, "settlement failed:\n\x1b[31mforged line\u202e"); err != nil {
			t.Fatal(err)
		}
		got, _ := l.Get(ctx, r.ID)
		if got.Transaction != testTx || !got.LeaseUntil.Equal(clk.Now()) {
			t.Fatalf("tx %q lease %v; want %s and now", got.Transaction, got.LeaseUntil, testTx)
		}
		if got.Note != "settlement failed:  [31mforged line" {
			t.Errorf("note %q: want one line without control or invisible characters", got.Note)
		}
		if until, ok := got.ValidUntil(); !ok || until.Unix() != r.ValidBefore {
			t.Errorf("ValidUntil of an unknown record: %v %v", until, ok)
		}
		net := newFakeNet()
		net.receipts[testTx] = true
		if _, err := l.Reconcile(ctx, net); err != nil {
			t.Fatal(err)
		}
		got, _ = l.Get(ctx, r.ID)
		if got.State != Settled || got.Transaction != testTx {
			t.Fatalf("after reconcile: %s tx %q", got.State, got.Transaction)
		}
		if _, ok := got.ValidUntil(); ok {
			t.Error("a settled record has a ValidUntil")
		}
	})
}

// rendezvous makes the first two askers about each nonce wait for each
// other, so two reconcilers hold the same record, both judging it from a
// read taken before either changed it. met counts the nonces where that
// happened. A lone asker goes on after a while: the other may have found
// nothing to ask.
type rendezvous struct {
	mu    sync.Mutex
	first map[[32]byte]chan struct{}
	met   int
}

func (r *rendezvous) wait(nonce [32]byte) {
	r.mu.Lock()
	if ch, ok := r.first[nonce]; ok {
		delete(r.first, nonce)
		r.met++
		r.mu.Unlock()
		close(ch)
		return
	}
	ch := make(chan struct{})
	r.first[nonce] = ch
	r.mu.Unlock()
	select {
	case <-ch:
	case <-time.After(2 * time.Second):
		r.mu.Lock()
		if r.first[nonce] == ch {
			delete(r.first, nonce)
		}
		r.mu.Unlock()
	}
}

// TestConcurrentReconcilersApplyEachChangeOnce runs two reconcilers (two
// Ledger instances, as two processes would have, on one file) at once
// over records of every kind, each asking the chain about the same record
// at the same moment. Every transition is applied and reported exactly
// once, none goes backwards, and the totals equal a recount.
func TestConcurrentReconcilersApplyEachChangeOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		ctx := context.Background()
		clk := newClock()
		path := bk.place(t)
		open := func() *Ledger {
			l, err := Open(path, Options{Now: clk.Now, Lease: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return l
		}
		a, b := open(), open()

		net := newFakeNet()
		type kind struct {
			start State
			used  bool
			path  []State // the transitions it must go through, in order
		}
		kinds := []kind{
			{Reserved, false, []State{Reserved, Failed}},
			{Sent, true, []State{Sent, Unknown, Settled}},
			{Sent, false, []State{Sent, Unknown, Failed}},
			{Unknown, true, []State{Unknown, Settled}},
			{Unknown, false, []State{Unknown, Failed}},
		}
		want := map[int64]kind{}
		for i := range 40 {
			k := kinds[i%len(kinds)]
			r := rec(fmt.Sprintf("h%d.example", i%3), 1_000+int64(i))
			r.ValidBefore = clk.Now().Add(30 * time.Second).Unix()
			r = mustReserve(t, a, r)
			if k.start != Reserved {
				if err := a.MarkSent(ctx, r.ID); err != nil {
					t.Fatal(err)
				}
			}
			if k.start == Unknown {
				if err := a.MarkUnknown(ctx, r.ID, "", "timeout"); err != nil {
					t.Fatal(err)
				}
			}
			net.used[r.Nonce] = k.used
			want[r.ID] = k
		}
		// Every lease and every validBefore (by the clock margin) is past.
		clk.Advance(30*time.Second + ExpiryMargin)
		rv := &rendezvous{first: map[[32]byte]chan struct{}{}}
		net.before = rv.wait

		var reports [2][2]ReconcileReport // [round][reconciler]
		for round := range 2 {
			var wg sync.WaitGroup
			for i, l := range []*Ledger{a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rep, err := l.Reconcile(ctx, net)
					if err != nil {
						t.Error(err)
					}
					reports[round][i] = rep
				}()
			}
			wg.Wait()
		}
		if rv.met == 0 {
			t.Fatal("the two reconcilers never asked about one record at the same time; the test proved nothing")
		}
		applied := map[int64][]Change{}
		for round, reps := range reports {
			for _, rep := range reps {
				if len(rep.CheckErrors) > 0 {
					t.Errorf("check errors: %v", rep.CheckErrors)
				}
				for _, c := range rep.Changes {
					if round == 1 {
						t.Errorf("second round changed record %d %s → %s: not idempotent", c.ID, c.From, c.To)
					}
					applied[c.ID] = append(applied[c.ID], c)
				}
			}
		}
		var settled int64
		for id, k := range want {
			got := applied[id]
			if len(got) != len(k.path)-1 {
				t.Errorf("record %d: changes %+v, want the path %v once", id, got, k.path)
				continue
			}
			// Changes of one record come from one run or another, in order:
			// sort them along the path before comparing.
			for i := range len(k.path) - 1 {
				found := false
				for _, c := range got {
					if c.From == k.path[i] && c.To == k.path[i+1] {
						found = true
					}
				}
				if !found {
					t.Errorf("record %d: %s → %s not reported (got %+v)", id, k.path[i], k.path[i+1], got)
				}
			}
			end := k.path[len(k.path)-1]
			r, err := b.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if r.State != end {
				t.Errorf("record %d is %s, want %s", id, r.State, end)
			}
			if end == Settled {
				settled += r.USDNano
			}
		}
		for _, l := range []*Ledger{a, b} {
			spent, _ := recount(t, l, "")
			if u := usage(t, l, Limit{}).SpentUSDNano; u != spent || u != settled {
				t.Errorf("lifetime total %d, recount %d, settled records %d", u, spent, settled)
			}
		}
		t.Logf("%d records, both reconcilers held %d of them at once", len(want), rv.met)
	})
}

// TestStaleReconcilerCannotRegress: a reconciler whose chain read is older
// than another's decision finds the record already settled, and its
// "failed" does not apply.
func TestStaleReconcilerCannotRegress(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		ctx := context.Background()
		clk := newClock()
		path := bk.place(t)
		a, err := Open(path, Options{Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b, err := Open(path, Options{Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		r := unknownRecord(t, a, clk, "")
		clk.Advance(10*time.Second + ExpiryMargin)

		// b's node lags: it says unused (so: expired, failed), and answers
		// only after a has settled the record from its up-to-date node.
		lagging, current := newFakeNet(), newFakeNet()
		current.used[r.Nonce] = true
		asked, release := make(chan struct{}), make(chan struct{})
		lagging.before = func([32]byte) { close(asked); <-release }
		done := make(chan ReconcileReport)
		go func() {
			rep, err := b.Reconcile(ctx, lagging)
			if err != nil {
				t.Error(err)
			}
			done <- rep
		}()
		<-asked
		if rep, err := a.Reconcile(ctx, current); err != nil || len(rep.Changes) != 1 || rep.Changes[0].To != Settled {
			t.Fatalf("up-to-date reconciler: %+v, %v", rep, err)
		}
		close(release)
		if rep := <-done; len(rep.Changes) != 0 {
			t.Errorf("the stale reconciler reported %+v", rep.Changes)
		}
		if s := stateOf(t, a, r.ID); s != Settled {
			t.Errorf("record %s after a stale reconciler, want settled", s)
		}
	})
}

// TestReconcileEvery: the loop runs when a payment of its ledger ends
// unknown, runs alone on a ledger, and stops with its context.
func TestReconcileEvery(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		clk := newClock()
		l := bk.openNew(t, Options{Now: clk.Now, Lease: time.Hour})
		net := newFakeNet()
		for _, bad := range []time.Duration{0, MinReconcileInterval - 1, MaxReconcileInterval + 1} {
			if err := l.ReconcileEvery(ctx, net, bad, nil); !errors.Is(err, ErrInvalid) {
				t.Errorf("interval %v: %v", bad, err)
			}
		}

		reports := make(chan ReconcileReport, 8)
		stopped := make(chan error, 1)
		go func() {
			// The longest interval: only the nudge can make it run in time.
			stopped <- l.ReconcileEvery(ctx, net, MaxReconcileInterval, func(rep ReconcileReport, err error) {
				if err != nil {
					t.Error(err)
				}
				reports <- rep
			})
		}()
		r := mustReserve(t, l, rec("r.example", 100))
		net.mu.Lock()
		net.used[r.Nonce] = true
		net.mu.Unlock()
		if err := l.MarkSent(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if err := l.MarkUnknown(ctx, r.ID, "", "timeout"); err != nil {
			t.Fatal(err)
		}
		var rep ReconcileReport
		select {
		case rep = <-reports:
		case <-time.After(time.Minute):
			t.Fatal("no reconcile run after a payment ended unknown")
		}
		if len(rep.Changes) != 1 || rep.Changes[0].ID != r.ID || rep.Changes[0].To != Settled {
			t.Fatalf("run after the nudge: %+v", rep)
		}
		if err := l.ReconcileEvery(ctx, net, time.Minute, nil); !errors.Is(err, ErrReconciling) {
			t.Errorf("a second loop on one ledger: %v", err)
		}
		cancel()
		if err := <-stopped; !errors.Is(err, context.Canceled) {
			t.Errorf("stopped with %v, want context.Canceled", err)
		}
		// Stopped means free to start again.
		if err := l.ReconcileEvery(ctx, net, time.Minute, nil); !errors.Is(err, context.Canceled) {
			t.Errorf("restart after stop: %v", err)
		}
	})
}
