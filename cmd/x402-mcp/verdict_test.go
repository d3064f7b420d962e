package main

import (
	"math/big"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/x402-mcp/x402-mcp/localnet"
)

// These tests drive the built binary with the official TypeScript client
// (see tsclient_test.go) through the three tools that judge a price, the
// inputs a 402 declares, and approvals given out of band.

// oddRoute sells /v2/odd in a token no registry knows: unpayable.
func oddRoute() localnet.Route {
	return localnet.Route{
		Method: http.MethodGet, Path: "/v2/odd", Version: 2, Price: big.NewInt(10_000), Description: "Priced in an unknown token",
		Handler: func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"odd":true}`)) },
		Accepts: func(opts []map[string]any) []map[string]any {
			opts[0]["asset"] = "0x00000000000000000000000000000000000b0b0b"
			return opts
		},
	}
}

// dynamicRoute sells path at whatever price holds (atomic units), so a
// test can change the terms between two calls.
func dynamicRoute(path string, price *atomic.Int64) localnet.Route {
	return localnet.Route{
		Method: http.MethodGet, Path: path, Version: 2, Price: big.NewInt(price.Load()), Description: "A price that moves",
		Handler: func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"ok":true}`)) },
		Accepts: func(opts []map[string]any) []map[string]any {
			opts[0]["amount"] = big.NewInt(price.Load()).String()
			return opts
		},
	}
}

// plan runs listTools and then the calls, as a host does.
func plan(cfg string, calls ...tsStep) tsPlan {
	return tsPlan{Args: []string{"serve", "--config", cfg}, Steps: append([]tsStep{{Op: "listTools"}}, calls...)}
}

func fetchStep(args map[string]any) tsStep {
	return tsStep{Op: "call", Name: "x402_fetch", Arguments: args}
}

// called returns the tool results of a run after its listTools, failing
// the test on any protocol error (an output-schema mismatch among them).
func called(t *testing.T, run tsRun) []tsResult {
	t.Helper()
	mustListTools(t, run)
	for i, r := range run.Steps[1:] {
		if !r.OK {
			t.Fatalf("step %d: the official client threw %d: %s", i+1, r.Error.Code, r.Error.Message)
		}
	}
	return run.Steps[1:]
}

// TestSameVerdictEverywhere: for the same terms, x402_quote, x402_discover
// and x402_fetch say the same verdict with the same reasons, and fetch does
// what the verdict says.
func TestSameVerdictEverywhere(t *testing.T) {
	tsClientDir(t)
	n, cfg, payer := tsDevnet(t, "max_per_payment = \"0.10\"\napproval_above = \"0.015\"\n", oddRoute())
	payer0 := chainBalance(t, n, payer)
	cases := []struct{ url, verdict string }{
		{n.APIURL + "/v2/weather?city=Oslo", "allowed"},
		{n.APIURL + "/v1/joke", "needs_approval"},
		{n.APIURL + "/v2/report", "denied"},
		{n.APIURL + "/v2/odd", "unpayable"},
	}
	var steps []tsStep
	for _, c := range cases {
		steps = append(steps,
			tsStep{Op: "call", Name: "x402_quote", Arguments: map[string]any{"url": c.url}},
			tsStep{Op: "call", Name: "x402_discover", Arguments: map[string]any{"probe": []string{c.url}}},
			fetchStep(map[string]any{"url": c.url}))
	}
	res := called(t, tsClient(t, plan(cfg, steps...)))
	for i, c := range cases {
		quote, discover, fetch := res[3*i], res[3*i+1], res[3*i+2]
		// Discovery merges the probe with the facilitator's listing of the
		// same endpoint (its URL without the query).
		var found gjson.Result
		base, _, _ := strings.Cut(c.url, "?")
		for _, r := range gjson.Get(discover.Structured(), "results").Array() {
			if u := r.Get("url").String(); u == c.url || u == base {
				found = r
			}
		}
		qv, dv, fv := gjson.Get(quote.Structured(), "verdict").String(), found.Get("verdict").String(), gjson.Get(fetch.Structured(), "verdict").String()
		if qv != c.verdict || dv != c.verdict || fv != c.verdict {
			t.Errorf("%s: quote says %q, discover %q, fetch %q; want %q\nquote %s\ndiscover %s\nfetch %s %s",
				c.url, qv, dv, fv, c.verdict, quote.Structured(), discover.Structured(), fetch.Text(), fetch.Structured())
			continue
		}
		qr, dr, fr := gjson.Get(quote.Structured(), "reasons").Raw, found.Get("reasons").Raw, gjson.Get(fetch.Structured(), "reasons").Raw
		if qr != dr || qr != fr {
			t.Errorf("%s: reasons differ:\nquote    %s\ndiscover %s\nfetch    %s", c.url, qr, dr, fr)
		}
		if paid := gjson.Get(fetch.Structured(), "payment").Exists(); paid != (c.verdict == "allowed") || fetch.IsError() == (c.verdict == "allowed") {
			t.Errorf("%s (%s): fetch paid=%v isError=%v: %s", c.url, c.verdict, paid, fetch.IsError(), fetch.Text())
		}
	}
	// Only the allowed 0.01 moved.
	if d := new(big.Int).Sub(payer0, chainBalance(t, n, payer)); d.Int64() != 10_000 {
		t.Errorf("payer spent %s atomic units, want 10000", d)
	}
}

