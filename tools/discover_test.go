package tools

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func TestDiscoverThroughMCP(t *testing.T) {
	f := startWith(t, approvalPolicy())
	r, out := f.call(t, "x402_discover", map[string]any{})
	if r.IsError {
		t.Fatalf("discover: %s", out)
	}
	results := gjson.Get(out, "results").Array()
	if len(results) != 5 {
		t.Fatalf("%d results, want the local network's 5 priced routes: %s", len(results), out)
	}
	verdicts := map[string]string{}
	for _, e := range results {
		path := strings.TrimPrefix(e.Get("url").String(), f.net.APIURL)
		verdicts[path] = e.Get("verdict").String()
		if e.Get("token").String() != "USDC" || e.Get("network").String() != "eip155:1337" || len(e.Get("sources").Array()) == 0 {
			t.Errorf("%s: %s", path, e.Raw)
		}
	}
	// approval above 0.015, cap 0.10: weather 0.01 allowed, joke 0.02 and
	// summarize 0.03 need approval, report 0.50 denied.
	for path, want := range map[string]string{"/v2/weather": "allowed", "/v1/joke": "needs_approval", "/v2/summarize": "needs_approval", "/v2/report": "denied", "/v1/fx": "allowed"} {
		if verdicts[path] != want {
			t.Errorf("%s: verdict %q, want %q", path, verdicts[path], want)
		}
	}

	r, out = f.call(t, "x402_discover", map[string]any{"query": "weather", "max_price": "0.02"})
	if r.IsError || gjson.Get(out, "results.#").Int() != 1 || !strings.HasSuffix(gjson.Get(out, "results.0.url").String(), "/v2/weather") ||
		gjson.Get(out, "results.0.price").String() != "0.01" || gjson.Get(out, "results.0.how_to_call.query_params.0.name").String() != "city" {
		t.Errorf("filtered discovery: %s", out)
	}
	r, out = f.call(t, "x402_discover", map[string]any{"max_price": "0.015"})
	if r.IsError || gjson.Get(out, "results.#").Int() != 2 {
		t.Errorf("max_price 0.015 should leave weather and fx: %s", out)
	}

	// Probing a URL merges the live 402 in; a free URL is reported free.
	r, out = f.call(t, "x402_discover", map[string]any{"query": "status", "probe": []string{f.net.APIURL + "/free/status"}})
	if r.IsError || !strings.Contains(out, "probe") {
		t.Errorf("probe: %s", out)
	}
	if n := f.payeeBalance(t); n.Sign() != 0 {
		t.Errorf("discovery moved money: payee holds %s", n)
	}
}

func TestWalletThroughMCP(t *testing.T) {
	f := start(t)
	r, out := f.call(t, "x402_wallet", map[string]any{})
	if r.IsError || gjson.Get(out, "payer").String() != f.addr {
		t.Fatalf("wallet: %s", out)
	}
	var local gjson.Result
	for _, b := range gjson.Get(out, "balances").Array() {
		if b.Get("network").String() == "eip155:1337" {
			local = b
		}
	}
	if local.Get("balance").String() != "1" || local.Get("balance_atomic").String() != "1000000" || local.Get("token").String() != "USDC" {
		t.Errorf("local balance: %s", out)
	}
}
