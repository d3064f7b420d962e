package ledger

import (
	"context"
	"sync"
)

// Writes off the caller's path. The paying flow records a settlement (and
// the delivery that came with it) after the reply has gone back to the
// agent: the payment is already counted as Sent, so the write changes no
// budget, and a crash before it commits leaves the record Sent, which
// Reconcile resolves like any other (see "Deferred writes" in doc.go).
//
// A deferred write is queued on the writer, in order with every other
// write: a call made after it returned is committed after it. Reads of
// this Ledger (Get, Recent, Pending, InFlight, Usage, Reconcile) first wait
// for the deferred writes queued before them, so a process always reads
// its own writes. Close and Flush wait for them too: a clean shutdown
// loses none.

// laterState tracks the deferred writes: seq numbers are given in queue
// order, and done advances as the writer commits them.
type laterState struct {
	enq sync.Mutex // held while a write is numbered and queued, so numbers follow queue order

	mu       sync.Mutex
	queued   uint64
	done     uint64
	advanced chan struct{} // closed, and replaced, whenever done advances
}

// later queues fn as a write the caller does not wait for; report, when
// not nil, gets its outcome (from another goroutine). After Close, report
// gets ErrClosed at once.
func (l *Ledger) later(fn func(ctx context.Context, tx *wtx) error, report func(error)) {
	if report == nil {
		report = func(error) {}
	}
	if err := l.notReady(); err != nil {
		report(err) // nothing is lost: the record stays counted (see doc.go)
		return
	}
	op := &writeOp{ctx: context.Background(), fn: fn, done: make(chan error, 1)}
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		report(ErrClosed)
		return
	}
	l.deferred.enq.Lock()
	l.deferred.mu.Lock()
	l.deferred.queued++
	op.seq = l.deferred.queued
	l.deferred.mu.Unlock()
	l.ops <- op // the queue holds 256; beyond that the caller waits its turn
	l.deferred.enq.Unlock()
	l.mu.RUnlock()
	go func() { report(<-op.done) }()
}

// finished records that the writer is done (committed or failed) with the
// deferred writes up to seq.
func (l *Ledger) finished(seq uint64) {
	s := &l.deferred
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq <= s.done {
		return
	}
	s.done = seq
	if s.advanced != nil {
		close(s.advanced)
		s.advanced = nil
	}
}

// Flush waits until every deferred write queued before it was called has
// been committed (or has failed, which its report was told).
func (l *Ledger) Flush(ctx context.Context) error {
	s := &l.deferred
	s.mu.Lock()
	target := s.queued
	s.mu.Unlock()
	for {
		s.mu.Lock()
		if s.done >= target {
			s.mu.Unlock()
			return nil
		}
		if s.advanced == nil {
			s.advanced = make(chan struct{})
		}
		ch := s.advanced
		s.mu.Unlock()
		select {
		case <-ch:
		case <-l.stopped:
			// Closed: the writer drained its queue before stopping.
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// SettleLater is SettleDelivered (delivered true) or Settle, deferred: it
// returns at once, and report gets the outcome. Use it only for a record
// already Sent or Unknown, which counts as spent whatever happens to this
// write.
func (l *Ledger) SettleLater(id int64, tx string, settlement []byte, delivered bool, report func(error)) {
	fn, err := l.settleOp(id, tx, settlement, delivered)
	if err != nil {
		if report != nil {
			report(err)
		}
		return
	}
	l.later(fn, report)
}

// MarkDeliveredLater is MarkDelivered, deferred like SettleLater.
func (l *Ledger) MarkDeliveredLater(id int64, report func(error)) {
	l.later(func(ctx context.Context, tx *wtx) error {
		_, err := tx.ExecContext(ctx, qDelivered, id)
		return err
	}, report)
}

// caughtUp is the wait before a read: the deferred writes this process
// queued before it are committed. It costs two uncontended lock operations
// when none is waiting. A cancelled ctx ends the wait; the read then fails
// on the same ctx.
func (l *Ledger) caughtUp(ctx context.Context) {
	_ = l.Flush(ctx)
}
