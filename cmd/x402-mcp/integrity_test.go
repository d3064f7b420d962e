package main

import (
	"database/sql"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/tidwall/gjson"

	"github.com/x402-mcp/x402-mcp/internal/shellquote"
	"github.com/x402-mcp/x402-mcp/localnet"
)

// The tests in this file break the ledger from outside, as another process
// or a hijacked agent with a shell would, and check that the server then
// pays nothing: every paying call answers with the message and the command
// that puts it right (as does stderr, at once), and the payer's balance on
// chain does not move.

// payOnce pays for one weather report through the official client and
// returns the payer's balance after it.
func payOnce(t *testing.T, n *localnet.Network, cfg string, payer common.Address, city string) *big.Int {
	t.Helper()
	before := chainBalance(t, n, payer)
	r := called(t, tsClient(t, plan(cfg, fetchStep(map[string]any{"url": n.APIURL + "/v2/weather?city=" + city}))))
	if s := r[0].Structured(); r[0].IsError() || !gjson.Get(s, "payment.settled").Bool() {
		t.Fatalf("paid fetch: %s %s", s, r[0].Text())
	}
	after := chainBalance(t, n, payer)
	if new(big.Int).Sub(before, after).Int64() != 10000 {
		t.Fatalf("payer paid %s, want 10000", new(big.Int).Sub(before, after))
	}
	return after
}

// refusesToPay runs the server with a paid fetch and wants it refused
// before anything is signed, with every want in what the call answers and
// in what the server wrote on stderr. It returns the call's answer.
func refusesToPay(t *testing.T, n *localnet.Network, cfg string, payer common.Address, want ...string) string {
	t.Helper()
	before := chainBalance(t, n, payer)
	run := tsClient(t, plan(cfg, fetchStep(map[string]any{"url": n.APIURL + "/v2/weather?city=Refused"})))
	r := called(t, run)[0]
	msg := r.Text()
	if !r.IsError() || !strings.Contains(msg, "could not start, so it pays nothing") {
		t.Fatalf("the server paid from a broken ledger: %s %s", r.Structured(), msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("the refusal does not say %q:\n%s", w, tail(msg, 3000))
		}
		if !strings.Contains(run.Stderr, w) {
			t.Errorf("stderr does not say %q:\n%s", w, tail(run.Stderr, 3000))
		}
	}
	if after := chainBalance(t, n, payer); after.Cmp(before) != 0 {
		t.Errorf("payer balance moved from %s to %s", before, after)
	}
	return msg
}

func ledgerOf(cfg string) string { return filepath.Join(filepath.Dir(cfg), "ledger.db") }