// TestMissingInputsNotPaid: a request that lacks what the server's own 402
// declares required is refused before anything is signed.
func TestMissingInputsNotPaid(t *testing.T) {
	tsClientDir(t)
	n, cfg, payer := tsDevnet(t, "max_per_payment = \"0.10\"\n")
	payer0, payee0 := chainBalance(t, n, payer), chainBalance(t, n, n.PayTo)
	cases := []struct {
		args    map[string]any
		missing string
	}{
		{map[string]any{"url": n.APIURL + "/v2/weather"}, `query parameter "city"`},
		{map[string]any{"url": n.APIURL + "/v2/summarize", "method": "POST", "headers": map[string]any{"Content-Type": "application/json"}, "body": `{"txt":"typo"}`}, `body field "text"`},
		{map[string]any{"url": n.APIURL + "/v2/summarize", "method": "POST"}, `body field "text"`},
		{map[string]any{"url": n.APIURL + "/v1/fx?base=USD"}, `query parameter "quote"`},
	}
	steps := []tsStep{{Op: "call", Name: "x402_quote", Arguments: map[string]any{"url": n.APIURL + "/v2/weather"}}}
	for _, c := range cases {
		steps = append(steps, fetchStep(c.args))
	}
	res := called(t, tsClient(t, plan(cfg, steps...)))
	q := res[0].Structured()
	if gjson.Get(q, "verdict").String() != "allowed" || gjson.Get(q, "missing_inputs.0").String() != `query parameter "city"` ||
		gjson.Get(q, "inputs.query_params.0.name").String() != "city" || !gjson.Get(q, "inputs.query_params.0.required").Bool() {
		t.Errorf("quote of /v2/weather without city: %s", q)
	}
	for i, c := range cases {
		r := res[1+i]
		if !r.IsError() || !strings.Contains(r.Text(), c.missing) || !strings.Contains(r.Text(), "Nothing was signed or paid") ||
			gjson.Get(r.Structured(), "missing_inputs.0").String() != c.missing {
			t.Errorf("fetch %v: want a refusal naming %s, got %s %s", c.args, c.missing, r.Text(), r.Structured())
		}
	}
	if payer1, payee1 := chainBalance(t, n, payer), chainBalance(t, n, n.PayTo); payer1.Cmp(payer0) != 0 || payee1.Cmp(payee0) != 0 {
		t.Errorf("balances moved: payer %s -> %s, payee %s -> %s", payer0, payer1, payee0, payee1)
	}
	for _, path := range []string{"/v2/weather", "/v2/summarize", "/v1/fx"} {
		if h := n.API.Hits(path); h != 0 {
			t.Errorf("%s: the paid handler ran %d times", path, h)
		}
	}
	// Nothing was even reserved: the ledger is empty.
	if r := runBin(t, hermeticEnv(), "history", "--json", "--config", cfg); r.code != 0 || strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("history after refusals: %+v", r)
	}
}

// approvalsJSON lists the approvals in the ledger through the CLI.
func approvalsJSON(t *testing.T, cfg string, all bool) []gjson.Result {
	t.Helper()
	args := []string{"approvals", "--json", "--config", cfg}
	if all {
		args = append(args, "--all")
	}
	r := runBin(t, hermeticEnv(), args...)
	if r.code != 0 || !gjson.Valid(r.stdout) {
		t.Fatalf("x402-mcp %v: %+v", args, r)
	}
	return gjson.Parse(r.stdout).Array()
}

