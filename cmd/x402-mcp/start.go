package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/x402-mcp/x402-mcp/config"
	"github.com/x402-mcp/x402-mcp/internal/redact"
	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/signer"
	"github.com/x402-mcp/x402-mcp/tools"
	"github.com/x402-mcp/x402-mcp/upstream"
	"github.com/x402-mcp/x402-mcp/wallet"
)

// starting is the part of serve's start that takes time: unlocking the key
// (a keystore's scrypt takes about a second and 256 MiB), opening the
// ledger with its integrity checks (a recount of every record) and
// settling what earlier processes left pending, and loading the catalog
// files. It runs on its own goroutine while the MCP loop already answers
// initialize and tools/list; a call that needs what it builds waits for it
// (tools.NewStartingServer), with the call's own context.
//
// A failure fails closed: it is written to stderr at once, in the words
// the server would have exited with, and every tool call and resource read
// answers with it, so nothing is signed or paid. The server keeps running
// rather than exit: by the time the failure is known the host has its
// initialize reply, and an MCP host shows a server that then exits only as
// "failed" or "disconnected", with the reason in a log file few users
// open, while a server that answers every call with the reason and its
// hint puts that text in front of the user through the agent. When the
// session ends, serve exits with status 1, so a script or supervisor sees
// the failure too.
type starting struct {
	done   chan struct{}
	cancel context.CancelFunc
	// Set before done is closed.
	deps tools.Deps
	err  error
	// What stop closes, when the start got that far.
	led            *ledger.Ledger
	stopReconciler func()
}

// startDelay is how long the start-up work waits for begin before it
// begins anyway.
const startDelay = 100 * time.Millisecond

// start begins the start-up work once begin is closed (or startDelay has
// passed, or ctx is done); stop must be called when serve ends. Over stdio,
// begin is the initialize reply having been written: the work is CPU-heavy
// (scrypt, SQLite), and on a busy machine a goroutine that shares the
// process's threads with it waits for its turn, so before the reply it
// would only delay the reply. A host's first tool call comes later.
func start(ctx context.Context, begin <-chan struct{}, cfg *config.Config, w *wallet.Reader, ups []*upstream.Server, logger *slog.Logger, stderr io.Writer) *starting {
	ctx, cancel := context.WithCancel(ctx)
	s := &starting{done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(s.done)
		t := time.NewTimer(startDelay)
		select {
		case <-begin:
		case <-t.C:
		case <-ctx.Done():
			// The work still runs: what can be checked is reported, and
			// stop waits for it.
		}
		t.Stop()
		s.err = s.run(ctx, cfg, w, ups, logger)
		if s.err != nil && !stoppedOnly(s.err) {
			fmt.Fprintf(stderr, "x402-mcp: %s\n\tevery tool call answers with this error until the server is restarted; nothing is paid\n", redact.Scrub(s.err.Error()))
		}
	}()
	return s
}

func (s *starting) run(ctx context.Context, cfg *config.Config, w *wallet.Reader, ups []*upstream.Server, logger *slog.Logger) error {
	t0 := time.Now()
	// The key and the ledger are independent, and each can take a while
	// (scrypt; a recount of a large ledger): they are prepared side by
	// side. Both are checked before anything is used, and both errors are
	// reported if both fail.
	var key *signer.Key
	var keyErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.Now()
		key, keyErr = loadKey(cfg.Wallet, func(msg string) { logger.Warn(msg) })
		if keyErr != nil || key == nil {
			return
		}
		if cfg.Wallet.Keystore != "" {
			// scrypt's 256 MiB are garbage now; without this the runtime
			// keeps them mapped for minutes, and the idle server's resident
			// memory stays ten times its working size.
			debug.FreeOSMemory()
			logger.Info("keystore unlocked", "payer", key.Address().Hex(), "unlock", time.Since(t).Round(time.Millisecond))
		}
	})
	led, ledErr := openLedger(ctx, cfg, w, logger)
	wg.Wait()
	if err := errors.Join(ledErr, keyErr); err != nil {
		if !stoppedOnly(err) {
			// A check interrupted by the end of the session is not part of
			// what went wrong.
			err = errors.Join(unlessStopped(ledErr), unlessStopped(keyErr))
		}
		if led != nil {
			led.Close()
		}
		return err
	}
	s.led = led
	s.stopReconciler = startReconciler(ctx, led, w, cfg.ReconcileInterval, logger)
	client, err := newClient(cfg, led, w, key, logger)
	if err != nil {
		return err
	}
	cat, err := newCatalog(cfg)
	if err != nil {
		return err
	}
	s.deps = tools.Deps{Pay: client, Catalog: cat, Wallet: w, CLI: cliFor(cfg), Upstreams: ups}
	logger.Info("x402-mcp ready", "payer", payerString(client), "start", time.Since(t0).Round(time.Millisecond))
	return nil
}

// wait is the tools' tools.Start.
func (s *starting) wait(ctx context.Context) (tools.Deps, error) {
	select {
	case <-s.done:
		if s.err != nil {
			return tools.Deps{}, scrubbed{s.err}
		}
		return s.deps, nil
	case <-ctx.Done():
		return tools.Deps{}, ctx.Err()
	}
}

// stop cancels what is still starting (an unlock or a ledger check in
// progress is waited for: neither takes more than seconds), stops the
// reconciler and closes the ledger. It returns an error when the start
// failed, for serve's exit status.
func (s *starting) stop() error {
	s.cancel()
	<-s.done
	if s.stopReconciler != nil {
		s.stopReconciler()
	}
	if s.led != nil {
		s.led.Close()
	}
	if s.err != nil && !stoppedOnly(s.err) {
		return errors.New("exiting: the server could not start (the error above); nothing was paid")
	}
	return nil
}

// stoppedOnly reports whether err says only that the start was stopped
// before it finished (the session ended, or a signal), which is not a
// failure to report.
func stoppedOnly(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if !stoppedOnly(e) {
				return false
			}
		}
		return true
	}
	return errors.Is(err, context.Canceled)
}

func unlessStopped(err error) error {
	if err != nil && stoppedOnly(err) {
		return nil
	}
	return err
}

// scrubbed is a start-up error as the agent reads it. The errors name files
// and commands, never a key (see package signer); Scrub is the net under
// them, as for the operator's messages on stderr.
type scrubbed struct{ err error }

func (e scrubbed) Error() string { return redact.Scrub(e.err.Error()) }
func (e scrubbed) Unwrap() error { return e.err }
