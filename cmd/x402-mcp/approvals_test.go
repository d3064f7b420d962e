package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/x402-mcp/x402-mcp/ledger"
)

const (
	apPayTo = "0x2222222222222222222222222222222222222222"
	apAsset = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
	apURL   = "https://api.example.com/v1/forecast?city=Lisbon"
	// apRequest is how the approval shows the request: the host on a line
	// of its own, then the method and the path.
	apRequest = "GET /v1/forecast?city=Lisbon"
)

// askApproval records a pending approval for 0.25 USDC, as a server
// whose host cannot ask the human would.
func askApproval(t *testing.T, led *ledger.Ledger, terms string, ttl time.Duration) ledger.Approval {
	t.Helper()
	a, err := led.RequestApproval(context.Background(), ledger.Approval{
		Binding:    sha256.Sum256([]byte(terms)),
		RequestKey: sha256.Sum256([]byte("GET " + apURL + " " + terms)),
		Method:     "GET", URL: apURL, Host: "api.example.com",
		Network: "eip155:8453", Asset: common.HexToAddress(apAsset), Token: "USDC", Decimals: 6,
		Amount: big.NewInt(250_000), USDNano: 250_000_000, PayTo: common.HexToAddress(apPayTo),
		Requester: "claude-ai (pid 4242)",
	}, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func approvalState(t *testing.T, led *ledger.Ledger, id string) ledger.Approval {
	t.Helper()
	a, err := led.ApprovalByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestApprovalCommands drives approvals, approve and deny through the
// binary against a ledger that this test (as a server would) shares with
// it, and reads the outcome back from the ledger.
func TestApprovalCommands(t *testing.T) {
	dir := t.TempDir()
	cfg := writePrivate(t, filepath.Join(dir, "config.toml"), "ledger = \"ledger.db\"\n", 0o600)
	led, err := ledger.Open(filepath.Join(dir, "ledger.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()

	r := runBin(t, nil, "approvals", "--config", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, "no approvals are pending") || !strings.Contains(r.stdout, "approval_above") {
		t.Errorf("no approvals: %+v", r)
	}
	if r = runBin(t, nil, "approvals", "--config", cfg, "--json"); r.code != 0 || strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("no approvals, JSON: %+v", r)
	}

	yes := askApproval(t, led, "yes", 15*time.Minute)
	no := askApproval(t, led, "no", 15*time.Minute)
	late := askApproval(t, led, "late", time.Millisecond)
	time.Sleep(5 * time.Millisecond)

	r = runBin(t, nil, "approvals", "--config", cfg)
	for _, want := range []string{yes.ID, no.ID, "pending", "0.25 USDC", "api.example.com", apPayTo, apRequest, "claude-ai (pid 4242)", "in 14m", "x402-mcp approve ID"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("approvals table lacks %q:\n%s", want, r.stdout)
		}
	}
	if r.code != 0 || strings.Contains(r.stdout, late.ID) {
		t.Errorf("approvals table (the expired one must not be listed): %+v", r)
	}

	r = runBin(t, nil, "approvals", "--json", "--config", cfg)
	var rows []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || r.code != 0 || len(rows) != 2 {
		t.Fatalf("approvals --json: %v %+v", err, r)
	}
	row := rows[1] // newest first: yes was asked before no
	for k, want := range map[string]any{"id": yes.ID, "status": "pending", "amount": "0.25", "amount_atomic": "250000",
		"token": "USDC", "asset": apAsset, "network": "eip155:8453", "pay_to": apPayTo, "host": "api.example.com",
		"method": "GET", "url": apURL, "target": "/v1/forecast?city=Lisbon", "requester": "claude-ai (pid 4242)", "decided": "", "record_id": 0.0} {
		if row[k] != want {
			t.Errorf("approvals --json: %s = %#v, want %#v", k, row[k], want)
		}
	}
	for _, k := range []string{"created", "expires"} {
		if _, err := time.Parse(time.RFC3339, fmt.Sprint(row[k])); err != nil {
			t.Errorf("approvals --json: %s = %v", k, row[k])
		}
	}

	// Approve, with the flag after the ID.
	r = runBin(t, nil, "approve", yes.ID, "--config", cfg)
	for _, want := range []string{"approved " + yes.ID, "api.example.com", "0.25 USDC (250000 atomic units, about 0.25 USD)", apAsset,
		"eip155:8453", apPayTo, apRequest, "claude-ai (pid 4242)", "expires",
		"the agent can now repeat the same x402_fetch call; it will pay exactly these terms once, before " + yes.Expires.UTC().Format("2006-01-02 15:04:05 UTC")} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("approve output lacks %q:\n%s", want, r.stdout)
		}
	}
	if got := approvalState(t, led, yes.ID); r.code != 0 || got.State != ledger.ApprovalApproved {
		t.Errorf("approve: %+v; approval is %s", r, got.State)
	}

	// Deny, with the flag before an ID typed in capitals.
	r = runBin(t, nil, "deny", "--config", cfg, strings.ToUpper(no.ID))
	if got := approvalState(t, led, no.ID); r.code != 0 || !strings.Contains(r.stdout, "denied "+no.ID) ||
		!strings.Contains(r.stdout, "nothing was paid") || got.State != ledger.ApprovalDenied {
		t.Errorf("deny: %+v; approval is %s", r, got.State)
	}

	// Decisions are final, and say why.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"approve", no.ID}, "cannot approve " + no.ID + ": it was already denied"},
		{[]string{"deny", yes.ID}, "cannot deny " + yes.ID + ": it was already approved"},
		{[]string{"approve", yes.ID}, "it was already approved"},
		{[]string{"approve", late.ID}, "cannot approve " + late.ID + ": it expired at"},
		{[]string{"approve", "ap-zzzzzzzz"}, `no approval "ap-zzzzzzzz"`},
		{[]string{"deny", "nonsense"}, "hint: run x402-mcp approvals"},
	} {
		r := runBin(t, nil, append(tc.args, "--config", cfg)...)
		if r.code != 1 || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "hint:") || r.stdout != "" {
			t.Errorf("%v: %+v, want exit 1 and %q", tc.args, r, tc.want)
		}
	}
	if s := approvalState(t, led, late.ID); s.State != ledger.ApprovalPending || s.Status(time.Now()) != "expired" {
		t.Errorf("expired approval is now %+v", s)
	}
	if s := approvalState(t, led, no.ID).State; s != ledger.ApprovalDenied {
		t.Errorf("denied approval is now %s", s)
	}

	// The agent's repeat of the call pays with it, once.
	paid, err := led.Reserve(context.Background(), ledger.Record{
		URL: apURL, Host: "api.example.com", Network: "eip155:8453", Asset: common.HexToAddress(apAsset), Token: "USDC", Decimals: 6,
		Amount: big.NewInt(250_000), USDNano: 250_000_000, PayTo: common.HexToAddress(apPayTo),
		Payer: common.HexToAddress("0x3333333333333333333333333333333333333333"), Nonce: [32]byte(bytes.Repeat([]byte{0xab}, 32)),
		ValidBefore: time.Now().Add(time.Hour).Unix(),
		Approval:    &ledger.ApprovalUse{ID: yes.ID, Binding: yes.Binding},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r = runBin(t, nil, "approve", yes.ID, "--config", cfg)
	if r.code != 1 || !strings.Contains(r.stderr, fmt.Sprintf("already used by payment %d", paid.ID)) {
		t.Errorf("approving a used approval: %+v", r)
	}

	r = runBin(t, nil, "approvals", "--all", "--config", cfg)
	for _, want := range []string{fmt.Sprintf("used (payment %d)", paid.ID), "denied", "expired", late.ID} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("approvals --all lacks %q: %+v", want, r)
		}
	}
	r = runBin(t, nil, "approvals", "--all", "--json", "-n", "2", "--config", cfg)
	rows = nil
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || len(rows) != 2 {
		t.Fatalf("approvals --all --json -n 2: %v %+v", err, r)
	}
	if rows[0]["id"] != late.ID || rows[0]["status"] != "expired" || rows[1]["status"] != "denied" || rows[1]["decided"] == "" {
		t.Errorf("approvals --all --json: %v", rows)
	}
	r = runBin(t, nil, "approvals", "--all", "--json", "--config", cfg)
	if !strings.Contains(r.stdout, `"status": "used"`) || !strings.Contains(r.stdout, fmt.Sprintf(`"record_id": %d`, paid.ID)) {
		t.Errorf("approvals --all --json lacks the used approval: %s", r.stdout)
	}
	if r = runBin(t, nil, "approvals", "--config", cfg); r.code != 0 || !strings.Contains(r.stdout, "no approvals are pending") {
		t.Errorf("nothing left pending: %+v", r)
	}
}

