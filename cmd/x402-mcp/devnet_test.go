package main

import (
	"github.com/x402-mcp/x402-mcp/internal/shellquote"

	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/pelletier/go-toml/v2"

	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/localnet/token"
	"github.com/x402-mcp/x402-mcp/signer"
)

// devnetTestPorts keeps parallel tests (and a devnet someone is running)
// from colliding on the fixed default ports.
var devnetTestPorts = []string{"--rpc", "127.0.0.1:0", "--facilitator", "127.0.0.1:0", "--api", "127.0.0.1:0"}

// TestDevnetCommand runs the command until its context is cancelled, as
// Ctrl-C does through main: it writes the files, prints what a person needs
// to register the server, serves the chain over JSON-RPC with the payer
// funded, and returns nil once stopped.
func TestDevnetCommand(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "my devnet") // a space, as under macOS "Application Support"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- devnetCommand(ctx, append([]string{"--dir", dir, "--fund", "7.5"}, devnetTestPorts...), &stdout, &stderr)
	}()

	deadline := time.After(time.Minute)
	for !strings.Contains(stdout.String(), "Ctrl-C to stop") {
		select {
		case err := <-done:
			t.Fatalf("devnet returned early: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
		case <-deadline:
			t.Fatalf("devnet did not come up\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	out := stdout.String()
	cfgPath := filepath.Join(dir, "config.toml")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"chain JSON-RPC  http://127.0.0.1:", "facilitator     http://127.0.0.1:", "paid API        http://127.0.0.1:",
		"holds 7.5 USDC (read over JSON-RPC)",
		"/v2/weather", "0.01 USDC", "x402 v2",
		"Each payment: at most 0.10 USD", "Over 0.025 USD: ask the human first", "Networks: only eip155:1337",
		"claude mcp add x402-devnet -- " + shellquote.Quote(exe) + " serve --config " + shellquote.Quote(cfgPath),
		`"mcpServers": {`, `"command": "` + exe + `"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if runtime.GOOS != "windows" && !strings.Contains(out, "--config '"+cfgPath+"'") {
		t.Errorf("the config path with a space is not quoted for the shell:\n%s", out)
	}

	// The files are the devnet's, private, and the config names the
	// endpoints it serves.
	if runtime.GOOS != "windows" {
		for path, want := range map[string]os.FileMode{dir: 0o700, cfgPath: 0o600, filepath.Join(dir, "policy.toml"): 0o600, filepath.Join(dir, "payer.key"): 0o600} {
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
				t.Errorf("%s: %v, %v; want mode %v", path, fi.Mode(), err, want)
			}
		}
	}
	var cfg struct {
		Networks []struct {
			ID     string `toml:"id"`
			RPCURL string `toml:"rpc_url"`
		} `toml:"networks"`
		Discovery struct {
			Facilitators []string `toml:"facilitators"`
		} `toml:"discovery"`
		Tokens []struct {
			Address string `toml:"address"`
		} `toml:"tokens"`
	}
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := toml.Unmarshal(data, &cfg); err != nil || len(cfg.Networks) != 1 || len(cfg.Tokens) != 1 || len(cfg.Discovery.Facilitators) != 1 {
		t.Fatalf("config.toml: %v\n%s", err, data)
	}
	for _, u := range []string{cfg.Networks[0].RPCURL, cfg.Discovery.Facilitators[0]} {
		if !strings.HasPrefix(u, "http://127.0.0.1:") || !strings.Contains(out, u) {
			t.Errorf("config.toml names %s, which the output does not show", u)
		}
	}

	// What `serve --config` will do: dial the RPC endpoint and read the
	// payer's USDC.
	key, err := signer.LoadHexFile(filepath.Join(dir, "payer.key"))
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ethclient.Dial(cfg.Networks[0].RPCURL)
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	tok := token.NewToken()
	rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer rcancel()
	bal, err := bind.Call(tok.Instance(ec, commonAddr(cfg.Tokens[0].Address)), &bind.CallOpts{Context: rctx}, tok.PackBalanceOf(key.Address()), tok.UnpackBalanceOf)
	if err != nil || bal.Int64() != 7_500_000 {
		t.Fatalf("payer balance over RPC = %v, %v; want 7500000", bal, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("devnet after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("devnet did not stop")
	}
	if _, err := ec.ChainID(rctx); err == nil {
		t.Error("the JSON-RPC endpoint still answers after the devnet stopped")
	}
}

func TestDevnetCommandRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--rpc", "0.0.0.0:8545"}, 2, "--rpc: 0.0.0.0:8545 is not a loopback address\n\thint: "},
		{[]string{"--api", ":8404"}, 2, "--api: :8404 is not a loopback address (no host means every interface)"},
		{[]string{"--facilitator", "localhost:8403"}, 2, "give an IP such as 127.0.0.1"},
		{[]string{"--fund", "1.0000001"}, 2, "bad --fund"},
		{[]string{"--fund", "-1"}, 2, "bad --fund"},
		{[]string{"extra"}, 2, "unexpected argument"},
	} {
		dir := filepath.Join(t.TempDir(), "devnet")
		var stdout, stderr syncBuffer
		err := devnetCommand(ctx, append([]string{"--dir", dir}, tc.args...), &stdout, &stderr)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != tc.code || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want exit %d with %q", tc.args, err, tc.code, tc.want)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("%v: the directory was created for a refused start", tc.args)
		}
	}
}

// TestDevnetCommandKeepsForeignConfig: a config.toml the devnet did not
// write is never replaced, and the message says what to do.
func TestDevnetCommandKeepsForeignConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mine := "# my real wallet\npolicy_file = \"policy.toml\"\n[wallet]\nkey_file = \"payer.key\"\n"
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(mine), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr syncBuffer
	err := devnetCommand(context.Background(), append([]string{"--dir", dir}, devnetTestPorts...), &stdout, &stderr)
	if !errors.Is(err, localnet.ErrNotDevnetDir) || !strings.Contains(err.Error(), cfgPath) || !strings.Contains(err.Error(), "hint: pass --dir") {
		t.Fatalf("err = %v, want a refusal naming %s with a hint", err, cfgPath)
	}
	if got, _ := os.ReadFile(cfgPath); string(got) != mine {
		t.Fatalf("config.toml changed:\n%s", got)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("the directory now holds %d entries, want 1", len(entries))
	}
}
