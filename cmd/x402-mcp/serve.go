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
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/x402-mcp/x402-mcp/catalog"
	"github.com/x402-mcp/x402-mcp/config"
	"github.com/x402-mcp/x402-mcp/internal/redact"
	"github.com/x402-mcp/x402-mcp/internal/shellquote"
	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/pay"
	"github.com/x402-mcp/x402-mcp/signer"
	"github.com/x402-mcp/x402-mcp/tools"
	"github.com/x402-mcp/x402-mcp/wallet"
)

func serve(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (TOML); default $"+config.EnvConfig+", else none")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	var hopts httpOptions
	fs.StringVar(&hopts.addr, "http", "", "serve MCP over streamable HTTP on `ADDR` (e.g. 127.0.0.1:8402) instead of stdio")
	fs.StringVar(&hopts.tokenFile, "token-file", "", "`FILE` holding the bearer token HTTP clients must send (chmod 600, at least 32 characters)")
	fs.BoolVar(&hopts.allowRemote, "allow-remote", false, "allow --http on an address other than loopback (terminate TLS in front)")
	pos, err := parseFlags(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos, 0, 0, stderr); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("bad --log-level %s: use debug, info, warn or error", redact.NotShown)}
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	tuneMemory(os.Getenv)

	// The HTTP flags are checked, and the token read, before the config
	// and the key: a mistake there should not cost a keystore unlock.
	var token []byte
	if hopts.addr != "" || hopts.tokenFile != "" || hopts.allowRemote {
		var err error
		if token, err = hopts.check(); err != nil {
			return err
		}
		defer clear(token)
	}

	// Only what can refuse the command line and the config, which is
	// quick, runs before the MCP loop; the rest starts beside it (see
	// starting), so the host gets its initialize reply at once.
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	w := newWallet(cfg)
	defer w.Close()
	begin := make(chan struct{})
	out := &firstWrite{w: stdout, done: begin}
	if hopts.addr != "" {
		close(begin) // a listening daemon: nobody waits for a first reply
	}
	ups, stopUpstreams, err := startUpstreams(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer stopUpstreams()
	st := start(ctx, begin, cfg, w, ups, logger, stderr)
	s, err := tools.NewStartingServer(st.wait, buildVersion(), ups)
	if err != nil {
		st.stop()
		return err
	}
	// Both transports serve the same MCP server over the same pay client
	// and ledger, so every budget holds whichever way a call arrives.
	if hopts.addr != "" {
		err = serveHTTP(ctx, s, hopts, token, logger)
	} else {
		err = serveStdio(ctx, s, stdin, out, stderr, logger)
	}
	return errors.Join(err, st.stop())
}

// firstWrite closes done once the first write to w has returned: over
// stdio, once the reply to initialize is on its way to the host.
type firstWrite struct {
	w    io.Writer
	once sync.Once
	done chan struct{}
}

func (f *firstWrite) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	f.once.Do(func() { close(f.done) })
	return n, err
}

// stdioWorkers is how many tool calls the stdio transport runs at once
// (mcp-go's default is 5); a call that finds them all busy waits in a
// queue of stdioQueue, and beyond that blocks the reading of stdin. Calls
// are mostly waiting on the network, and the budgets hold however many
// run at once: each payment is reserved in one ledger transaction.
const (
	stdioWorkers = 16
	stdioQueue   = 256
)

func serveStdio(ctx context.Context, s *server.MCPServer, stdin io.Reader, stdout, stderr io.Writer, logger *slog.Logger) error {
	logger.Info("x402-mcp serving on stdio", "version", buildVersion())
	stdio := server.NewStdioServer(s)
	for _, opt := range []server.StdioOption{
		server.WithErrorLogger(log.New(stderr, "x402-mcp: ", 0)),
		server.WithWorkerPoolSize(stdioWorkers),
		server.WithQueueSize(stdioQueue),
	} {
		opt(stdio)
	}
	if err := stdio.Listen(ctx, stdin, stdout); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// loadConfig reads the configuration (path, else $X402_MCP_CONFIG, else the
// defaults) with the environment's overrides, and refuses an X402_MCP_
// variable it did not use: a misspelt override must not leave the file's
// value in force unnoticed.
func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.LoadWithEnv(path, os.Getenv)
	if err != nil {
		return nil, err
	}
	if err := cfg.CheckEnvNames(os.Environ()); err != nil {
		return nil, err
	}
	return cfg, nil
}

