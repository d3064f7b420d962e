package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/tidwall/gjson"
)

// chromiumPath is Debian's Chromium, the browser the console's browser
// test drives. Nothing here downloads one.
const chromiumPath = "/usr/bin/chromium"

// consoleProcess is a running `x402-mcp console`: its login link and
// address.
type consoleProcess struct {
	login string
	base  string
}

// startConsole runs the built binary's console on a free loopback port and
// reads the one-time login link it prints. The process is killed by its
// PID when the test ends.
func startConsole(t *testing.T, cfg string) consoleProcess {
	t.Helper()
	cmd := exec.Command(bin, "console", "--config", cfg, "--listen", "127.0.0.1:0")
	cmd.Env = hermeticEnv()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
		cmd.Wait()
		if t.Failed() {
			t.Logf("console stderr:\n%s", tail(stderr.String(), 8000))
		}
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		re := regexp.MustCompile(`http://127\.0\.0\.1:\d+/login\?code=[0-9a-f]{64}`)
		sent := false
		for sc.Scan() {
			if m := re.FindString(sc.Text()); m != "" && !sent {
				found <- m
				sent = true
			}
		}
		if !sent {
			close(found)
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case link, ok := <-found:
		if !ok {
			t.Fatalf("the console printed no login link\nstderr:\n%s", stderr.String())
		}
		base, _, _ := strings.Cut(link, "/login")
		return consoleProcess{login: link, base: base}
	case <-time.After(30 * time.Second):
		t.Fatalf("the console printed no login link in 30s\nstderr:\n%s", stderr.String())
	}
	return consoleProcess{}
}

// browser starts headless Chromium with a fresh profile. Without Chromium
// the test is skipped, except under CI=true, where it fails: a skipped
// browser test would hide the bugs it exists for.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		msg := fmt.Sprintf("the console's browser test needs Debian's Chromium at %s (apt-get install -y chromium): %v", chromiumPath, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	return ctx
}

// waitPage waits until the JavaScript expression is true in the page,
// across navigations.
func waitPage(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		lastErr = err
		time.Sleep(200 * time.Millisecond)
	}
	html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	t.Fatalf("waiting for %s: not so after 30s (%v)\npage:\n%s", what, lastErr, tail(html, 6000))
}

