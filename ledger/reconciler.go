package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Bounds of ReconcileEvery's interval: often enough to free a budget soon
// after a payment is proven unusable, rarely enough that records waiting
// for their validBefore do not hammer an RPC endpoint (every run asks the
// chain about each of them).
const (
	MinReconcileInterval = 1 * time.Second
	MaxReconcileInterval = 1 * time.Hour
)

// ErrReconciling: ReconcileEvery is already running on this Ledger.
var ErrReconciling = errors.New("ledger: a reconciler is already running on this ledger")

// ReconcileEvery runs Reconcile every interval, and soon after a payment of
// this Ledger becomes Unknown (MarkUnknown), until ctx is done; then it
// returns ctx's error. report, if not nil, is called after every run, on
// ReconcileEvery's goroutine. It does not run at once: open the ledger with
// a Reconcile of its own, then start this.
//
// One loop per Ledger (a second call returns ErrReconciling), so a process
// that opens the ledger once runs one reconciler. Reconcilers in other
// processes sharing the file are safe alongside it (see Reconcile). It
// stops with ErrClosed if the Ledger is closed under it.
func (l *Ledger) ReconcileEvery(ctx context.Context, chain Chain, interval time.Duration, report func(ReconcileReport, error)) error {
	if interval < MinReconcileInterval || interval > MaxReconcileInterval {
		return invalid("reconcile interval %v must be from %v to %v", interval, MinReconcileInterval, MaxReconcileInterval)
	}
	if !l.reconciling.CompareAndSwap(false, true) {
		return ErrReconciling
	}
	defer l.reconciling.Store(false)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		case <-l.nudges:
		}
		rep, err := l.Reconcile(ctx, chain)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if report != nil {
			report(rep, err)
		}
		if l.isClosed() {
			return fmt.Errorf("ledger: reconciler stopped: %w", ErrClosed)
		}
	}
}

func (l *Ledger) isClosed() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.closed
}

// nudge wakes ReconcileEvery, if it runs, without waiting: a nudge already
// pending covers this one too.
func (l *Ledger) nudge() {
	select {
	case l.nudges <- struct{}{}:
	default:
	}
}
