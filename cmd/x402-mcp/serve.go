package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/x402-mcp/x402-mcp/config"
	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/pay"
	"github.com/x402-mcp/x402-mcp/signer"
	"github.com/x402-mcp/x402-mcp/tools"
)

func serve(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (TOML)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: errors.New("unexpected argument (not shown)\n\thint: a key is never passed on the command line; name a key file in the config")}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("bad --log-level %q: use debug, info, warn or error", *logLevel)}
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	led, err := openLedger(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer led.Close()
	client, err := newClient(cfg, led, logger, stderr)
	if err != nil {
		return err
	}
	s, err := tools.NewServer(client, version)
	if err != nil {
		return err
	}
	logger.Info("x402-mcp serving on stdio", "version", version, "payer", payerString(client))
	stdio := server.NewStdioServer(s)
	stdio.SetErrorLogger(log.New(stderr, "x402-mcp: ", 0))
	if err := stdio.Listen(ctx, stdin, stdout); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Default(), nil
	}
	return config.Load(path)
}

// openLedger opens the payment ledger and settles what earlier processes
// left pending.
func openLedger(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*ledger.Ledger, error) {
	path := cfg.LedgerPath
	if path == "" {
		var err error
		if path, err = ledger.DefaultPath(); err != nil {
			return nil, fmt.Errorf("finding the ledger location: %w\n\thint: set ledger = \"/path/to/ledger.db\" in the config", err)
		}
	}
	led, err := ledger.Open(path, ledger.Options{Lease: ledgerLease(cfg)})
	if err != nil {
		return nil, err
	}
	report, err := led.Reconcile(ctx, nil)
	if err != nil {
		led.Close()
		return nil, fmt.Errorf("reconciling the ledger %s: %w", path, err)
	}
	logger.Info("ledger open", "path", path, "reconciled", len(report.Changes), "unknown", report.Unknown)
	for _, ch := range report.Changes {
		logger.Warn("ledger: a payment left pending by an earlier process was resolved", "ledger_id", ch.ID, "from", ch.From, "to", ch.To)
	}
	return led, nil
}

// ledgerLease is how long a reservation may stay in flight: longer than
// any call can take, so no process settles another's live payment.
func ledgerLease(cfg *config.Config) time.Duration {
	t := cfg.Timeout
	if t <= 0 {
		t = pay.DefaultTimeout
	}
	return 2*t + time.Minute
}

// newClient builds the paying client from the configuration and the key.
func newClient(cfg *config.Config, led *ledger.Ledger, logger *slog.Logger, stderr io.Writer) (*pay.Client, error) {
	key, err := loadKey(cfg.Wallet, stderr)
	if err != nil {
		return nil, err
	}
	var s pay.Signer
	if key != nil {
		s = signer.New(key)
	} else {
		logger.Warn("no wallet key configured: quotes and free resources work, payments are refused")
	}
	return pay.New(pay.Config{
		Registry:         cfg.Registry,
		Policy:           cfg.Policy,
		Signer:           s,
		Ledger:           led,
		MaxResponseBytes: cfg.MaxBody,
		Timeout:          cfg.Timeout,
		Logger:           logger,
		UserAgent:        "x402-mcp/" + version,
	})
}

func loadKey(w config.Wallet, stderr io.Writer) (*signer.Key, error) {
	switch {
	case w.Keystore != "":
		return signer.LoadKeystore(w.Keystore, w.PassphraseFile)
	case w.KeyFile != "":
		return signer.LoadHexFile(w.KeyFile)
	}
	k, ok, err := signer.FromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	if ok {
		fmt.Fprintln(stderr, signer.EnvWarning)
		return k, nil
	}
	return nil, nil
}

func payerString(c *pay.Client) string {
	if p := c.Payer(); p != ([20]byte{}) {
		return p.Hex()
	}
	return "none"
}
