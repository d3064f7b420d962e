package main

import (
	"fmt"
	"math/big"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tidwall/gjson"
)

// hostsOnlyPolicy is a policy file written only to add a host allow list:
// it names no budget and no loop breaker, so the defaults (1.00 USD in any
// 24 hours, 30 payments a minute, 0.10 USD a payment) must hold.
func hostsOnlyPolicy(apiURL string) string {
	u, err := url.Parse(apiURL)
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf("[hosts]\nallow = [%q]\n", u.Hostname())
}

// policyPathOf is the policy file writeDemoConfig put beside cfg.
func policyPathOf(t *testing.T, cfg string) string {
	t.Helper()
	return filepath.Join(filepath.Dir(cfg), "policy.toml")
}

// paidFetches runs count fetches of path (distinct queries, so each is a
// new purchase) with the official client and returns the results.
func paidFetches(t *testing.T, cfg, base string, count int) []tsResult {
	t.Helper()
	steps := make([]tsStep, count)
	for i := range steps {
		steps[i] = fetchStep(map[string]any{"url": fmt.Sprintf("%s?i=%d", base, i)})
	}
	return called(t, tsClient(t, plan(cfg, steps...)))
}

// ledgerCount is how many payments the ledger holds: one per signature.
func ledgerCount(t *testing.T, cfg string) int {
	t.Helper()
	r := runBin(t, hermeticEnv(), "history", "--json", "-n", "1000", "--config", cfg)
	if r.code != 0 || !gjson.Valid(r.stdout) {
		t.Fatalf("history: %+v", r)
	}
	return len(gjson.Parse(r.stdout).Array())
}

// TestDefaultsSurviveHostAllowList: through the binary and the local chain,
// a policy file that only adds a host allow list keeps the default loop
// breaker (the 31st payment in a minute is refused) and the default daily
// budget (refused once 1.00 USD is spent), and nothing is signed for a
// refused payment. The issue this pins: such a file used to drop both.
func TestDefaultsSurviveHostAllowList(t *testing.T) {
	tsClientDir(t)
	t.Run("loop breaker", func(t *testing.T) {
		var price atomic.Int64
		price.Store(1) // one atomic unit: far from any budget
		n, cfg, payer := tsDevnet(t, "", dynamicRoute("/v2/cheap", &price))
		writePrivate(t, policyPathOf(t, cfg), hostsOnlyPolicy(n.APIURL), 0o600)
		payer0, payee0 := chainBalance(t, n, payer), chainBalance(t, n, n.PayTo)

		res := paidFetches(t, cfg, n.APIURL+"/v2/cheap", 31)
		for i, r := range res[:30] {
			if r.IsError() || !gjson.Get(r.Structured(), "payment.settled").Bool() {
				t.Fatalf("payment %d of 30 in a minute: %s %s", i+1, r.Text(), r.Structured())
			}
		}
		last := res[30]
		if !last.IsError() || !strings.Contains(last.Text(), "max_payments_per_minute") || !strings.Contains(last.Text(), "30 payments in the last minute") ||
			gjson.Get(last.Structured(), "payment").Exists() {
			t.Errorf("31st payment in a minute: %s %s", last.Text(), last.Structured())
		}
		if d := new(big.Int).Sub(payer0, chainBalance(t, n, payer)); d.Int64() != 30 {
			t.Errorf("payer spent %s atomic units, want 30 (30 payments of 1)", d)
		}
		if d := new(big.Int).Sub(chainBalance(t, n, n.PayTo), payee0); d.Int64() != 30 {
			t.Errorf("payee received %s atomic units, want 30", d)
		}
		if c := ledgerCount(t, cfg); c != 30 {
			t.Errorf("the ledger holds %d payments, want 30: something was signed for the refused one", c)
		}
		if h := n.API.Hits("/v2/cheap"); h != 30 {
			t.Errorf("the paid handler ran %d times, want 30", h)
		}
	})
	t.Run("daily budget", func(t *testing.T) {
		var price atomic.Int64
		price.Store(100_000) // 0.10, the default cap: ten of them are the default day
		n, cfg, payer := tsDevnet(t, "", dynamicRoute("/v2/dime", &price))
		writePrivate(t, policyPathOf(t, cfg), hostsOnlyPolicy(n.APIURL), 0o600)
		payer0, payee0 := chainBalance(t, n, payer), chainBalance(t, n, n.PayTo)

		res := paidFetches(t, cfg, n.APIURL+"/v2/dime", 11)
		for i, r := range res[:10] {
			if r.IsError() || !gjson.Get(r.Structured(), "payment.settled").Bool() {
				t.Fatalf("payment %d of 10 within the day: %s %s", i+1, r.Text(), r.Structured())
			}
		}
		last := res[10]
		if !last.IsError() || !strings.Contains(last.Text(), "budget.day") || !strings.Contains(last.Text(), "1.00") ||
			gjson.Get(last.Structured(), "payment").Exists() {
			t.Errorf("the payment past the default daily budget: %s %s", last.Text(), last.Structured())
		}
		if d := new(big.Int).Sub(payer0, chainBalance(t, n, payer)); d.Int64() != 1_000_000 {
			t.Errorf("payer spent %s atomic units, want 1000000 (the default 1.00 a day)", d)
		}
		if d := new(big.Int).Sub(chainBalance(t, n, n.PayTo), payee0); d.Int64() != 1_000_000 {
			t.Errorf("payee received %s atomic units, want 1000000", d)
		}
		if c := ledgerCount(t, cfg); c != 10 {
			t.Errorf("the ledger holds %d payments, want 10: something was signed for the refused one", c)
		}
	})
}

// TestPolicyCheckMarksDefaults: policy check of a file with only a host
// allow list lists every limit still in force, marked (default), and the
// allow list as the file's; "none" shows as turned off.
func TestPolicyCheckMarksDefaults(t *testing.T) {
	dir := t.TempDir()
	hostsOnly := writePrivate(t, filepath.Join(dir, "hosts.toml"), "[hosts]\nallow = [\"api.example.com\"]\n", 0o600)
	r := runBin(t, hermeticEnv(), "policy", "check", hostsOnly)
	for _, want := range []string{
		"Each payment: at most 0.10 USD (default)\n",
		"Spending: at most 1.00 USD in any 24 hours (default)\n",
		"Rate: at most 30 payments a minute, all hosts together (default)\n",
		"Hosts: only api.example.com (policy file)\n",
		"Authorizations: valid for at most 300 seconds (5 minutes) (default)\n",
		"Plain http: only to this machine (loopback) (default)\n",
		"Payment flows: only the standard one, where the server settles after doing the work (default)\n",
		"(default): the file does not set this rule",
	} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("policy check lacks %q: %+v", want, r)
		}
	}
	off := writePrivate(t, filepath.Join(dir, "off.toml"), "max_payments_per_minute = \"none\"\n[budget]\nday = \"none\"\nweek = \"5\"\n", 0o600)
	r = runBin(t, hermeticEnv(), "policy", "check", off)
	for _, want := range []string{
		"Spending: no limit in any 24 hours (turned off in the policy file: budget.day = \"none\")\n",
		"Spending: at most 5.00 USD in any 7 days (policy file)\n",
		"Rate: no limit on payments a minute (turned off in the policy file: max_payments_per_minute = \"none\")\n",
	} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("policy check lacks %q: %+v", want, r)
		}
	}
}
