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
	"strings"

	"github.com/mark3labs/mcp-go/server"

	"github.com/x402-mcp/x402-mcp/config"
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
		return &exitError{code: 2, err: fmt.Errorf("unexpected argument %q\n\thint: a key is never passed on the command line; name a key file in the config", clipArg(fs.Arg(0)))}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("bad --log-level %q: use debug, info, warn or error", *logLevel)}
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	client, err := newClient(*configPath, logger, stderr)
	if err != nil {
		return err
	}
	s := tools.NewServer(client, version)
	logger.Info("x402-mcp serving on stdio", "version", version, "payer", payerString(client))
	stdio := server.NewStdioServer(s)
	stdio.SetErrorLogger(log.New(stderr, "x402-mcp: ", 0))
	if err := stdio.Listen(ctx, stdin, stdout); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// newClient loads the configuration and the key and builds the paying
// client.
func newClient(configPath string, logger *slog.Logger, stderr io.Writer) (*pay.Client, error) {
	cfg := config.Default()
	if configPath != "" {
		var err error
		if cfg, err = config.Load(configPath); err != nil {
			return nil, err
		}
	}
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

// clipArg shortens an argument before echoing it: it might be a key pasted
// by mistake, so show only its start.
func clipArg(s string) string {
	if len(s) > 8 {
		return s[:6] + "…"
	}
	return strings.TrimSpace(s)
}