// The reported attack: resetting the budget's sums in the ledger file.
// The plain UPDATE is refused by the ledger's triggers; with the trigger
// dropped first it goes through, and the server then refuses to pay,
// naming the difference and the commands to see and repair it. The
// read-only history still shows the payments, with a warning; repair
// recomputes the sums from the records and paying works again.
func TestTamperedLedgerRefusesToPay(t *testing.T) {
	tsClientDir(t)
	n, cfg, payer := tsDevnet(t, "max_per_payment = \"0.10\"\n[budget]\nday = \"0.015\"\n")
	payOnce(t, n, cfg, payer, "Oslo")

	db, err := sql.Open("sqlite", ledgerOf(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE sums SET usd_nano = 0`); err == nil || !strings.Contains(err.Error(), "sums change only with the records") {
		t.Fatalf("UPDATE sums: %v", err)
	}
	for _, q := range []string{`DROP TRIGGER sums_written`, `UPDATE sums SET usd_nano = 0`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	abs, _ := filepath.Abs(cfg)
	refusesToPay(t, n, cfg, payer,
		"was changed outside x402-mcp, payments are refused",
		"trigger sums_written is missing",
		"lifetime total (all hosts) is 0.00 USD for 1 payment, but the records add up to 0.01 USD for 1",
		"ledger verify --config "+shellquote.Quote(abs),
		"ledger repair --config "+shellquote.Quote(abs))

	r := runBin(t, nil, "ledger", "verify", "--config", cfg)
	if r.code != 1 || !strings.Contains(r.stdout, "trigger sums_written is missing") || !strings.Contains(r.stdout, "but the records add up to 0.01 USD") {
		t.Errorf("ledger verify: %+v", r)
	}
	r = runBin(t, nil, "history", "--config", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, "settled") || !strings.Contains(r.stderr, "warning:") || !strings.Contains(r.stderr, "for inspection only") {
		t.Errorf("history on a tampered ledger: %+v", r)
	}
	r = runBin(t, nil, "approve", "ap-aaaaaaaa", "--config", cfg)
	if r.code != 1 || !strings.Contains(r.stderr, "changed outside x402-mcp") {
		t.Errorf("approve on a tampered ledger: %+v", r)
	}

	r = runBin(t, nil, "ledger", "repair", "--config", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, "put right: trigger sums_written is missing") || !strings.Contains(r.stdout, "rewritten: lifetime total (all hosts)") {
		t.Fatalf("ledger repair: %+v", r)
	}
	if r := runBin(t, nil, "ledger", "verify", "--config", cfg); r.code != 0 || !strings.Contains(r.stdout, "whole") {
		t.Errorf("ledger verify after repair: %+v", r)
	}
	// The budget counts the first payment again: the second one is over
	// the day's 0.015 USD.
	before := chainBalance(t, n, payer)
	res := called(t, tsClient(t, plan(cfg, fetchStep(map[string]any{"url": n.APIURL + "/v2/weather?city=Bergen"}))))
	if !res[0].IsError() || !strings.Contains(res[0].Text(), "daily budget") {
		t.Errorf("second payment after repair: %s", res[0].Text())
	}
	if after := chainBalance(t, n, payer); after.Cmp(before) != 0 {
		t.Errorf("payer balance moved from %s to %s", before, after)
	}
}

// A ledger, or its directory, that group or others can write is refused
// with the chmod that fixes it; after the chmod the server pays.
func TestWritableLedgerRefusesToPay(t *testing.T) {
	tsClientDir(t)
	for _, c := range []struct {
		name string
		path func(cfg string) string
		mode os.FileMode
		hint string
	}{
		{"file g+w", ledgerOf, 0o620, "run chmod 600 "},
		{"directory o+w", func(cfg string) string { return filepath.Dir(cfg) }, 0o702, "run chmod go-w "},
	} {
		t.Run(c.name, func(t *testing.T) {
			n, cfg, payer := tsDevnet(t, "max_per_payment = \"0.10\"\n")
			if r := runBin(t, nil, "history", "--config", cfg); r.code != 0 {
				t.Fatalf("history (creates the ledger): %+v", r)
			}
			p := c.path(cfg)
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, c.mode); err != nil {
				t.Fatal(err)
			}
			refusesToPay(t, n, cfg, payer, "writable by group or others", c.hint+shellquote.Quote(p))
			if r := runBin(t, nil, "history", "--config", cfg); r.code != 1 || !strings.Contains(r.stderr, c.hint+shellquote.Quote(p)) {
				t.Errorf("history: %+v", r)
			}
			if err := os.Chmod(p, st.Mode().Perm()); err != nil {
				t.Fatal(err)
			}
			payOnce(t, n, cfg, payer, "Oslo")
		})
	}
}

// A ledger deleted after use is not a fresh start with an empty budget:
// the server refuses, naming the command that starts over on purpose;
// that command, run as printed, works.
func TestDeletedLedgerRefusesToPay(t *testing.T) {
	tsClientDir(t)
	n, cfg, payer := tsDevnet(t, "max_per_payment = \"0.10\"\n")
	payOnce(t, n, cfg, payer, "Oslo")
	for _, s := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(ledgerOf(cfg) + s); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	msg := refusesToPay(t, n, cfg, payer, ledgerOf(cfg)+" is missing or empty, but a ledger was created there", "to start over with an empty ledger")
	m := regexp.MustCompile(`run (rm ('[^']+'|\S+))`).FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("no rm command in:\n%s", tail(msg, 3000))
	}
	if _, err := os.Stat(ledgerOf(cfg)); !os.IsNotExist(err) {
		t.Errorf("the refused server created a ledger: %v", err)
	}
	if out, err := exec.Command("sh", "-c", m[1]).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v %s", m[1], err, out)
	}
	payOnce(t, n, cfg, payer, "Bergen")
}
