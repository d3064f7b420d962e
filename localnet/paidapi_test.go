package localnet

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// checkNothingMoved asserts that a refused payment left no trace on chain.
func checkNothingMoved(t *testing.T, n *Network, p *payer, got paid, before int64) {
	t.Helper()
	if b := balance(t, n, p.addr); b != before {
		t.Errorf("payer balance %d, want %d", b, before)
	}
	if b := balance(t, n, n.PayTo); b != 0 {
		t.Errorf("payee received %d", b)
	}
	used, err := n.Chain.AuthorizationState(context.Background(), p.addr, got.auth.Nonce)
	if err != nil || used {
		t.Errorf("authorization used=%v (%v)", used, err)
	}
	if s := n.Facilitator.Settled(); s != 0 {
		t.Errorf("Settled = %d", s)
	}
}

// fresh402 asserts got is a 402 in the given version with the given error
// and no settlement header.
func fresh402(t *testing.T, got paid, version int, wantErr string) {
	t.Helper()
	o := read402(t, got.resp, got.body)
	if o.version != version || o.error != wantErr {
		t.Errorf("402 v%d error %q; want v%d %q", o.version, o.error, version, wantErr)
	}
	for _, h := range []string{"Payment-Response", "X-Payment-Response"} {
		if got.resp.Header.Get(h) != "" {
			t.Errorf("refusal carries %s", h)
		}
	}
}