// approvalOf returns the out-of-band approval a fetch result offers.
func approvalOf(t *testing.T, r tsResult) string {
	t.Helper()
	s := r.Structured()
	id := gjson.Get(s, "approval.id").String()
	if !r.IsError() || gjson.Get(s, "verdict").String() != "needs_approval" || !strings.HasPrefix(id, "ap-") ||
		!strings.Contains(r.Text(), id) || !strings.Contains(r.Text(), "x402-mcp approve "+id) {
		t.Fatalf("want an out-of-band approval offer, got %s\n%s", r.Text(), s)
	}
	return id
}

// TestOutOfBandApproval: in a host that cannot ask the human, a payment
// above the threshold waits in the ledger; the human approves it with the
// CLI; the agent's repeated call pays exactly once, even when two server
// processes repeat it at the same moment. Denied and changed terms pay
// nothing.
func TestOutOfBandApproval(t *testing.T) {
	dir := tsClientDir(t)
	var dynPrice atomic.Int64
	dynPrice.Store(20_000)
	n, cfg, payer := tsDevnet(t, "max_per_payment = \"0.10\"\napproval_above = \"0.015\"\n", dynamicRoute("/v2/dyn", &dynPrice))
	payer0 := chainBalance(t, n, payer)
	joke := fetchStep(map[string]any{"url": n.APIURL + "/v1/joke"})

	// The agent asks; nothing is paid; the approval waits in the ledger.
	id := approvalOf(t, called(t, tsClient(t, plan(cfg, joke)))[0])
	pending := approvalsJSON(t, cfg, false)
	if len(pending) != 1 || pending[0].Get("id").String() != id || pending[0].Get("status").String() != "pending" ||
		pending[0].Get("amount_atomic").String() != "20000" || pending[0].Get("url").String() != n.APIURL+"/v1/joke" ||
		pending[0].Get("method").String() != "GET" || !strings.Contains(pending[0].Get("requester").String(), "via x402-mcp") {
		t.Fatalf("pending approvals: %v", pending)
	}
	// Repeating before the human answers pays nothing and asks nothing new.
	if again := approvalOf(t, called(t, tsClient(t, plan(cfg, joke)))[0]); again != id {
		t.Errorf("a repeat while pending made approval %s, want %s again", again, id)
	}
	if r := runBin(t, hermeticEnv(), "approve", id, "--config", cfg); r.code != 0 || !strings.Contains(r.stdout, "20000") {
		t.Fatalf("approve: %+v", r)
	}

	// Two server processes on the same ledger repeat the call at once:
	// exactly one pays.
	var wg sync.WaitGroup
	runs := make([]tsRun, 2)
	errs := make([]error, 2)
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[i], errs[i] = tsClientRun(t, dir, plan(cfg, joke))
		}()
	}
	wg.Wait()
	paid := 0
	for i, run := range runs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		r := called(t, run)[0]
		if gjson.Get(r.Structured(), "payment.settled").Bool() {
			paid++
			if gjson.Get(r.Structured(), "payment.amount_atomic").String() != "20000" {
				t.Errorf("paid other terms than approved: %s", r.Structured())
			}
			continue
		}
		// The other loses the race inside the reservation ("could not be
		// used"), finds the winner's payment for the same request still in
		// flight (nothing new signed), or comes after it and finds the
		// approval used: a used approval never pays again; a new purchase
		// needs a new approval.
		if r.IsError() && strings.Contains(r.Text(), "could not be used") && strings.Contains(r.Text(), id) {
			continue
		}
		if r.IsError() && strings.Contains(r.Text(), "Nothing new was signed") && !gjson.Get(r.Structured(), "payment.settled").Bool() {
			continue
		}
		if other := approvalOf(t, r); other == id {
			t.Errorf("the used approval %s was offered again", id)
		}
	}
	if paid != 1 {
		t.Fatalf("%d of two processes paid with one approval, want exactly 1", paid)
	}
	for _, a := range approvalsJSON(t, cfg, true) {
		if a.Get("id").String() == id && (a.Get("status").String() != "used" || a.Get("record_id").Int() == 0) {
			t.Errorf("approval after use: %s", a.Raw)
		}
	}

	// Denied: the repeat is refused, nothing is signed.
	summarize := fetchStep(map[string]any{"url": n.APIURL + "/v2/summarize", "method": "POST",
		"headers": map[string]any{"Content-Type": "application/json"}, "body": `{"text":"Deny me."}`})
	denyID := approvalOf(t, called(t, tsClient(t, plan(cfg, summarize)))[0])
	if r := runBin(t, hermeticEnv(), "deny", denyID, "--config", cfg); r.code != 0 {
		t.Fatalf("deny: %+v", r)
	}
	if r := called(t, tsClient(t, plan(cfg, summarize)))[0]; !r.IsError() || !strings.Contains(r.Text(), "denied this payment") ||
		gjson.Get(r.Structured(), "payment").Exists() {
		t.Errorf("repeat after deny: %s", r.Text())
	}

	// Terms changed after approval: refused with both terms, and a new
	// approval for the new ones.
	dyn := fetchStep(map[string]any{"url": n.APIURL + "/v2/dyn"})
	dynID := approvalOf(t, called(t, tsClient(t, plan(cfg, dyn)))[0])
	if r := runBin(t, hermeticEnv(), "approve", dynID, "--config", cfg); r.code != 0 {
		t.Fatalf("approve: %+v", r)
	}
	dynPrice.Store(30_000)
	r := called(t, tsClient(t, plan(cfg, dyn)))[0]
	if newID := approvalOf(t, r); newID == dynID || !strings.Contains(r.Text(), dynID) || !strings.Contains(r.Text(), "0.02") ||
		!strings.Contains(r.Text(), "0.03") || !strings.Contains(r.Text(), "does not cover this payment") {
		t.Errorf("repeat after the price changed: %s", r.Text())
	}

	// Exactly the one approved 0.02 moved, once.
	if d := new(big.Int).Sub(payer0, chainBalance(t, n, payer)); d.Int64() != 20_000 {
		t.Errorf("payer spent %s atomic units, want 20000", d)
	}
	// No tool approves: the agent's side has no approve tool at all.
	list := mustListTools(t, tsClient(t, plan(cfg)))
	for _, tool := range gjson.Get(list.Result, "tools").Array() {
		if name := tool.Get("name").String(); strings.Contains(name, "approv") {
			t.Errorf("tool %s could let the agent approve", name)
		}
	}
}