func TestApprovalCommandUsage(t *testing.T) {
	cfg := writePrivate(t, filepath.Join(t.TempDir(), "config.toml"), "ledger = \"ledger.db\"\n", 0o600)
	for _, args := range [][]string{
		{"approve"},
		{"approve", "--config", cfg},
		{"deny", "ap-aaaaaaaa", "ap-bbbbbbbb", "--config", cfg},
		{"approve", "ap-aaaaaaaa", "--json"},
		{"approvals", "pending"},
		{"approvals", "-n", "0"},
	} {
		r := runBin(t, nil, args...)
		if r.code != 2 || !strings.Contains(strings.ToLower(r.stderr), "usage") {
			t.Errorf("%v: %+v, want exit 2 with usage", args, r)
		}
	}
}

// hidden are characters that make text read as other text: overrides,
// isolates, zero-width characters and controls.
const hidden = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b\u200c\u200d\u2060\ufeff\u200e\u200f\x1b\r\n"

// TestApprovalCommandsShowCleanTerms: an approval whose URL and requester
// were written to mislead is shown with the host first, the path in its
// wire form, clipped, and none of the hidden characters.
func TestApprovalCommandsShowCleanTerms(t *testing.T) {
	dir := t.TempDir()
	cfg := writePrivate(t, filepath.Join(dir, "config.toml"), "ledger = \"ledger.db\"\n", 0o600)
	led, err := ledger.Open(filepath.Join(dir, "ledger.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	spoof := "for https://api.openweather.example … Pre-approved by your administrator"
	// The ledger refuses invisible characters in a URL; what it lets
	// through (user info, spaces, a long query) must not mislead either.
	hostile := "https://api.openweather.example@evil.example/w?q=é" + strings.Repeat("x", 90) + " " + spoof
	a, err := led.RequestApproval(context.Background(), ledger.Approval{
		Binding: sha256.Sum256([]byte("hostile")), RequestKey: sha256.Sum256([]byte("hostile")),
		Method: "GET", URL: hostile, Host: "evil.example",
		Network: "eip155:8453", Asset: common.HexToAddress(apAsset), Token: "USDC", Decimals: 6,
		Amount: big.NewInt(250_000), USDNano: 250_000_000, PayTo: common.HexToAddress(apPayTo),
		Requester: "agent\u202e\nApproved by admin" + hidden,
	}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{}
	for _, args := range [][]string{{"approvals"}, {"approvals", "--json"}, {"approve", a.ID}} {
		r := runBin(t, nil, append(args, "--config", cfg)...)
		if r.code != 0 {
			t.Fatalf("%v: %+v", args, r)
		}
		outputs[strings.Join(args, " ")] = r.stdout
	}
	for name, out := range outputs {
		if i := strings.IndexAny(out, hidden[:len(hidden)-1]); i >= 0 { // a newline may end a line
			t.Errorf("%s shows a hidden character at %d:\n%q", name, i, out)
		}
		for _, bad := range []string{"Pre-approved by your administrator", "api.openweather.example@", "\nApproved by admin"} {
			if strings.Contains(out, bad) {
				t.Errorf("%s shows %q:\n%s", name, bad, out)
			}
		}
	}
	approve := outputs["approve "+a.ID]
	lines := strings.Split(approve, "\n")
	if len(lines) < 2 || strings.Join(strings.Fields(lines[1]), " ") != "host evil.example" {
		t.Errorf("approve does not show the host first:\n%s", approve)
	}
	if !strings.Contains(approve, "GET /w?q=%C3%A9xxx") || !strings.Contains(approve, "…") {
		t.Errorf("approve does not show the path in its wire form, clipped:\n%s", approve)
	}
}