// TestPaymentRequiredV2Wire checks the v2 402 byte for byte: spec key
// order, standard base64, EIP-55 addresses, the absolute resource URL with
// its query, and bazaar info.
func TestPaymentRequiredV2Wire(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	resp, body := do(t, "GET", n.APIURL+"/v2/weather?city=Paris&units=metric", nil, nil)
	if resp.StatusCode != 402 || string(body) != "{}" {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
	header := resp.Header.Get("PAYMENT-REQUIRED")
	doc, err := base64.StdEncoding.DecodeString(header)
	if err != nil {
		t.Fatalf("PAYMENT-REQUIRED: %v", err)
	}
	want := `{"x402Version":2,"error":"PAYMENT-SIGNATURE header is required",` +
		`"resource":{"url":"` + n.APIURL + `/v2/weather?city=Paris&units=metric","description":"Current weather for a city","mimeType":"application/json"},` +
		`"accepts":[{"scheme":"exact","network":"eip155:1337","amount":"10000","asset":"` + n.Chain.TokenAddress().Hex() + `",` +
		`"payTo":"` + n.PayTo.Hex() + `","maxTimeoutSeconds":300,"extra":{"name":"USD Coin","version":"2"}}],` +
		`"extensions":{"bazaar":{"info":{"input":{"type":"http","method":"GET","queryParams":{"city":"Paris"}},` +
		`"output":{"type":"json","example":{"city":"Paris","temperatureC":18,"conditions":"cloudy","humidityPercent":61}}},` +
		`"schema":{"type":"object","properties":{"input":{"type":"object","properties":{` +
		`"type":{"type":"string","const":"http"},"method":{"type":"string","enum":["GET"]},` +
		`"queryParams":{"type":"object","properties":{"city":{"type":"string","description":"City name"}},"required":["city"]}},` +
		`"required":["type","method"]}},"required":["input"]}}}}`
	if string(doc) != want {
		t.Errorf("PAYMENT-REQUIRED\n got %s\nwant %s", doc, want)
	}
	if n.API.Hits("/v2/weather") != 0 {
		t.Error("handler ran without payment")
	}
}

func TestPaymentRequiredV1Wire(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	resp, body := do(t, "GET", n.APIURL+"/v1/fx?base=USD&quote=EUR", nil, nil)
	if resp.StatusCode != 402 || resp.Header.Get("PAYMENT-REQUIRED") != "" {
		t.Fatalf("status %d, PAYMENT-REQUIRED %q", resp.StatusCode, resp.Header.Get("PAYMENT-REQUIRED"))
	}
	want := `{"x402Version":1,"error":"X-PAYMENT header is required","accepts":[{"scheme":"exact","network":"eip155:1337",` +
		`"maxAmountRequired":"5000","resource":"` + n.APIURL + `/v1/fx?base=USD&quote=EUR",` +
		`"description":"Foreign exchange rate between two currencies","mimeType":"application/json",` +
		`"payTo":"` + n.PayTo.Hex() + `","maxTimeoutSeconds":300,"asset":"` + n.Chain.TokenAddress().Hex() + `",` +
		`"outputSchema":{"input":{"type":"http","method":"GET","discoverable":true,"queryParams":{` +
		`"base":{"type":"string","required":true,"description":"Currency to convert from: USD, EUR, GBP, JPY, CHF or CAD"},` +
		`"quote":{"type":"string","required":true,"description":"Currency to convert to"}}},"output":{"type":"json"}},` +
		`"extra":{"name":"USD Coin","version":"2"}}]}`
	if string(body) != want {
		t.Errorf("402 body\n got %s\nwant %s", body, want)
	}
}

// TestAcceptedAltered: a client that re-encodes the option (here
// maxTimeoutSeconds as a string) no longer matches it, and pays nothing.
func TestAcceptedAltered(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	p := newPayer(t, n, 1_000_000)
	for _, mutate := range []func(json.RawMessage) json.RawMessage{
		setField("maxTimeoutSeconds", "300"),
		func(raw json.RawMessage) json.RawMessage { return json.RawMessage(strings.ToLower(string(raw))) },
		setField("extra", map[string]any{"name": "USD Coin"}),
	} {
		got := pay(t, p, "GET", n.APIURL+"/v2/weather?city=Oslo", nil, payOptions{mutateAccepted: mutate})
		fresh402(t, got, 2, "No matching payment requirements")
		checkNothingMoved(t, n, p, got, 1_000_000)
	}
	if h := n.API.Hits("/v2/weather"); h != 0 {
		t.Errorf("Hits = %d", h)
	}
}

// TestWrongHeaderIgnored: each version reads only its own payment header.
func TestWrongHeaderIgnored(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	p := newPayer(t, n, 1_000_000)

	got := pay(t, p, "GET", n.APIURL+"/v2/weather?city=Rome", nil, payOptions{header: "X-PAYMENT"})
	fresh402(t, got, 2, "PAYMENT-SIGNATURE header is required")
	checkNothingMoved(t, n, p, got, 1_000_000)

	got = pay(t, p, "GET", n.APIURL+"/v1/joke", nil, payOptions{header: "PAYMENT-SIGNATURE"})
	fresh402(t, got, 1, "X-PAYMENT header is required")
	checkNothingMoved(t, n, p, got, 1_000_000)

	// Header names are case-insensitive.
	got = pay(t, p, "GET", n.APIURL+"/v2/weather?city=Rome", nil, payOptions{header: "payment-signature"})
	if got.resp.StatusCode != 200 {
		t.Errorf("lower-case payment-signature: %d %s", got.resp.StatusCode, got.body)
	}
}

func TestAlwaysRequirePayment(t *testing.T) {
	t.Parallel()
	routes := DefaultRoutes()
	for i := range routes {
		routes[i].AlwaysRequirePayment = true
	}
	n := startNetwork(t, NetworkConfig{Routes: routes})
	p := newPayer(t, n, 1_000_000)

	got := pay(t, p, "GET", n.APIURL+"/v2/report", nil, payOptions{})
	fresh402(t, got, 2, "PAYMENT-SIGNATURE header is required")
	checkNothingMoved(t, n, p, got, 1_000_000)

	got = pay(t, p, "GET", n.APIURL+"/v1/joke", nil, payOptions{})
	fresh402(t, got, 1, "X-PAYMENT header is required")
	checkNothingMoved(t, n, p, got, 1_000_000)

	if n.API.Hits("/v2/report")+n.API.Hits("/v1/joke") != 0 {
		t.Error("handler ran")
	}
}

// TestFacilitatorRefusalReachesClient: an invalid payment comes back as a
// fresh 402 whose error is the facilitator's reason.
func TestFacilitatorRefusalReachesClient(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	p := newPayer(t, n, 1_000_000)
	expire := payOptions{auth: func(a *authorization) { a.ValidBefore = big.NewInt(time.Now().Unix() + 2) }}

	got := pay(t, p, "GET", n.APIURL+"/v2/weather?city=Kyiv", nil, expire)
	fresh402(t, got, 2, reasonValidBefore)
	checkNothingMoved(t, n, p, got, 1_000_000)

	got = pay(t, p, "GET", n.APIURL+"/v1/joke", nil, expire)
	fresh402(t, got, 1, reasonValidBefore)
	if payer := gjson.GetBytes(got.body, "payer").String(); !strings.EqualFold(payer, p.addr.Hex()) {
		t.Errorf("v1 refusal payer %q", payer)
	}
	checkNothingMoved(t, n, p, got, 1_000_000)
}

func TestMalformedPaymentHeader(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	for name, tc := range map[string]struct {
		value, wantErr string
	}{
		"not base64":     {"%%%", "not base64"},
		"not JSON":       {base64.StdEncoding.EncodeToString([]byte("hello")), "not a JSON object"},
		"duplicate keys": {base64.StdEncoding.EncodeToString([]byte(`{"x402Version":2,"x402Version":2}`)), "duplicate key"},
		"too large":      {strings.Repeat("A", maxPaymentHeaderBytes+4), "exceeds"},
		"wrong version":  {base64.StdEncoding.EncodeToString([]byte(`{"x402Version":1,"scheme":"exact"}`)), "x402Version 1"},
	} {
		resp, _ := do(t, "GET", n.APIURL+"/v2/weather?city=Lima", nil, map[string]string{"PAYMENT-SIGNATURE": tc.value})
		o := read402(t, resp, nil)
		if !strings.Contains(o.error, tc.wantErr) {
			t.Errorf("%s: error %q, want it to mention %q", name, o.error, tc.wantErr)
		}
	}
	// Two payment headers: which one counts would depend on the stack.
	req, _ := http.NewRequest("GET", n.APIURL+"/v2/weather?city=Lima", nil)
	req.Header.Add("Payment-Signature", "e30=")
	req.Header.Add("Payment-Signature", "e30=")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if o := read402(t, resp, nil); !strings.Contains(o.error, "2 times") {
		t.Errorf("two headers: %q", o.error)
	}
	if n.API.Hits("/v2/weather") != 0 {
		t.Error("handler ran")
	}
}

// TestHandlerErrorNotCharged: when the handler fails, the verified payment
// is not settled and the error passes through.
func TestHandlerErrorNotCharged(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	p := newPayer(t, n, 1_000_000)
	got := pay(t, p, "GET", n.APIURL+"/v2/weather", nil, payOptions{}) // no city
	if got.resp.StatusCode != 400 || got.resp.Header.Get("Payment-Response") != "" {
		t.Fatalf("status %d, PAYMENT-RESPONSE %q", got.resp.StatusCode, got.resp.Header.Get("Payment-Response"))
	}
	checkNothingMoved(t, n, p, got, 1_000_000)
	if n.API.Hits("/v2/weather") != 1 {
		t.Error("handler did not run exactly once")
	}
}

// TestFailedSettlement makes settlement fail after the handler ran, with
// real parts: the handler itself settles the payment it was sent (as a
// racing party holding the authorization could), so the API's own
// settlement finds the nonce used. The client gets a 402 carrying only the
// settlement header, and the handler's output is withheld.
func TestFailedSettlement(t *testing.T) {
	t.Parallel()
	var facilitatorURL atomic.Value
	frontRun := func(w http.ResponseWriter, r *http.Request) {
		payload, _ := base64.StdEncoding.DecodeString(r.Header.Get("Payment-Signature"))
		body, _ := json.Marshal(map[string]any{
			"x402Version": 2, "paymentPayload": json.RawMessage(payload),
			"paymentRequirements": json.RawMessage(gjson.GetBytes(payload, "accepted").Raw),
		})
		resp, err := http.Post(facilitatorURL.Load().(string)+"/settle", "application/json", bytes.NewReader(body))
		if err == nil {
			resp.Body.Close()
		}
		writeJSON(w, http.StatusOK, map[string]string{"secret": "not for free"})
	}
	n := startNetwork(t, NetworkConfig{Routes: []Route{{
		Method: "GET", Path: "/v2/raced", Version: 2, Price: big.NewInt(7_000), Handler: frontRun,
	}}})
	facilitatorURL.Store(n.FacilitatorURL)
	p := newPayer(t, n, 1_000_000)

	got := pay(t, p, "GET", n.APIURL+"/v2/raced", nil, payOptions{})
	if got.resp.StatusCode != 402 || string(got.body) != "{}" || got.resp.Header.Get("Payment-Required") != "" {
		t.Fatalf("status %d, body %s, PAYMENT-REQUIRED %q", got.resp.StatusCode, got.body, got.resp.Header.Get("Payment-Required"))
	}
	s := settlement(t, got.resp, "PAYMENT-RESPONSE")
	if s.Success || s.ErrorReason != reasonNonceUsed || s.Transaction != "" || s.Network != n.Chain.Network() {
		t.Errorf("settlement %+v", s)
	}
	// Exactly one transfer: the front-runner's.
	if b := balance(t, n, n.PayTo); b != 7_000 {
		t.Errorf("payee balance %d", b)
	}
	if n.Facilitator.Settled() != 1 || n.API.Hits("/v2/raced") != 1 {
		t.Errorf("Settled %d, Hits %d", n.Facilitator.Settled(), n.API.Hits("/v2/raced"))
	}
}

// TestAcceptsHook: a server whose option is odd (lower-case payTo, an
// unknown field, a short timeout) is still paid by a client that echoes the
// option verbatim; the hook's options are the ones matched and listed.
func TestAcceptsHook(t *testing.T) {
	t.Parallel()
	routes := []Route{{
		Method: "GET", Path: "/v2/odd", Version: 2, Price: big.NewInt(1_234),
		Handler: func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]bool{"ok": true}) },
		Accepts: func(opts []map[string]any) []map[string]any {
			o := opts[0]
			o["payTo"] = strings.ToLower(o["payTo"].(string))
			o["maxTimeoutSeconds"] = o["maxTimeoutSeconds"].(float64) / 5
			o["extra"].(map[string]any)["assetTransferMethod"] = "eip3009"
			o["note"] = "unknown fields must survive the echo"
			return []map[string]any{o}
		},
	}}
	n := startNetwork(t, NetworkConfig{Routes: routes})
	p := newPayer(t, n, 1_000_000)

	got := pay(t, p, "GET", n.APIURL+"/v2/odd", nil, payOptions{})
	if got.offer.field("note").String() == "" || got.offer.field("maxTimeoutSeconds").Int() != 60 {
		t.Fatalf("offered %s", got.offer.accepted)
	}
	checkSettled(t, n, p, got, "PAYMENT-RESPONSE", 1_234)

	// Dropping the unknown field is a different option.
	got = pay(t, p, "GET", n.APIURL+"/v2/odd", nil, payOptions{mutateAccepted: func(raw json.RawMessage) json.RawMessage {
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		delete(m, "note")
		b, _ := json.Marshal(m)
		return b
	}})
	fresh402(t, got, 2, "No matching payment requirements")

	_, body := do(t, "GET", n.FacilitatorURL+"/discovery/resources", nil, nil)
	if note := gjson.GetBytes(body, "items.0.accepts.0.note").String(); note == "" {
		t.Errorf("discovery lists the unmodified option: %s", body)
	}
}

// TestV1LocalnetName: a v1 payload may name the chain by its v1 short name
// although the option carries the CAIP-2 id.
func TestV1LocalnetName(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	p := newPayer(t, n, 1_000_000)
	resp, body := do(t, "GET", n.APIURL+"/v1/fx?base=EUR&quote=JPY", nil, nil)
	o := read402(t, resp, body)
	a, sig := authorize(t, p, o, payOptions{})
	doc := mustJSON(t, map[string]any{"x402Version": 1, "scheme": "exact", "network": V1NetworkName, "payload": exactPayload(a, sig)})
	resp, body = do(t, "GET", n.APIURL+"/v1/fx?base=EUR&quote=JPY", nil, map[string]string{"X-PAYMENT": base64.StdEncoding.EncodeToString(doc)})
	checkSettled(t, n, p, paid{offer: o, auth: a, resp: resp, body: body}, "X-PAYMENT-RESPONSE", 5_000)
	if rate := gjson.GetBytes(body, "rate").String(); rate != "170.108696" {
		t.Errorf("EUR/JPY rate %q (body %s)", rate, body)
	}
}
