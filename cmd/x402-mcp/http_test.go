package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/tidwall/gjson"

	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/signer"
	"github.com/x402-mcp/x402-mcp/tokens"
)

// httpTestToken is long enough and only printable ASCII.
const httpTestToken = "a3f9c1e07b5d4a28961fe0c3b7d25a84e6f1c09b3d7a5e2f8c4b1a0d9e6f3c7b"

// hermeticEnv is cleanEnv without any X402_MCP_ variable, so that the
// developer's own overrides cannot change what a test runs.
func hermeticEnv() []string {
	var env []string
	for _, e := range cleanEnv() {
		if !strings.HasPrefix(e, "X402_MCP_") {
			env = append(env, e)
		}
	}
	return env
}

// writePrivate writes a file with mode 0600 (the mode is set again in case
// the umask or an existing file got in the way).
func writePrivate(t *testing.T, path, content string, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// httpServe is a running `x402-mcp serve --http`.
type httpServe struct {
	url    string
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
}

var listeningRE = regexp.MustCompile(`listening on (http://[^\s"]+/mcp)`)

// startHTTPServe starts the binary on addr and waits for it to log its
// address. It is stopped with an interrupt when the test ends, and must
// then exit cleanly.
func startHTTPServe(t *testing.T, cfg, addr, tokenFile string, extra ...string) *httpServe {
	t.Helper()
	args := append([]string{"serve", "--config", cfg, "--http", addr, "--token-file", tokenFile}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = hermeticEnv()
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &httpServe{cmd: cmd, stderr: &syncBuffer{}, done: make(chan error, 1)}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			s.stderr.Write([]byte(line + "\n"))
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		s.done <- cmd.Wait()
	}()
	t.Cleanup(func() { s.stop(t) })
	select {
	case s.url = <-found:
	case err := <-s.done:
		s.done <- err
		t.Fatalf("server exited before listening: %v\n%s", err, s.stderr.String())
	case <-time.After(time.Minute):
		t.Fatalf("server did not log its address:\n%s", s.stderr.String())
	}
	return s
}

// stop interrupts the server and checks that it shuts down cleanly.
func (s *httpServe) stop(t *testing.T) {
	if s.cmd.ProcessState != nil {
		return
	}
	if runtime.GOOS == "windows" {
		s.cmd.Process.Kill()
		<-s.done
		return
	}
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("server exit after interrupt: %v\n%s", err, s.stderr.String())
		}
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		t.Errorf("server did not stop within 30s of an interrupt\n%s", s.stderr.String())
	}
}

// connect opens an MCP session over streamable HTTP with the given
// headers.
func (s *httpServe) connect(ctx context.Context, headers map[string]string) (*client.Client, error) {
	c, err := client.NewStreamableHttpClient(s.url, transport.WithHTTPHeaders(headers))
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "x402-mcp-http-test", Version: version}
	if _, err := c.Initialize(ctx, init); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// rawInitialize posts an initialize request by hand, so the test controls
// every header.
func rawInitialize(t *testing.T, url string, mutate func(*http.Request)) *http.Response {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"` + mcp.LATEST_PROTOCOL_VERSION + `","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	mutate(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp
}

// keyFileConfig writes a config with a hex key file and a ledger in dir.
func keyFileConfig(t *testing.T, dir string) string {
	t.Helper()
	writePrivate(t, filepath.Join(dir, "payer.key"), testKey+"\n", 0o600)
	return writePrivate(t, filepath.Join(dir, "config.toml"), "ledger = \"ledger.db\"\n\n[wallet]\nkey_file = \"payer.key\"\n", 0o600)
}

