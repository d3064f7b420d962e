package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"

	"github.com/x402-mcp/x402-mcp/console"
	"github.com/x402-mcp/x402-mcp/internal/redact"
)

// defaultConsoleAddr is where the console listens unless told otherwise:
// this machine only.
const defaultConsoleAddr = "127.0.0.1:8405"

// consoleCommand runs the operator console (package console) on the
// ledger and policy of the config, until interrupted. The login link goes
// to stdout, the operator's terminal; logs go to stderr.
func consoleCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("console", flag.ContinueOnError)
	configPath := fs.String("config", "", "configuration file (TOML)")
	listen := fs.String("listen", defaultConsoleAddr, "address to listen on (host:port); loopback unless --allow-remote")
	allowRemote := fs.Bool("allow-remote", false, "allow a --listen address other machines can reach (terminate TLS in front of the console)")
	tokenFile := fs.String("token-file", "", "file holding the login token (created 0600 if absent; default: console-token beside the ledger)")
	pos, err := parseFlags(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos, 0, 0, stderr); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		return misuse(fs, stderr, fmt.Sprintf("bad --listen address %s: expected host:port\n\thint: give host:port, e.g. --listen %s", redact.NotShown, defaultConsoleAddr))
	}
	if !*allowRemote && !isLoopbackName(host) {
		return &exitError{code: 2, err: fmt.Errorf("--listen %s would accept connections from other machines\n\thint: listen on 127.0.0.1:PORT, or add --allow-remote and terminate TLS in front of the console", *listen)}
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	led, path, err := openLedgerFile(cfg, false, stderr)
	if err != nil {
		return err
	}
	defer led.Close()
	if *tokenFile == "" {
		*tokenFile = filepath.Join(filepath.Dir(path), "console-token")
	}
	token, created, err := console.TokenFile(*tokenFile)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	explorers := map[string]string{}
	for _, n := range cfg.Networks {
		if n.Explorer != "" {
			explorers[n.ID] = n.Explorer
		}
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w\n\thint: another console may be running; pick another port with --listen 127.0.0.1:PORT", *listen, err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	if !addr.IP.IsLoopback() {
		if !*allowRemote {
			ln.Close()
			return &exitError{code: 2, err: fmt.Errorf("--listen %s listens on %s, which is not loopback\n\thint: listen on 127.0.0.1:PORT, or add --allow-remote and terminate TLS in front of the console", *listen, addr)}
		}
		logger.Warn("listening beyond this machine: terminate TLS in front of the console (a reverse proxy); without it the login token, the session cookie and every payment cross the network in clear", "addr", addr.String())
	}
	srv := console.New(console.Options{Ledger: led, Policy: cfg.Policy, Explorers: explorers, Token: token, AllowRemote: *allowRemote, Logger: logger})
	base := "http://" + addr.String()
	if addr.IP.IsUnspecified() {
		base = fmt.Sprintf("http://127.0.0.1:%d", addr.Port)
	}
	what := "holds"
	if created {
		what = "now holds"
	}
	fmt.Fprintf(stdout, "x402-mcp console for the ledger %s\n\nopen this one-time login link (valid %v, works once):\n  %s\n\nor open %s and log in with the token that %s %s\nstop the console with Ctrl-C\n",
		led.Path(), console.LoginCodeTTL, srv.LoginURL(base), base+"/login", *tokenFile, what)
	return srv.Serve(ctx, ln)
}