// TestMaxPriceAsNumber: agents send max_price as a JSON number as often as
// a string; it is read from its literal text, never through a float, and
// anything else gets a plain answer. URLs in tool text read as written.
func TestMaxPriceAsNumber(t *testing.T) {
	tsClientDir(t)
	n, cfg, payer := tsDevnet(t, "max_per_payment = \"0.10\"\n")
	payer0 := chainBalance(t, n, payer)
	weather := n.APIURL + "/v2/weather?city=Oslo&units=metric"
	res := called(t, tsClient(t, plan(cfg,
		fetchStep(map[string]any{"url": weather, "max_price": 0.005}),
		fetchStep(map[string]any{"url": weather, "max_price": 1e-2}),
		fetchStep(map[string]any{"url": weather, "max_price": true}),
		fetchStep(map[string]any{"url": weather, "max_price": "0.10000000000000000001"}),
		fetchStep(map[string]any{"url": weather, "max_price": 0.01}),
		tsStep{Op: "call", Name: "x402_quote", Arguments: map[string]any{"url": weather}},
	)))
	if r := res[0]; !r.IsError() || !strings.Contains(r.Text(), "max_price of 0.005 USD") {
		t.Errorf("max_price 0.005 (a number) below the price: %s", r.Text())
	}
	// JSON's 1e-2 is written "0.01" by the client; either way it must be
	// read exactly or refused in words, never as a float.
	for i, r := range res[1:4] {
		if r.IsError() && (!strings.Contains(r.Text(), `max_price must be a decimal string such as "0.05"`) || strings.Contains(r.Text(), "{")) {
			t.Errorf("step %d: a bad max_price must be refused in plain words: %s", i+2, r.Text())
		}
	}
	if r := res[2]; !r.IsError() {
		t.Errorf("max_price true was accepted: %s", r.Structured())
	}
	if r := res[4]; r.IsError() || gjson.Get(r.Structured(), "payment.amount_atomic").String() != "10000" {
		t.Errorf("max_price 0.01 (a number) at the price: %s %s", r.Text(), r.Structured())
	}
	if text := res[5].Text(); !strings.Contains(text, "city=Oslo&units=metric") || strings.Contains(text, `\u0026`) {
		t.Errorf("the quote's text escapes the URL: %s", text)
	}
	paid := 0
	for _, r := range res[:5] {
		if gjson.Get(r.Structured(), "payment.settled").Bool() {
			paid++
		}
	}
	if d := new(big.Int).Sub(payer0, chainBalance(t, n, payer)); d.Int64() != int64(paid)*10_000 {
		t.Errorf("payer spent %s for %d payments of 10000", d, paid)
	}
}
