package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/textproto"
	"os"
	"runtime"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/pelletier/go-toml/v2"

	"github.com/x402-mcp/x402-mcp/config"
	"github.com/x402-mcp/x402-mcp/internal/shellquote"
	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/upstream"
)

// maxHeadersFile bounds an upstream's headers file.
const maxHeadersFile = 16 << 10

// startUpstreams connects to the configured upstreams in the background
// and waits a bounded time for their tool lists. stop closes them (and
// stops stdio upstream processes).
func startUpstreams(ctx context.Context, cfg *config.Config, logger *slog.Logger) (ups []*upstream.Server, stop func(), err error) {
	stop = func() {
		for _, u := range ups {
			u.Close()
		}
	}
	for _, c := range cfg.Upstreams {
		uc := upstream.Config{Name: c.Name, URL: c.URL, Command: c.Command, Args: c.Args, Timeout: c.Timeout, Env: childEnv()}
		if c.HeadersFile != "" {
			if uc.Headers, err = readHeadersFile(c.HeadersFile); err != nil {
				stop()
				return nil, nil, err
			}
		}
		u := upstream.New(uc, logger)
		ups = append(ups, u)
		u.Start()
	}
	// They connect in the background; the first tools/list waits for them
	// (tools.UpstreamReadyWait), not the initialize reply.
	return ups, stop, nil
}

// readHeadersFile reads header = "value" lines (TOML) sent to an HTTP
// upstream. It usually holds a credential, so it is held to the key
// files' rule: not accessible by group or others.
func readHeadersFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, openSecretError("", "headers file", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot stat headers file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("headers file %s is not a regular file\n\thint: give the path of a TOML file of header = \"value\" lines", path)
	}
	if perm := st.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("headers file %s is accessible by group or others (mode %04o)\n\thint: run chmod 600 %s", path, perm, shellquote.Quote(path))
	}
	data, err := io.ReadAll(io.LimitReader(f, maxHeadersFile+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read headers file %s: %w", path, err)
	}
	if len(data) > maxHeadersFile {
		return nil, fmt.Errorf("headers file %s is larger than %d bytes", path, maxHeadersFile)
	}
	var m map[string]string
	if err := toml.NewDecoder(bytes.NewReader(data)).Decode(&m); err != nil {
		// The decoder's message may quote a value: not shown.
		return nil, fmt.Errorf("headers file %s is not TOML of header = \"value\" lines (details not shown)\n\thint: write lines such as Authorization = \"Bearer …\"", path)
	}
	for k, v := range m {
		if k == "" || strings.ContainsAny(k, " :\r\n") || textproto.CanonicalMIMEHeaderKey(k) == "" || strings.ContainsAny(v, "\r\n\x00") {
			return nil, fmt.Errorf("headers file %s has an invalid header name or value (not shown)", path)
		}
	}
	return m, nil
}

// localnetMCP is the hidden command `x402-mcp localnet-mcp`: the local
// network's paid MCP server on stdio, for tests and the demo. It sells in
// the token and to the payee given by flags, through the facilitator
// given.
func localnetMCP(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("localnet-mcp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg localnet.PaidMCPConfig
	var asset, payTo string
	fs.StringVar(&cfg.FacilitatorURL, "facilitator", "", "facilitator base URL")
	fs.StringVar(&cfg.Network, "network", "", "CAIP-2 network")
	fs.StringVar(&asset, "asset", "", "token address")
	fs.StringVar(&cfg.TokenName, "token-name", "", "token EIP-712 name")
	fs.StringVar(&cfg.TokenVersion, "token-version", "", "token EIP-712 version")
	fs.StringVar(&payTo, "pay-to", "", "payee address")
	fs.StringVar(&cfg.CrashFile, "crash-file", "", "arms crash_once")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	if cfg.FacilitatorURL == "" || cfg.Network == "" || !common.IsHexAddress(asset) || !common.IsHexAddress(payTo) {
		return &exitError{code: 2, err: errors.New("localnet-mcp: --facilitator, --network, --asset and --pay-to are required")}
	}
	cfg.Asset, cfg.PayTo = common.HexToAddress(asset), common.HexToAddress(payTo)
	return localnet.ServePaidMCPStdio(cfg)
}

// localnetMCPArgs are the arguments that start `x402-mcp localnet-mcp`
// selling as cfg says.
func localnetMCPArgs(cfg localnet.PaidMCPConfig) []string {
	args := []string{"localnet-mcp", "--facilitator", cfg.FacilitatorURL, "--network", cfg.Network, "--asset", cfg.Asset.Hex(),
		"--token-name", cfg.TokenName, "--token-version", cfg.TokenVersion, "--pay-to", cfg.PayTo.Hex()}
	if cfg.CrashFile != "" {
		args = append(args, "--crash-file", cfg.CrashFile)
	}
	return args
}

// childEnv is the environment of a stdio upstream: the few variables a
// program needs to run, as MCP hosts pass them, and nothing else. Above
// all never X402_PRIVATE_KEY or the X402_MCP_ overrides: an upstream is
// someone else's program.
func childEnv() []string {
	var env []string
	for _, k := range []string{"HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "TMPDIR", "LANG", "LC_ALL", "SYSTEMROOT"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
