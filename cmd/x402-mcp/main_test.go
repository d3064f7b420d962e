package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/tidwall/gjson"

	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/signer"
	"github.com/x402-mcp/x402-mcp/tokens"
)

// bin is the x402-mcp binary under test, built once with CGO_ENABLED=0 so
// every test also proves the static build works.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "x402-mcp-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "x402-mcp")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	build := exec.Command("go", "build", "-buildvcs=auto", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building x402-mcp with CGO_ENABLED=0: %v\n%s", err, out)
		os.Exit(1)
	}
	// No test may read or write the real user's files (the default ledger
	// under ~/.local/share, a config under ~/.config): the binary and the
	// code under test see a home of their own.
	home := filepath.Join(dir, "home")
	for _, v := range []string{"HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"} {
		p := home
		if v != "HOME" {
			p = filepath.Join(home, strings.ToLower(strings.TrimPrefix(v, "XDG_")))
		}
		if err := os.MkdirAll(p, 0o700); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Setenv(v, p)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type runResult struct {
	code           int
	stdout, stderr string
}

func runBin(t *testing.T, env []string, args ...string) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(cleanEnv(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return runResult{code, out.String(), errb.String()}
}

func cleanEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, signer.EnvPrivateKey+"=") && !strings.HasPrefix(e, "X402_MCP_") {
			env = append(env, e)
		}
	}
	return env
}

func TestHelpAndVersion(t *testing.T) {
	r := runBin(t, nil, "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "x402-mcp serve") {
		t.Errorf("--help: %+v", r)
	}
	r = runBin(t, nil, "--version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "x402-mcp ") {
		t.Errorf("--version: %+v", r)
	}
	r = runBin(t, nil)
	if r.code != 2 || !strings.Contains(r.stderr, "missing command") {
		t.Errorf("no command: %+v", r)
	}
	r = runBin(t, nil, "pay-everything")
	if r.code != 2 || !strings.Contains(r.stderr, `unknown command "pay-everything"`) {
		t.Errorf("unknown command: %+v", r)
	}
}

const testKey = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d" // public hardhat test key #1

func TestOperatorErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad := write("bad.toml", "[http]\ntimeout_seconds = 30\ntimeout_secs = 5\n", 0o600)
	r := runBin(t, nil, "serve", "--config", bad)
	if r.code != 1 || !strings.Contains(r.stderr, bad+":3: http.timeout_secs: unknown key") {
		t.Errorf("bad config: %+v", r)
	}

	write("open.key", testKey+"\n", 0o644)
	cfg := write("open.toml", "[wallet]\nkey_file = \"open.key\"\n", 0o600)
	r = runBin(t, nil, "serve", "--config", cfg)
	if r.code == 0 || !strings.Contains(r.stderr, "chmod 600") || strings.Contains(r.stderr, testKey[2:]) {
		t.Errorf("world-readable key file: %+v", r)
	}

	r = runBin(t, nil, "serve", testKey)
	if r.code != 2 || strings.Contains(r.stderr+r.stdout, testKey[6:]) {
		t.Errorf("key on argv: %+v", r)
	}

	// An encrypted keystore with a passphrase file unlocks, and the server
	// names the payer address, never the key.
	priv, err := crypto.HexToECDSA(testKey[2:])
	if err != nil {
		t.Fatal(err)
	}
	ks, err := keystore.EncryptKey(&keystore.Key{Id: uuid.New(), Address: crypto.PubkeyToAddress(priv.PublicKey), PrivateKey: priv}, "correct horse", 16, 1)
	if err != nil {
		t.Fatal(err)
	}
	write("key.json", string(ks), 0o600)
	write("pass", "correct horse\n", 0o600)
	cfg = write("ks.toml", "[wallet]\nkeystore = \"key.json\"\npassphrase_file = \"pass\"\n", 0o600)
	r = runBin(t, nil, "serve", "--config", cfg)
	if r.code != 0 || !strings.Contains(r.stderr, "payer=0x70997970C51812dc3A010C7d01b50e0d17dc79C8") || strings.Contains(r.stderr, testKey[2:]) {
		t.Errorf("keystore: %+v", r)
	}
	write("pass", "zebra-42-wrong\n", 0o600)
	r = runBin(t, nil, "serve", "--config", cfg)
	if r.code == 0 || strings.Contains(r.stderr, "zebra-42") {
		t.Errorf("wrong passphrase: %+v", r)
	}

	// The environment variable works, with a warning, and the key is never echoed.
	r = runBin(t, []string{signer.EnvPrivateKey + "=" + testKey}, "serve")
	if !strings.Contains(r.stderr, signer.EnvPrivateKey) || strings.Contains(r.stderr, testKey[2:]) {
		t.Errorf("env key: %+v", r)
	}
}

