package main

import (
	"math/big"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/x402-mcp/x402-mcp/localnet"
)

// These tests drive the built binary with the official client through the
// failures that tempt a client to pay twice: a facilitator that stalls past
// the call's timeout, a resource server that dies after taking the
// payment. The agent repeats the call, as agents do; the chain must show
// exactly one settlement.

// weatherWithID is /v2/weather-id: the weather route, advertising
// payment-identifier.
func weatherWithID() localnet.Route {
	for _, rt := range localnet.DefaultRoutes() {
		if rt.Path == "/v2/weather" {
			rt.Path = "/v2/weather-id"
			rt.PaymentIdentifier = &localnet.PaymentIdentifier{}
			return rt
		}
	}
	panic("no /v2/weather route")
}

// upfrontRoute is /v2/upfront, whose server settles before doing the work.
func upfrontRoute() localnet.Route {
	return localnet.Route{
		Method: http.MethodGet, Path: "/v2/upfront", Version: 2, Price: big.NewInt(10_000), Description: "Settled up front",
		Handler: func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"ok":true}`)) },
		Accepts: func(opts []map[string]any) []map[string]any {
			extra, _ := opts[0]["extra"].(map[string]any)
			extra["paymentFlow"] = "upfront"
			return opts
		},
	}
}

// waitSettled waits (bounded) until the facilitator has settled n payments.
func waitSettled(t *testing.T, net *localnet.Network, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for net.Facilitator.Settled() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the facilitator settled %d payments, want %d", net.Facilitator.Settled(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRepeatAfterFailuresPaysOnce: through the binary, with on-chain
// balances.
func TestRepeatAfterFailuresPaysOnce(t *testing.T) {
	tsClientDir(t)
	n, cfg, payer := tsDevnet(t, "max_per_payment = \"0.10\"\n", weatherWithID(), upfrontRoute())
	// One second per call, so that a stalled facilitator outlasts it.
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	writePrivate(t, cfg, strings.Replace(string(text), "[http]\n", "[http]\ntimeout_seconds = 1\n", 1), 0o600)
	payer0, payee0 := chainBalance(t, n, payer), chainBalance(t, n, n.PayTo)
	fetch := func(path string) tsResult {
		t.Helper()
		return called(t, tsClient(t, plan(cfg, fetchStep(map[string]any{"url": n.APIURL + path}))))[0]
	}
	noAnswer := func(r tsResult) {
		t.Helper()
		if !r.IsError() || !strings.Contains(r.Text(), "no answer (timeout or reset)") || !strings.Contains(r.Text(), "can settle at most once") {
			t.Fatalf("want the first call to end without an answer: %s", r.Text())
		}
	}

	// 1. The facilitator stalls past the timeout, then settles. With
	// payment-identifier the repeat gets the resource the server kept.
	n.Facilitator.SetFault(localnet.Fault{Before: 3 * time.Second, Times: 1})
	noAnswer(fetch("/v2/weather-id?city=Oslo"))
	waitSettled(t, n, 1)
	if r := fetch("/v2/weather-id?city=Oslo"); r.IsError() || !strings.Contains(gjson.Get(r.Structured(), "body").String(), "Oslo") ||
		!gjson.Get(r.Structured(), "payment.settled").Bool() {
		t.Errorf("repeat with payment-identifier: %s %s", r.Text(), r.Structured())
	}

	// 2. The same without payment-identifier: the repeat says it was
	// already paid, and so does the one after.
	n.Facilitator.SetFault(localnet.Fault{Before: 3 * time.Second, Times: 1})
	noAnswer(fetch("/v2/weather?city=Oslo"))
	waitSettled(t, n, 2)
	for range 2 {
		if r := fetch("/v2/weather?city=Oslo"); !r.IsError() || !strings.Contains(r.Text(), "already paid") || !strings.Contains(r.Text(), "will not be paid again") {
			t.Errorf("repeat without payment-identifier: %s", r.Text())
		}
	}

	// 3. The server settles and dies before answering, then comes back
	// without the responses it kept: repeats are told it was paid.
	n.API.DropAfterSettle(1)
	if r := fetch("/v2/weather-id?city=Lima"); !r.IsError() {
		t.Fatalf("the dropped answer arrived: %s", r.Structured())
	}
	n.API.ForgetPaymentIDs()
	for range 3 {
		if r := fetch("/v2/weather-id?city=Lima"); !r.IsError() || !strings.Contains(r.Text(), "already paid") {
			t.Errorf("repeat after the server lost its store: %s", r.Text())
		}
	}

	// 4. An upfront flow is refused before anything is signed.
	if r := fetch("/v2/upfront"); !r.IsError() || gjson.Get(r.Structured(), "verdict").String() != "denied" || !strings.Contains(r.Text(), "payment_flows") {
		t.Errorf("upfront flow: %s %s", r.Text(), r.Structured())
	}

	// Three payments were made, one settlement each, and nothing else.
	if b := n.Facilitator.Broadcasts(); len(b) != 3 {
		t.Errorf("%d settlement transactions, want 3 (one per request)", len(b))
	}
	if d := new(big.Int).Sub(payer0, chainBalance(t, n, payer)); d.Int64() != 30_000 {
		t.Errorf("payer spent %s atomic units, want 30000 (three payments of 0.01, each once)", d)
	}
	if d := new(big.Int).Sub(chainBalance(t, n, n.PayTo), payee0); d.Int64() != 30_000 {
		t.Errorf("payee received %s atomic units, want 30000", d)
	}
	r := runBin(t, hermeticEnv(), "history", "--json", "--config", cfg)
	if r.code != 0 || len(gjson.Parse(r.stdout).Array()) != 3 {
		t.Errorf("history: %d records, want 3: %s", len(gjson.Parse(r.stdout).Array()), r.stdout)
	}
}