// saveScreenshot writes a full-page PNG into $X402_MCP_ARTIFACTS (created
// if needed), else into the test's temporary directory.
func saveScreenshot(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("X402_MCP_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	return path
}

// TestConsoleBrowser drives the operator console in a real browser through
// the built binary, on the local network: log in with the printed
// one-time link; a payment the agent makes (official TypeScript client)
// appears without a reload; a payment above the approval threshold waits,
// is approved with the page's button, and the agent's repeat pays it
// exactly once on chain.
func TestConsoleBrowser(t *testing.T) {
	ctx := browser(t)
	tsClientDir(t)
	n, cfg, payer := tsDevnet(t, "max_per_payment = \"0.10\"\napproval_above = \"0.015\"\n[budget]\nday = \"0.50\"\nhour = \"0.10\"\n")
	// The local chain has no real explorer; the link is checked, not
	// followed.
	withExplorer(t, cfg, "https://explorer.invalid/tx/")
	payer0 := chainBalance(t, n, payer)
	con := startConsole(t, cfg)

	if err := chromedp.Do(ctx, chromedp.Navigate(con.login)); err != nil {
		t.Fatal(err)
	}
	waitPage(t, ctx, "the console after login", `location.pathname === "/" && document.getElementById("approvals") !== null`)
	waitPage(t, ctx, "the live stream", `document.querySelector("#live-status.on") !== null`)
	// The marker survives only if the page is updated in place.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`)); err != nil {
		t.Fatal(err)
	}

	// The agent pays 0.01 for the weather: it appears without a reload.
	weather := fetchStep(map[string]any{"url": n.APIURL + "/v2/weather?city=Paris"})
	if r := called(t, tsClient(t, plan(cfg, weather)))[0]; !gjson.Get(r.Structured(), "payment.settled").Bool() {
		t.Fatalf("weather was not paid: %s", r.Text())
	}
	waitPage(t, ctx, "the payment, live", `window.notReloaded === true && document.querySelectorAll("#payments tr[id^=payment-] .tag.settled").length === 1`)
	waitPage(t, ctx, "the explorer link", `document.querySelector('#payments a[href^="https://explorer.invalid/tx/0x"]') !== null`)

	// 0.02 for a joke is above the threshold: it waits for the human.
	joke := fetchStep(map[string]any{"url": n.APIURL + "/v1/joke"})
	id := approvalOf(t, called(t, tsClient(t, plan(cfg, joke)))[0])
	waitPage(t, ctx, "the pending approval, live", fmt.Sprintf(`window.notReloaded === true && document.getElementById(%q) !== null`, "approval-"+id))
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#approval-"+id)))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"0.02", "/v1/joke", "127.0.0.1", "payee", "asked by", "Approve", "Deny"} {
		if !strings.Contains(text, want) {
			t.Errorf("approval card lacks %q:\n%s", want, text)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#approval-"+id+" button.approve"))); err != nil {
		t.Fatal(err)
	}
	waitPage(t, ctx, "the confirmation", fmt.Sprintf(`document.querySelector(".flash") !== null && document.querySelector(".flash").textContent.includes(%q)`, "Approved "+id))
	for _, a := range approvalsJSON(t, cfg, true) {
		if a.Get("id").String() == id && a.Get("status").String() != "approved" {
			t.Fatalf("after the click the approval is %s", a.Get("status"))
		}
	}

	// The agent repeats the call and pays, once.
	if r := called(t, tsClient(t, plan(cfg, joke)))[0]; !gjson.Get(r.Structured(), "payment.settled").Bool() ||
		gjson.Get(r.Structured(), "payment.amount_atomic").String() != "20000" {
		t.Fatalf("the repeat after approval did not pay: %s", r.Text())
	}
	if r := called(t, tsClient(t, plan(cfg, joke)))[0]; gjson.Get(r.Structured(), "payment.settled").Bool() {
		t.Fatalf("a used approval paid again: %s", r.Text())
	}
	if d := new(big.Int).Sub(payer0, chainBalance(t, n, payer)); d.Int64() != 30_000 {
		t.Errorf("payer spent %s atomic units, want 30000 (0.01 weather + 0.02 joke once)", d)
	}
	waitPage(t, ctx, "both payments", `document.querySelectorAll("#payments tr[id^=payment-] .tag.settled").length === 2`)

	// One more request waits, so the picture shows every part.
	summarize := fetchStep(map[string]any{"url": n.APIURL + "/v2/summarize", "method": "POST",
		"headers": map[string]any{"Content-Type": "application/json"}, "body": `{"text":"The console shows this."}`})
	pending := approvalOf(t, called(t, tsClient(t, plan(cfg, summarize)))[0])
	waitPage(t, ctx, "the second approval", fmt.Sprintf(`document.getElementById(%q) !== null`, "approval-"+pending))
	page, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"daily budget", "0.03 USD of 0.50 USD", "hourly budget", "frees:", "Per hour", "By host", "By payee", "Policy in force", "(default)"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	saveScreenshot(t, ctx, "console.png")

	// The login link was for one use.
	other := browser(t)
	if err := chromedp.Do(other, chromedp.Navigate(con.login)); err != nil {
		t.Fatal(err)
	}
	waitPage(t, other, "the refusal of a used link", `document.body.innerText.includes("already used or has expired")`)
}

// withExplorer adds an explorer URL to the config's [[networks]] table.
func withExplorer(t *testing.T, cfg, explorer string) {
	t.Helper()
	rewriteConfig(t, cfg, `(?m)^rpc_url = .*$`, fmt.Sprintf("$0\nexplorer = %q", explorer))
}

// TestConsoleCommandRefuses: the console listens on loopback unless told
// --allow-remote, and refuses a token file others can read, with a hint.
func TestConsoleCommandRefuses(t *testing.T) {
	dir := t.TempDir()
	cfg := writePrivate(t, filepath.Join(dir, "config.toml"), "ledger = \"ledger.db\"\n", 0o600)
	for _, addr := range []string{"0.0.0.0:0", ":8405", "192.0.2.1:8405"} {
		r := runBin(t, hermeticEnv(), "console", "--config", cfg, "--listen", addr)
		if r.code != 2 || !strings.Contains(r.stderr, "would accept connections from other machines") ||
			!strings.Contains(r.stderr, "--allow-remote and terminate TLS") || r.stdout != "" {
			t.Errorf("--listen %s: %+v", addr, r)
		}
	}
	if r := runBin(t, hermeticEnv(), "console", "--config", cfg, "--listen", "nonsense"); r.code != 2 || !strings.Contains(r.stderr, "bad --listen address") {
		t.Errorf("bad --listen: %+v", r)
	}
	tok := writePrivate(t, filepath.Join(dir, "token"), strings.Repeat("a", 64)+"\n", 0o644)
	r := runBin(t, hermeticEnv(), "console", "--config", cfg, "--listen", "127.0.0.1:0", "--token-file", tok)
	if r.code != 1 || !strings.Contains(r.stderr, "accessible by group or others") || !strings.Contains(r.stderr, "chmod 600") || strings.Contains(r.stdout, "login") {
		t.Errorf("readable token file: %+v", r)
	}
}