func TestDemo(t *testing.T) {
	r := runBin(t, nil, "demo")
	if r.code != 0 {
		t.Fatalf("demo exited %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"x402_discover", "/v2/weather", "needs_approval", "x402_quote", "(0.01 USDC, x402 version 2)", "(0.02 USDC, x402 version 1)",
		"asks the human (played by this demo", "the simulated human approves", "x402_fetch GET 127.0.0.1:",
		// Each term explained where it first appears.
		"HTTP status 402", "eip155 means an Ethereum-style chain", "the facilitator checks a signed payment",
		"atomic units are the token's smallest unit", "the transaction is the payment's record on the chain",
		"above the operator's per-payment cap", "daily budget: 0.07 USD of 0.07 spent", "x402_spending", "✓ both moved by exactly the 0.07 USDC", "tools__weather", "x402 over MCP"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, r.stdout)
		}
	}
	if n := strings.Count(r.stdout, "transaction 0x"); n != 4 {
		t.Errorf("demo shows %d transactions, want 4 (three fetches, one upstream tool):\n%s", n, r.stdout)
	}
}

// devnet starts the local network and writes a config and a funded key
// file for the binary.
func devnet(t *testing.T) (*localnet.Network, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := localnet.Start(ctx, localnet.NetworkConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	key, payer, err := n.NewPayer(ctx, big.NewInt(1_000_000))
	if err != nil {
		t.Fatal(err)
	}
	tok := tokens.Token{Network: n.Chain.Network(), Address: n.Chain.TokenAddress(), Name: n.Chain.TokenName(), Version: n.Chain.TokenVersion()}
	cfg, err := writeDemoConfig(t.TempDir(), signer.NewKey(key), tok, "max_per_payment = \"0.10\"\n", "", "")
	if err != nil {
		t.Fatal(err)
	}
	return n, cfg, payer.Hex()
}

// TestStdioPaysOnChain drives the built binary over stdio with a real MCP
// client and checks the chain.
func TestStdioPaysOnChain(t *testing.T) {
	n, cfg, payer := devnet(t)
	ctx := context.Background()
	var serverLog syncBuffer
	c, err := startStdioClient(ctx, bin, cfg, &serverLog)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	balance := func(addr string) *big.Int {
		t.Helper()
		b, err := n.Chain.BalanceOf(ctx, commonAddr(addr))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	payer0, payee0 := balance(payer), balance(n.PayTo.Hex())
	var txs []string
	for _, path := range []string{"/v2/weather?city=Paris", "/v1/joke"} {
		r, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "x402_fetch", Arguments: map[string]any{"url": n.APIURL + path}}})
		if err != nil {
			t.Fatal(err)
		}
		out := structuredJSON(r)
		if r.IsError || gjson.Get(out, "status").Int() != 200 || gjson.Get(out, "payment.payer").String() != payer {
			t.Fatalf("%s: %s", path, out)
		}
		txs = append(txs, gjson.Get(out, "payment.transaction").String())
	}
	for _, tx := range txs {
		rc, err := n.Chain.Client().TransactionReceipt(ctx, commonHash(tx))
		if err != nil || rc.Status != 1 {
			t.Errorf("transaction %s: %v", tx, err)
		}
	}
	if d := new(big.Int).Sub(payer0, balance(payer)); d.Int64() != 30000 {
		t.Errorf("payer spent %s, want 30000 (0.01 + 0.02)", d)
	}
	if d := new(big.Int).Sub(balance(n.PayTo.Hex()), payee0); d.Int64() != 30000 {
		t.Errorf("payee got %s, want 30000", d)
	}
	if !strings.Contains(serverLog.String(), "payment settled") {
		t.Errorf("server log has no settlement line:\n%s", serverLog.String())
	}
}

