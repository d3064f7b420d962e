package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/tidwall/gjson"
)

// TestDevnetThenServe is what a user does to try x402-mcp in a host: run
// `x402-mcp devnet`, register `x402-mcp serve --config <its config>`, and
// let the agent discover, quote, pay and read the balance. Both are the
// built binary, in separate processes.
func TestDevnetThenServe(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "devnet")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Fixed ports, as a host's registration expects from one run to the
	// next.
	ports := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	dn := startDevnetBin(ctx, t, dir, ports)

	c, err := startStdioClient(ctx, bin, filepath.Join(dir, "config.toml"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	call := func(name string, args map[string]any) string {
		t.Helper()
		r, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: name, Arguments: args}})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.IsError {
			t.Fatalf("%s: %s", name, resultText(r))
		}
		return structuredJSON(r)
	}

	found := call("x402_discover", map[string]any{"query": "weather"})
	weather := gjson.Get(found, "results.0.url").String()
	if !strings.HasSuffix(weather, "/v2/weather") || gjson.Get(found, "results.0.verdict").String() != "allowed" {
		t.Fatalf("discovery: %s", found)
	}
	q := call("x402_quote", map[string]any{"url": weather + "?city=Oslo"})
	if gjson.Get(q, "verdict").String() != "allowed" || gjson.Get(q, "options.0.amount").String() != "0.01" {
		t.Fatalf("quote: %s", q)
	}
	paid := call("x402_fetch", map[string]any{"url": weather + "?city=Oslo"})
	if !gjson.Get(paid, "payment.settled").Bool() || !strings.HasPrefix(gjson.Get(paid, "payment.transaction").String(), "0x") {
		t.Fatalf("fetch: %s", paid)
	}
	w := call("x402_wallet", map[string]any{})
	if b := gjson.Get(w, `balances.#(network=="eip155:1337").balance`).String(); b != "99.99" {
		t.Errorf("balance after paying 0.01 of 100: %q (%s)", b, w)
	}
	if gjson.Get(w, "payer").String() != gjson.Get(paid, "payment.payer").String() {
		t.Errorf("wallet payer differs from the payment's: %s", w)
	}

	// The same wallet from the command line.
	cfg := filepath.Join(dir, "config.toml")
	if r := runBin(t, nil, "wallet", "address", "--config", cfg); r.code != 0 || strings.TrimSpace(r.stdout) != gjson.Get(w, "payer").String() {
		t.Errorf("wallet address: %+v", r)
	}
	if r := runBin(t, nil, "wallet", "balance", "--config", cfg); r.code != 0 || !strings.Contains(r.stdout, "99.99 USDC") {
		t.Errorf("wallet balance: %+v", r)
	}

	// Ctrl-C stops the devnet cleanly.
	if err := dn.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := dn.Wait(); err != nil {
		t.Errorf("devnet after SIGINT: %v", err)
	}

	// Restarted on the same ports, the devnet is a new chain with a new
	// ledger. The server still running from the first run refuses to pay,
	// and says why; a server started on the new config pays, and its
	// ledger holds only this chain's payment.
	dn = startDevnetBin(ctx, t, dir, ports)
	defer dn.Process.Kill()
	r, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "x402_fetch", Arguments: map[string]any{"url": weather + "?city=Bergen"}}})
	if err != nil || !r.IsError || !strings.Contains(resultText(r), "deleted or replaced") || !strings.Contains(resultText(r), "restart") {
		t.Errorf("the old server after a devnet restart: %v %s", err, resultText(r))
	}
	c.Close()
	c2, err := startStdioClient(ctx, bin, cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	r, err = c2.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "x402_fetch", Arguments: map[string]any{"url": weather + "?city=Bergen"}}})
	if err != nil || r.IsError || !gjson.Get(structuredJSON(r), "payment.settled").Bool() {
		t.Fatalf("a new server on the new devnet: %v %s", err, resultText(r))
	}
	c2.Close()
	if h := runBin(t, nil, "history", "--json", "--config", cfg); h.code != 0 || gjson.Get(h.stdout, "#").Int() != 1 {
		t.Errorf("the new chain's ledger: %+v", h)
	}
	if err := dn.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	dn.Wait()
}

// startDevnetBin starts `x402-mcp devnet` in dir on the given rpc,
// facilitator and API addresses and waits until it is ready.
func startDevnetBin(ctx context.Context, t *testing.T, dir string, addrs []string) *exec.Cmd {
	t.Helper()
	dn := exec.CommandContext(ctx, bin, "devnet", "--dir", dir, "--rpc", addrs[0], "--facilitator", addrs[1], "--api", addrs[2], "--fund", "100")
	dn.Env = cleanEnv()
	out, err := dn.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := dn.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dn.Process.Kill() })
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Ctrl-C to stop") {
				close(ready)
				break
			}
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case <-ready:
	case <-ctx.Done():
		t.Fatal("devnet did not come up")
	}
	return dn
}

// freeAddr is a loopback address with a port free at the moment.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