// newWallet reads balances and authorization state over the configured
// networks' RPC endpoints.
func newWallet(cfg *config.Config) *wallet.Reader {
	nets := make([]wallet.Network, 0, len(cfg.Networks))
	for _, n := range cfg.Networks {
		nets = append(nets, wallet.Network{ID: n.ID, RPCURL: n.RPCURL})
	}
	return wallet.New(cfg.Registry, nets)
}

// newCatalog searches the configured facilitators and catalog files; nil
// when there are none (the agent can still probe URLs).
func newCatalog(cfg *config.Config) (*catalog.Catalog, error) {
	if len(cfg.Facilitators) == 0 && len(cfg.Catalogs) == 0 {
		return nil, nil
	}
	return catalog.New(catalog.Config{Facilitators: cfg.Facilitators, CatalogFiles: cfg.Catalogs, TTL: cfg.CacheTTL})
}

// openLedger opens the payment ledger and settles what earlier processes
// left pending. With an RPC endpoint, a payment whose outcome a crash left
// unknown is settled or released by asking the chain (see
// ledger.Reconcile); startReconciler keeps doing so while the server runs.
func openLedger(ctx context.Context, cfg *config.Config, w *wallet.Reader, logger *slog.Logger) (*ledger.Ledger, error) {
	led, path, err := openLedgerFile(cfg, false, io.Discard)
	if err != nil {
		return nil, err
	}
	report, err := led.Reconcile(ctx, chainOf(w))
	if errors.Is(err, ledger.ErrUnavailable) {
		// A fleet's database that is down: start anyway. Payments are
		// refused until it is back; the reconciler catches up then.
		logger.Warn("ledger unreachable at start: payments are refused until it is back; quotes and free fetches work", "ledger", path, "err", err)
		return led, nil
	}
	if err != nil {
		led.Close()
		return nil, fmt.Errorf("reconciling the ledger %s: %w", path, err)
	}
	logger.Info("ledger open", "path", path, "reconciled", len(report.Changes), "unknown", report.Unknown)
	logChanges(logger, slog.LevelWarn, report.Changes, "a payment left pending was resolved at start")
	for _, e := range report.CheckErrors {
		logger.Warn("ledger: cannot check a pending payment on chain; it stays counted", "err", e)
	}
	return led, nil
}

// openLedgerFile opens the ledger file the config names, else the default
// one, for the server and the commands that read or decide on the ledger
// alike: every process sharing the ledger must find the same file. It
// returns the path, for messages.
//
// Every caller gets the ledger's integrity checks (see ledger's doc.go):
// one that others can write, one that was deleted or swapped, or one whose
// sums disagree with its records is refused, so nothing pays from it.
// read opens a ledger that fails only the last check anyway, for the
// commands that only show what is in it; they warn on stderr.
func openLedgerFile(cfg *config.Config, read bool, stderr io.Writer) (*ledger.Ledger, string, error) {
	path, err := ledgerPath(cfg)
	if err != nil {
		return nil, "", err
	}
	// A database has no file to lose: the identity file is SQLite's.
	var idFile string
	if !config.IsDatabaseURL(path) {
		if idFile, err = ledger.IDFilePath(path); err != nil {
			return nil, "", fmt.Errorf("finding where the ledger's identity is kept: %w\n\thint: set $HOME", err)
		}
	}
	led, err := ledger.Open(path, ledger.Options{Lease: ledgerLease(cfg), IDFile: idFile, Inspect: read})
	if err != nil {
		return nil, "", ledgerHint(cfg, err)
	}
	if err := led.Damage(); err != nil {
		fmt.Fprintf(stderr, "x402-mcp: warning: %v\n\thint: this is shown for inspection only; %s\n", err, repairHint(cfg, err))
	}
	return led, path, nil
}