// TestStdoutIsOnlyJSONRPC reads the binary's raw stdout while it quotes,
// pays and refuses: every line must be a JSON-RPC 2.0 message.
func TestStdoutIsOnlyJSONRPC(t *testing.T) {
	n, cfg, _ := devnet(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "--config", cfg, "--log-level", "debug")
	cmd.Env = cleanEnv()
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	calls := []map[string]any{
		{"name": "x402_quote", "arguments": map[string]any{"url": n.APIURL + "/v2/weather?city=Oslo"}},
		{"name": "x402_fetch", "arguments": map[string]any{"url": n.APIURL + "/v2/weather?city=Oslo"}},
		{"name": "x402_fetch", "arguments": map[string]any{"url": n.APIURL + "/v2/report"}},
		{"name": "x402_fetch", "arguments": map[string]any{"url": n.APIURL + "/free/status"}},
		{"name": "x402_fetch", "arguments": map[string]any{"nope": 1}},
	}
	msgs := []any{
		map[string]any{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": map[string]any{"protocolVersion": mcp.LATEST_PROTOCOL_VERSION, "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "raw", "version": "1"}}},
		map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"},
		map[string]any{"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
	}
	for i, c := range calls {
		msgs = append(msgs, map[string]any{"jsonrpc": "2.0", "id": 3 + i, "method": "tools/call", "params": c})
	}
	enc := json.NewEncoder(stdin)
	pending := map[int]bool{}
	for _, m := range msgs {
		if err := enc.Encode(m); err != nil {
			t.Fatal(err)
		}
		if id, ok := m.(map[string]any)["id"].(int); ok {
			pending[id] = true
		}
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 0, 1<<20), 8<<20)
	lines := 0
	for len(pending) > 0 && sc.Scan() {
		lines++
		line := sc.Bytes()
		var msg struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      *int            `json:"id"`
			Result  json.RawMessage `json:"result"`
			Error   json.RawMessage `json:"error"`
			Method  string          `json:"method"`
		}
		if err := json.Unmarshal(line, &msg); err != nil || msg.JSONRPC != "2.0" {
			t.Fatalf("stdout line %d is not JSON-RPC 2.0: %q", lines, line)
		}
		if msg.ID != nil {
			delete(pending, *msg.ID)
		}
	}
	stdin.Close()
	if len(pending) > 0 {
		t.Fatalf("no response for ids %v (stderr:\n%s)", pending, stderr.String())
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("server exit after stdin closed: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "payment signed") {
		t.Errorf("logs did not go to stderr:\n%s", stderr.String())
	}
	for _, secret := range []string{"PAYMENT-SIGNATURE", "eyJ4NDAyVmVyc2lvbiI6Mi"} {
		if strings.Contains(stderr.String(), secret) {
			t.Errorf("the log contains payment header material %q", secret)
		}
	}
}

// TestReadmeMatchesCode keeps the README's tool and configuration
// references in step with the code.
func TestReadmeMatchesCode(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(readme)
	for _, want := range []string{"go run ./cmd/x402-mcp demo", "go test ./...", "claude mcp add"} {
		if !strings.Contains(doc, want) {
			t.Errorf("README lacks %q", want)
		}
	}
	for _, st := range toolsList() {
		if !strings.Contains(doc, "`"+st.name+"`") {
			t.Errorf("README does not document tool %s", st.name)
		}
		for _, p := range st.props {
			if !strings.Contains(doc, "`"+p+"`") {
				t.Errorf("README does not document %s's input %s", st.name, p)
			}
		}
	}
	for _, key := range configKeys() {
		if !strings.Contains(doc, "`"+key+"`") {
			t.Errorf("README does not document config key %s", key)
		}
	}
}

func TestPolicyCheckCommand(t *testing.T) {
	r := runBin(t, nil, "policy", "check", "../../examples/policy.toml")
	if r.code != 0 || !strings.Contains(r.stdout, "is valid. It allows:") || !strings.Contains(r.stdout, "0.10 USD") {
		t.Errorf("valid policy: %+v", r)
	}
	bad := filepath.Join(t.TempDir(), "p.toml")
	if err := os.WriteFile(bad, []byte("max_per_payment = \"0.10\"\n[budget]\ndaily = \"1\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runBin(t, nil, "policy", "check", bad)
	if r.code != 1 || !strings.Contains(r.stderr, bad+":3: budget.daily") {
		t.Errorf("bad policy: %+v", r)
	}
	r = runBin(t, nil, "policy", "lint", bad)
	if r.code != 2 {
		t.Errorf("unknown policy subcommand: %+v", r)
	}
}

// TestHistoryCommand pays through the binary, then lists the ledger as a
// table and as JSON.
func TestHistoryCommand(t *testing.T) {
	n, cfg, _ := devnet(t)
	ctx := context.Background()
	c, err := startStdioClient(ctx, bin, cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "x402_fetch", Arguments: map[string]any{"url": n.APIURL + "/v1/joke"}}})
	if err != nil || r.IsError {
		t.Fatalf("fetch: %v %s", err, resultText(r))
	}
	tx := gjson.Get(structuredJSON(r), "payment.transaction").String()
	c.Close()

	h := runBin(t, nil, "history", "--config", cfg)
	if h.code != 0 || !strings.Contains(h.stdout, "settled") || !strings.Contains(h.stdout, "0.02 USDC") || !strings.Contains(h.stdout, tx) {
		t.Errorf("history table: %+v", h)
	}
	h = runBin(t, nil, "history", "--config", cfg, "--json")
	rec := gjson.Get(h.stdout, "0")
	if h.code != 0 || rec.Get("state").String() != "settled" || rec.Get("amount_atomic").String() != "20000" || rec.Get("transaction").String() != tx {
		t.Errorf("history --json: %+v", h)
	}
}
