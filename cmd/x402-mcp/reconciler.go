package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/wallet"
)

// The wallet reads what the ledger's reconciler asks the chain.
var _ ledger.Chain = (*wallet.Reader)(nil)

// startReconciler runs the ledger's reconciler while the server serves,
// whichever the transport: one goroutine per process, every interval and
// as soon as one of its payments ends unknown. A payment whose outcome was
// unknown is settled or released once the chain proves which (or, with no
// RPC endpoint for its network, once ledger.NoRPCMargin has passed), so
// its budget is usable again without a restart. Other servers sharing the
// ledger run theirs; ledger.Reconcile applies each change once.
//
// It returns the function that stops it and waits until it has.
func startReconciler(ctx context.Context, led *ledger.Ledger, w *wallet.Reader, interval time.Duration, logger *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	// A check that keeps failing is logged when its message changes, not
	// on every run.
	failing := map[string]bool{}
	report := func(rep ledger.ReconcileReport, err error) {
		if err != nil {
			logger.Error("ledger: reconciling failed; the next run retries", "err", err)
			return
		}
		logChanges(logger, slog.LevelInfo, rep.Changes, "a pending payment was resolved")
		now := map[string]bool{}
		for _, e := range rep.CheckErrors {
			now[e.Error()] = true
			if !failing[e.Error()] {
				logger.Warn("ledger: cannot check a pending payment on chain; it stays counted", "err", e)
			}
		}
		failing = now
	}
	go func() {
		defer close(done)
		err := led.ReconcileEvery(ctx, chainOf(w), interval, report)
		if err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("ledger: the reconciler stopped; pending payments are resolved at the next start", "err", err)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// chainOf is what the ledger asks the chain through: the wallet's RPC
// endpoints, or nothing.
func chainOf(w *wallet.Reader) ledger.Chain {
	if w == nil {
		return nil
	}
	return w
}

// logChanges logs what Reconcile changed at level. A release the chain did
// not prove (no RPC endpoint) is a warning: that payment may have been
// made.
func logChanges(logger *slog.Logger, level slog.Level, changes []ledger.Change, msg string) {
	for _, ch := range changes {
		level, text := level, "ledger: "+msg
		if ch.Unchecked {
			level = slog.LevelWarn
			text += " without checking the chain (no RPC endpoint): if it was settled before it expired, the budgets under-count it"
		}
		logger.Log(context.Background(), level, text, "ledger_id", ch.ID, "from", ch.From, "to", ch.To)
	}
}