// TestHTTPTransport drives `serve --http` with mcp-go's streamable HTTP
// client and checks that nothing without the token reaches MCP.
func TestHTTPTransport(t *testing.T) {
	dir := t.TempDir()
	cfg := keyFileConfig(t, dir)
	tok := writePrivate(t, filepath.Join(dir, "token"), httpTestToken+"\n", 0o600)
	s := startHTTPServe(t, cfg, "127.0.0.1:0", tok)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	c, err := s.connect(ctx, map[string]string{"Authorization": "Bearer " + httpTestToken})
	if err != nil {
		t.Fatalf("connecting with the token: %v\n%s", err, s.stderr.String())
	}
	defer c.Close()
	list, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range list.Tools {
		names = append(names, tool.Name)
	}
	for _, want := range []string{"x402_quote", "x402_fetch", "x402_spending"} {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Errorf("tools/list over HTTP lacks %s: %v", want, names)
		}
	}
	r, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "x402_spending", Arguments: map[string]any{}}})
	if err != nil || r.IsError {
		t.Fatalf("x402_spending: %v %s", err, resultText(r))
	}
	if out := structuredJSON(r); gjson.Get(out, "max_per_payment_usd").String() == "" {
		t.Errorf("x402_spending output: %s", out)
	}

	// Without a valid token the request is answered 401 before MCP: no
	// session is created.
	wrong := []byte(httpTestToken)
	wrong[len(wrong)-1] ^= 1
	for name, mutate := range map[string]func(*http.Request){
		"no token":          func(*http.Request) {},
		"wrong token":       func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+string(wrong)) },
		"token prefix":      func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+httpTestToken[:40]) },
		"token and more":    func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+httpTestToken+"x") },
		"basic scheme":      func(r *http.Request) { r.Header.Set("Authorization", "Basic "+httpTestToken) },
		"bare token":        func(r *http.Request) { r.Header.Set("Authorization", httpTestToken) },
		"empty bearer":      func(r *http.Request) { r.Header.Set("Authorization", "Bearer ") },
		"token in a cookie": func(r *http.Request) { r.Header.Set("Cookie", "token="+httpTestToken) },
		"two headers": func(r *http.Request) {
			r.Header.Add("Authorization", "Bearer "+string(wrong))
			r.Header.Add("Authorization", "Bearer "+httpTestToken)
		},
	} {
		resp := rawInitialize(t, s.url, mutate)
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Mcp-Session-Id") != "" || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: status %d, session %q, WWW-Authenticate %q", name, resp.StatusCode, resp.Header.Get("Mcp-Session-Id"), resp.Header.Get("WWW-Authenticate"))
		}
	}
	if c2, err := s.connect(ctx, nil); err == nil {
		c2.Close()
		t.Error("an MCP client without the token got a session")
	}

	// The token alone is not enough from a foreign Host (DNS rebinding:
	// mcp-go's protection) or a foreign browser Origin.
	for name, mutate := range map[string]func(*http.Request){
		"foreign host":   func(r *http.Request) { r.Host = "attacker.example:80" },
		"foreign origin": func(r *http.Request) { r.Header.Set("Origin", "https://attacker.example") },
	} {
		resp := rawInitialize(t, s.url, func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+httpTestToken)
			mutate(r)
		})
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Mcp-Session-Id") != "" {
			t.Errorf("%s: status %d, session %q", name, resp.StatusCode, resp.Header.Get("Mcp-Session-Id"))
		}
	}
	// With the token and a local Host, a raw request gets a session: the
	// refusals above are about the header, not the raw client.
	resp := rawInitialize(t, s.url, func(r *http.Request) {
		r.Header.Set("Authorization", "bearer "+httpTestToken)
		r.Header.Set("Origin", "http://localhost:3000")
	})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Mcp-Session-Id") == "" {
		t.Errorf("valid raw initialize: status %d, session %q", resp.StatusCode, resp.Header.Get("Mcp-Session-Id"))
	}
	// A session id the server never issued is refused.
	req, _ := http.NewRequest(http.MethodPost, s.url, strings.NewReader(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+httpTestToken)
	req.Header.Set("Mcp-Session-Id", "mcp-session-00000000-0000-4000-8000-000000000000")
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("a made-up session id was accepted")
		}
	}

	log := s.stderr.String()
	if strings.Contains(log, httpTestToken[8:40]) || strings.Contains(log, testKey[2:]) {
		t.Errorf("the server log shows the token or the key:\n%s", log)
	}
	if !strings.Contains(log, "refused a request without a valid bearer token") || !strings.Contains(log, "payer=0x70997970C51812dc3A010C7d01b50e0d17dc79C8") {
		t.Errorf("server log:\n%s", log)
	}
}

// TestHTTPRefusesToStart checks the operator errors of the HTTP flags: each
// stops the server before it opens anything, says what to do, and never
// echoes the token.
func TestHTTPRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	cfg := keyFileConfig(t, dir)
	good := writePrivate(t, filepath.Join(dir, "token"), httpTestToken, 0o600)
	open := writePrivate(t, filepath.Join(dir, "open-token"), httpTestToken, 0o644)
	short := writePrivate(t, filepath.Join(dir, "short-token"), "only-twenty-chars-xx\n", 0o600)
	spaced := writePrivate(t, filepath.Join(dir, "spaced-token"), httpTestToken[:20]+" "+httpTestToken[20:], 0o600)
	big := writePrivate(t, filepath.Join(dir, "big-token"), strings.Repeat("x", 5000), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no token file", []string{"--http", "127.0.0.1:0"}, 2, "--http needs --token-file"},
		{"token file missing", []string{"--http", "127.0.0.1:0", "--token-file", filepath.Join(dir, "nope")}, 1, "cannot open the token file: no such file or directory (the path given is not shown"},
		{"token file readable by others", []string{"--http", "127.0.0.1:0", "--token-file", open}, 1, "chmod 600 " + open},
		{"token too short", []string{"--http", "127.0.0.1:0", "--token-file", short}, 1, "at least 32 are needed"},
		{"token with a space", []string{"--http", "127.0.0.1:0", "--token-file", spaced}, 1, "an HTTP header cannot carry"},
		{"token file too large", []string{"--http", "127.0.0.1:0", "--token-file", big}, 1, "larger than"},
		{"token file is a directory", []string{"--http", "127.0.0.1:0", "--token-file", dir}, 1, "not a regular file"},
		{"all interfaces", []string{"--http", "0.0.0.0:0", "--token-file", good}, 2, "--allow-remote"},
		{"no host", []string{"--http", ":8402", "--token-file", good}, 2, "--allow-remote"},
		{"not host:port", []string{"--http", "8402", "--token-file", good}, 2, "bad --http address"},
		{"token file without --http", []string{"--token-file", good}, 2, "only apply with --http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "token file readable by others" && runtime.GOOS == "windows" {
				t.Skip("no group/other mode bits on Windows")
			}
			r := runBin(t, hermeticEnv(), append([]string{"serve", "--config", cfg}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "hint:") && tc.code == 2 {
				t.Errorf("exit %d (want %d), stderr:\n%s\nwant it to contain %q", r.code, tc.code, r.stderr, tc.want)
			}
			if strings.Contains(r.stderr+r.stdout, httpTestToken[:20]) {
				t.Errorf("the token is echoed:\n%s", r.stderr)
			}
			if strings.Contains(r.stderr, "ledger open") {
				t.Errorf("the server got as far as the ledger:\n%s", r.stderr)
			}
		})
	}
}