// ledgerPath is the ledger file the config names, else the default one.
func ledgerPath(cfg *config.Config) (string, error) {
	if cfg.LedgerPath != "" {
		return cfg.LedgerPath, nil
	}
	path, err := ledger.DefaultPath()
	if err != nil {
		return "", fmt.Errorf("finding the ledger location: %w\n\thint: set ledger = \"/path/to/ledger.db\" in the config", err)
	}
	return path, nil
}

// ledgerHint adds to an integrity error the commands, for this config,
// that show and repair it.
func ledgerHint(cfg *config.Config, err error) error {
	if errors.Is(err, ledger.ErrTampered) {
		return fmt.Errorf("%w\n\thint: %s", err, repairHint(cfg, err))
	}
	return err
}

func repairHint(cfg *config.Config, err error) string {
	var ie *ledger.IntegrityError
	if errors.As(err, &ie) && !ie.Repairable() {
		return "the ledger's tables were changed and cannot be rebuilt; keep the file for inspection (" + cliCommand(cfg, "ledger", "verify") + " lists the differences) and restore it from a backup"
	}
	return "see every difference with " + cliCommand(cfg, "ledger", "verify") + "; if the records are right, recompute the sums from them with " + cliCommand(cfg, "ledger", "repair")
}

// cliCommand is how the user runs this binary with this config from a
// terminal, quoted for their shell.
func cliCommand(cfg *config.Config, args ...string) string {
	c := cliFor(cfg)
	parts := []string{shellquote.Quote(c.Binary)}
	for _, a := range args {
		parts = append(parts, shellquote.Quote(a))
	}
	if c.Config != "" {
		parts = append(parts, "--config", shellquote.Quote(c.Config))
	}
	return strings.Join(parts, " ")
}

// ledgerAt opens the ledger of the config at configPath, for the commands
// that read or decide what is in it (history, approvals, approve, deny);
// read as in openLedgerFile.
func ledgerAt(configPath string, read bool, stderr io.Writer) (*ledger.Ledger, string, error) {
	cfg, err := loadConfig(configPath)
	if err != nil {
		return nil, "", err
	}
	return openLedgerFile(cfg, read, stderr)
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

// newClient builds the paying client from the configuration and the key
// (nil: no wallet).
func newClient(cfg *config.Config, led *ledger.Ledger, w *wallet.Reader, key *signer.Key, logger *slog.Logger) (*pay.Client, error) {
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
		KnownTerms:       cfg.KnownTerms,
		// No Transport: the production path always uses pay's guarded
		// one, which refuses private destinations but these.
		AllowPrivate:       cfg.AllowPrivate,
		AllowPrivateSource: configShown(cfg),
		Logger:             logger,
		UserAgent:          "x402-mcp/" + buildVersion(),
		Approvals:          pay.Approvals{OutOfBand: cfg.OutOfBandApproval, TTL: cfg.ApprovalTTL},
		// A payment left unknown is checked on chain before a new one is
		// signed for the same request.
		CheckAuthorization: w.AuthorizationState,
	})
}

// configShown is the config file as messages name it: absolute, or ""
// for the built-in defaults.
func configShown(cfg *config.Config) string {
	if cfg.Path == "" {
		return ""
	}
	if abs, err := filepath.Abs(cfg.Path); err == nil {
		return abs
	}
	return cfg.Path
}

// cliFor is how the user runs this binary with this config from a
// terminal, for the commands the server shows them.
func cliFor(cfg *config.Config) tools.CLI {
	c := tools.CLI{Binary: "x402-mcp", Config: cfg.Path}
	if exe, err := os.Executable(); err == nil {
		c.Binary = exe
	}
	if abs, err := filepath.Abs(cfg.Path); err == nil && cfg.Path != "" {
		c.Config = abs
	}
	return c
}

// loadKey reads the configured key; nil without one. warn is told when
// the key came from the environment.
func loadKey(w config.Wallet, warn func(string)) (*signer.Key, error) {
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
		warn(signer.EnvWarning)
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