// TestHTTPAllowRemote listens on every interface with --allow-remote: the
// server warns about TLS and still demands the token.
func TestHTTPAllowRemote(t *testing.T) {
	dir := t.TempDir()
	cfg := keyFileConfig(t, dir)
	tok := writePrivate(t, filepath.Join(dir, "token"), httpTestToken, 0o600)
	s := startHTTPServe(t, cfg, "0.0.0.0:0", tok, "--allow-remote")
	if !strings.Contains(s.stderr.String(), "terminate TLS in front") {
		t.Errorf("no TLS warning:\n%s", s.stderr.String())
	}
	// Go listens on [::] for 0.0.0.0 where it can; reach it over loopback.
	u, err := url.Parse(s.url)
	if err != nil {
		t.Fatal(err)
	}
	local := "http://" + net.JoinHostPort("127.0.0.1", u.Port()) + "/mcp"
	if resp := rawInitialize(t, local, func(*http.Request) {}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: status %d", resp.StatusCode)
	}
	if resp := rawInitialize(t, local, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+httpTestToken) }); resp.StatusCode != http.StatusOK {
		t.Errorf("with the token: status %d", resp.StatusCode)
	}
}

// TestHTTPBudgetsHoldAcrossTransports pays over HTTP on the local network
// until the daily budget is spent, then checks the chain and, from a
// stdio server on the same ledger, the spending report: both transports
// enforce one set of budgets.
func TestHTTPBudgetsHoldAcrossTransports(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
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
	dir := t.TempDir()
	tok := tokens.Token{Network: n.Chain.Network(), Address: n.Chain.TokenAddress(), Name: n.Chain.TokenName(), Version: n.Chain.TokenVersion()}
	cfg, err := writeDemoConfig(dir, signer.NewKey(key), tok, "max_per_payment = \"0.10\"\n[budget]\nday = \"0.03\"\n", "", "")
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := writePrivate(t, filepath.Join(dir, "token"), httpTestToken, 0o600)
	s := startHTTPServe(t, cfg, "127.0.0.1:0", tokenFile)
	c, err := s.connect(ctx, map[string]string{"Authorization": "Bearer " + httpTestToken})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	before, err := n.Chain.BalanceOf(ctx, payer)
	if err != nil {
		t.Fatal(err)
	}
	fetch := func(path string) *mcp.CallToolResult {
		t.Helper()
		r, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "x402_fetch", Arguments: map[string]any{"url": n.APIURL + path}}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, path := range []string{"/v2/weather?city=Paris", "/v1/joke"} {
		if r := fetch(path); r.IsError || gjson.Get(structuredJSON(r), "payment.transaction").String() == "" {
			t.Fatalf("%s over HTTP: %s", path, structuredJSON(r))
		}
	}
	if r := fetch("/v2/weather?city=Oslo"); !r.IsError || !strings.Contains(resultText(r), "budget") {
		t.Errorf("a payment beyond the daily budget over HTTP: %s", resultText(r))
	}
	after, err := n.Chain.BalanceOf(ctx, payer)
	if err != nil {
		t.Fatal(err)
	}
	if d := new(big.Int).Sub(before, after); d.Int64() != 30000 {
		t.Errorf("payer spent %s, want 30000 (0.01 + 0.02)", d)
	}

	stdio, err := startStdioClient(ctx, bin, cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer stdio.Close()
	r, err := stdio.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "x402_spending", Arguments: map[string]any{}}})
	if err != nil || r.IsError {
		t.Fatalf("x402_spending over stdio: %v %s", err, resultText(r))
	}
	var out struct {
		Budgets []struct {
			Key   string `json:"policy_key"`
			Spent string `json:"spent_usd"`
			Left  string `json:"left_usd"`
		} `json:"budgets"`
	}
	if err := json.Unmarshal([]byte(structuredJSON(r)), &out); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, b := range out.Budgets {
		if b.Key == "budget.day" {
			found = true
			if b.Spent != "0.03" {
				t.Errorf("stdio server sees %s spent today, want 0.03 (paid over HTTP): %+v", b.Spent, out.Budgets)
			}
		}
	}
	if !found {
		t.Errorf("no budget.day in %s", structuredJSON(r))
	}
}
