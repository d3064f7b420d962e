package localnet

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/tidwall/gjson"
)

// requirement is a v2 option for n, written out by hand rather than taken
// from the paid API, so the facilitator is tested on its own.
func requirement(t testing.TB, n *Network, amount int64, edit func(map[string]any)) json.RawMessage {
	t.Helper()
	m := map[string]any{
		"scheme": "exact", "network": n.Chain.Network(), "amount": big.NewInt(amount).String(),
		"asset": n.Chain.TokenAddress().Hex(), "payTo": n.PayTo.Hex(), "maxTimeoutSeconds": 300,
		"extra": map[string]any{"name": n.Chain.TokenName(), "version": n.Chain.TokenVersion()},
	}
	if edit != nil {
		edit(m)
	}
	return mustJSON(t, m)
}

// facilitatorBody signs a v2 payment for req (optionally bent by opt) and
// wraps it in a verify/settle request. The payload echoes accepted, which
// is req unless opt.mutateAccepted changes it.
//
// The signature is made under the chain's true domain (or opt.domainName),
// whatever req says, so a test that breaks req breaks only what it means to.
func facilitatorBody(t testing.TB, n *Network, p *payer, req json.RawMessage, opt payOptions) ([]byte, authorization) {
	t.Helper()
	o := offer{version: 2, accepted: req, resource: json.RawMessage(`{"url":"http://127.0.0.1/x","description":"","mimeType":""}`)}
	var m map[string]any
	if err := json.Unmarshal(req, &m); err != nil {
		t.Fatal(err)
	}
	name := n.Chain.TokenName()
	if opt.domainName != "" {
		name = opt.domainName
	}
	m["extra"] = map[string]any{"name": name, "version": n.Chain.TokenVersion()}
	m["network"] = n.Chain.Network()
	m["asset"] = n.Chain.TokenAddress().Hex()
	a, sig := authorize(t, p, offer{version: 2, accepted: mustJSON(t, m)}, opt)
	_, header := buildPaymentHeader(t, o, a, sig, opt)
	payload := decodeB64(t, header)
	return mustJSON(t, map[string]any{
		"x402Version": 2, "paymentPayload": json.RawMessage(payload), "paymentRequirements": req,
	}), a
}

func postFacilitator(t testing.TB, n *Network, path string, body []byte) (int, []byte) {
	t.Helper()
	resp, data := do(t, "POST", n.FacilitatorURL+path, body, nil)
	return resp.StatusCode, data
}

func TestSupported(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	resp, body := do(t, "GET", n.FacilitatorURL+"/supported", nil, nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	want := `{"kinds":[` +
		`{"x402Version":1,"scheme":"exact","network":"localnet"},` +
		`{"x402Version":1,"scheme":"exact","network":"eip155:1337"},` +
		`{"x402Version":2,"scheme":"exact","network":"eip155:1337"}],` +
		`"extensions":["bazaar"],"signers":{"eip155:*":["` + n.Facilitator.Address().Hex() + `"]}}`
	if string(body) != want {
		t.Errorf("/supported\n got %s\nwant %s", body, want)
	}
}

// TestVerifyAndSettleRefusals sends payments that each break one rule and
// expects the reference reason from both /verify and /settle, with nothing
// moving on chain.
func TestVerifyAndSettleRefusals(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	rich := newPayer(t, n, 1_000_000)
	poor := newPayer(t, n, 5_000)
	stranger := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	now := time.Now().Unix()

	cases := []struct {
		name   string
		payer  *payer
		req    func(map[string]any)
		opt    payOptions
		reason string
	}{
		{name: "scheme", req: func(m map[string]any) { m["scheme"] = "upto" }, reason: reasonScheme},
		{name: "missing domain", req: func(m map[string]any) { m["extra"] = map[string]any{"name": "USD Coin"} }, reason: reasonMissingDomain},
		{name: "other network", req: func(m map[string]any) { m["network"] = "eip155:8453" }, reason: reasonNetworkMismatch},
		{name: "v1 name in v2", req: func(m map[string]any) { m["network"] = V1NetworkName }, reason: reasonNetworkMismatch},
		{name: "accepted differs", opt: payOptions{mutateAccepted: setField("maxTimeoutSeconds", "300")}, reason: reasonRequirementsMismatch},
		{name: "other asset", req: func(m map[string]any) { m["asset"] = stranger.Hex() }, reason: reasonAssetMismatch},
		{name: "wrong domain name", opt: payOptions{domainName: "USDC"}, reason: reasonSignature},
		{name: "wrong recipient", opt: payOptions{auth: func(a *authorization) { a.To = stranger }}, reason: reasonRecipient},
		{name: "expired", opt: payOptions{auth: func(a *authorization) { a.ValidBefore = big.NewInt(now + 3) }}, reason: reasonValidBefore},
		{name: "not yet valid", opt: payOptions{auth: func(a *authorization) { a.ValidAfter = big.NewInt(now + 3600) }}, reason: reasonValidAfter},
		{name: "value too high", opt: payOptions{auth: func(a *authorization) { a.Value = big.NewInt(10_001) }}, reason: reasonValueMismatch},
		{name: "value too low", opt: payOptions{auth: func(a *authorization) { a.Value = big.NewInt(9_999) }}, reason: reasonValueMismatch},
		{name: "insufficient balance", payer: poor, reason: reasonInsufficientBalance},
		{name: "signed by another key", opt: payOptions{auth: func(a *authorization) { a.From = stranger }}, reason: reasonSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.payer
			if p == nil {
				p = rich
			}
			body, _ := facilitatorBody(t, n, p, requirement(t, n, 10_000, tc.req), tc.opt)
			status, data := postFacilitator(t, n, "/verify", body)
			if status != 200 || gjson.GetBytes(data, "isValid").Bool() || gjson.GetBytes(data, "invalidReason").String() != tc.reason {
				t.Errorf("/verify: %d %s; want invalidReason %s", status, data, tc.reason)
			}
			status, data = postFacilitator(t, n, "/settle", body)
			if status != 200 || gjson.GetBytes(data, "success").Bool() || gjson.GetBytes(data, "errorReason").String() != tc.reason {
				t.Errorf("/settle: %d %s; want errorReason %s", status, data, tc.reason)
			}
			if tx := gjson.GetBytes(data, "transaction"); !tx.Exists() || tx.String() != "" {
				t.Errorf("/settle failure transaction field: %s", data)
			}
		})
	}
	if b := balance(t, n, n.PayTo); b != 0 {
		t.Errorf("payee received %d", b)
	}
	if s := n.Facilitator.Settled(); s != 0 {
		t.Errorf("Settled = %d", s)
	}
}

func setField(key string, value any) func(json.RawMessage) json.RawMessage {
	return func(raw json.RawMessage) json.RawMessage {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			panic(err)
		}
		m[key] = value
		b, _ := json.Marshal(m)
		return b
	}
}

// TestSettleReplay settles one authorization, then again: the second time
// the token has burnt the nonce, and only one transfer happened.
func TestSettleReplay(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	p := newPayer(t, n, 1_000_000)
	body, a := facilitatorBody(t, n, p, requirement(t, n, 10_000, nil), payOptions{})

	status, data := postFacilitator(t, n, "/verify", body)
	if status != 200 || !gjson.GetBytes(data, "isValid").Bool() || !strings.EqualFold(gjson.GetBytes(data, "payer").String(), p.addr.Hex()) {
		t.Fatalf("/verify: %d %s", status, data)
	}
	status, data = postFacilitator(t, n, "/settle", body)
	if status != 200 || !gjson.GetBytes(data, "success").Bool() {
		t.Fatalf("/settle: %d %s", status, data)
	}
	if got := gjson.GetBytes(data, "network").String(); got != n.Chain.Network() {
		t.Errorf("network %q", got)
	}
	if tx := gjson.GetBytes(data, "transaction").String(); len(tx) != 66 {
		t.Errorf("transaction %q", tx)
	}
	used, err := n.Chain.AuthorizationState(context.Background(), p.addr, a.Nonce)
	if err != nil || !used {
		t.Fatalf("authorization not used after settle: %v %v", used, err)
	}

	status, data = postFacilitator(t, n, "/settle", body)
	if status != 200 || gjson.GetBytes(data, "success").Bool() || gjson.GetBytes(data, "errorReason").String() != reasonNonceUsed {
		t.Fatalf("replayed /settle: %d %s", status, data)
	}
	_, data = postFacilitator(t, n, "/verify", body)
	if gjson.GetBytes(data, "invalidReason").String() != reasonNonceUsed {
		t.Errorf("/verify after settle: %s", data)
	}
	if b := balance(t, n, n.PayTo); b != 10_000 {
		t.Errorf("payee balance %d, want one transfer of 10000", b)
	}
	if s := n.Facilitator.Settled(); s != 1 {
		t.Errorf("Settled = %d", s)
	}
}

// TestSettleSameAuthorizationConcurrently posts one authorization to
// /settle several times at once: exactly one settles, the others are told
// the nonce is used, and no transaction is wasted on a revert.
func TestSettleSameAuthorizationConcurrently(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	p := newPayer(t, n, 1_000_000)
	body, _ := facilitatorBody(t, n, p, requirement(t, n, 10_000, nil), payOptions{})

	const tries = 4
	reasons := make([]string, tries)
	var wg sync.WaitGroup
	for i := range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, data := postFacilitator(goroutineTB{t}, n, "/settle", body)
			if gjson.GetBytes(data, "success").Bool() {
				reasons[i] = "ok"
			} else {
				reasons[i] = gjson.GetBytes(data, "errorReason").String()
			}
		}()
	}
	wg.Wait()
	ok := 0
	for _, r := range reasons {
		switch r {
		case "ok":
			ok++
		case reasonNonceUsed:
		default:
			t.Errorf("unexpected outcome %q", r)
		}
	}
	if ok != 1 {
		t.Errorf("%d settlements succeeded (%v), want 1", ok, reasons)
	}
	if b := balance(t, n, n.PayTo); b != 10_000 {
		t.Errorf("payee balance %d", b)
	}
	// Every transaction the facilitator sent succeeded: its account nonce
	// equals the number of successful settlements.
	sent, err := n.Chain.Client().NonceAt(context.Background(), n.Facilitator.Address(), nil)
	if err != nil || sent != 1 {
		t.Errorf("facilitator sent %d transactions (%v), want 1", sent, err)
	}
}

// TestVerifyV1 checks both v1 spellings of the local network.
func TestVerifyV1(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	p := newPayer(t, n, 1_000_000)
	for _, tc := range []struct{ payloadNet, reqNet string }{
		{"eip155:1337", "eip155:1337"},
		{V1NetworkName, V1NetworkName},
		{V1NetworkName, "eip155:1337"},
	} {
		req := mustJSON(t, map[string]any{
			"scheme": "exact", "network": tc.reqNet, "maxAmountRequired": "5000", "resource": "http://127.0.0.1/x",
			"description": "", "mimeType": "", "payTo": n.PayTo.Hex(), "maxTimeoutSeconds": 60,
			"asset": n.Chain.TokenAddress().Hex(), "outputSchema": nil,
			"extra": map[string]any{"name": n.Chain.TokenName(), "version": n.Chain.TokenVersion()},
		})
		// The signing domain always uses the chain id, whatever the name.
		signed := offer{version: 1, accepted: mustJSON(t, map[string]any{
			"network": "eip155:1337", "maxAmountRequired": "5000", "payTo": n.PayTo.Hex(), "maxTimeoutSeconds": 60,
			"asset": n.Chain.TokenAddress().Hex(), "extra": map[string]any{"name": n.Chain.TokenName(), "version": n.Chain.TokenVersion()},
		})}
		a, sig := authorize(t, p, signed, payOptions{})
		payload := mustJSON(t, map[string]any{"x402Version": 1, "scheme": "exact", "network": tc.payloadNet, "payload": exactPayload(a, sig)})
		body := mustJSON(t, map[string]any{"x402Version": 1, "paymentPayload": json.RawMessage(payload), "paymentRequirements": req})
		status, data := postFacilitator(t, n, "/verify", body)
		if status != 200 || !gjson.GetBytes(data, "isValid").Bool() {
			t.Errorf("%s/%s: /verify %d %s", tc.payloadNet, tc.reqNet, status, data)
		}
		status, data = postFacilitator(t, n, "/settle", body)
		if status != 200 || !gjson.GetBytes(data, "success").Bool() || gjson.GetBytes(data, "network").String() != tc.reqNet {
			t.Errorf("%s/%s: /settle %d %s", tc.payloadNet, tc.reqNet, status, data)
		}
	}
	if b := balance(t, n, n.PayTo); b != 15_000 {
		t.Errorf("payee balance %d", b)
	}
}

// TestFacilitatorRejectsMalformedRequests covers what is refused before any
// check runs, and payload encodings the protocol does not allow.
func TestFacilitatorRejectsMalformedRequests(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	p := newPayer(t, n, 1_000_000)
	good, _ := facilitatorBody(t, n, p, requirement(t, n, 10_000, nil), payOptions{})

	for name, tc := range map[string]struct {
		body   []byte
		status int
	}{
		"not JSON":       {[]byte("hello"), 400},
		"array":          {[]byte("[]"), 400},
		"trailing data":  {append(append([]byte(nil), good...), []byte(` {}`)...), 400},
		"duplicate key":  {[]byte(`{"x402Version":2,"x402Version":1,"paymentPayload":{},"paymentRequirements":{}}`), 400},
		"folded dup key": {[]byte(`{"x402Version":2,"X402VERSION":1,"paymentPayload":{},"paymentRequirements":{}}`), 400},
		"no payload":     {[]byte(`{"x402Version":2,"paymentRequirements":{}}`), 400},
		"too large":      {append([]byte(`{"pad":"`), append(bytes.Repeat([]byte("a"), maxRequestBytes), []byte(`"}`)...)...), 413},
		"too deep":       {[]byte(`{"x402Version":2,"paymentPayload":{},"paymentRequirements":{}, "x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`), 400},
	} {
		status, data := postFacilitator(t, n, "/verify", tc.body)
		if status != tc.status || !gjson.GetBytes(data, "error").Exists() {
			t.Errorf("%s: %d %s; want %d with an error", name, status, data, tc.status)
		}
	}
	if resp, _ := do(t, "GET", n.FacilitatorURL+"/verify", nil, nil); resp.StatusCode != 405 {
		t.Errorf("GET /verify: %d", resp.StatusCode)
	}

	// Numbers in the authorization must be decimal strings.
	for name, edit := range map[string]func(auth map[string]any){
		"value as JSON number": func(a map[string]any) { a["value"] = 10000 },
		"value in hex":         func(a map[string]any) { a["value"] = "0x2710" },
		"value with sign":      func(a map[string]any) { a["value"] = "+10000" },
		"leading zero":         func(a map[string]any) { a["value"] = "010000" },
		"short nonce":          func(a map[string]any) { a["nonce"] = "0x1234" },
		"from without 0x":      func(a map[string]any) { a["from"] = strings.TrimPrefix(a["from"].(string), "0x") },
	} {
		var doc map[string]any
		if err := json.Unmarshal(good, &doc); err != nil {
			t.Fatal(err)
		}
		edit(doc["paymentPayload"].(map[string]any)["payload"].(map[string]any)["authorization"].(map[string]any))
		status, data := postFacilitator(t, n, "/verify", mustJSON(t, doc))
		if status != 200 || gjson.GetBytes(data, "invalidReason").String() != reasonPayload {
			t.Errorf("%s: %d %s", name, status, data)
		}
	}

	// The good body still verifies: the refusals above were about the edits.
	if _, data := postFacilitator(t, n, "/verify", good); !gjson.GetBytes(data, "isValid").Bool() {
		t.Errorf("unmodified payment: %s", data)
	}
}

// TestSignatureMalleability sends the high-s twin of a valid signature: it
// recovers to the same address, but the token (like every EIP-2 aware
// verifier) refuses it, so the facilitator does too.
func TestSignatureMalleability(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	p := newPayer(t, n, 1_000_000)
	good, _ := facilitatorBody(t, n, p, requirement(t, n, 10_000, nil), payOptions{})
	var doc map[string]any
	if err := json.Unmarshal(good, &doc); err != nil {
		t.Fatal(err)
	}
	payload := doc["paymentPayload"].(map[string]any)["payload"].(map[string]any)
	sig := common.FromHex(payload["signature"].(string))
	s := new(big.Int).SetBytes(sig[32:64])
	s.Sub(crypto.S256().Params().N, s)
	s.FillBytes(sig[32:64])
	sig[64] ^= 1 // 27 <-> 28
	payload["signature"] = "0x" + common.Bytes2Hex(sig)
	_, data := postFacilitator(t, n, "/verify", mustJSON(t, doc))
	if gjson.GetBytes(data, "invalidReason").String() != reasonSignature {
		t.Errorf("high-s signature: %s", data)
	}
}

func TestDiscoveryPagination(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	get := func(query string) (int, []byte) {
		resp, body := do(t, "GET", n.FacilitatorURL+"/discovery/resources"+query, nil, nil)
		return resp.StatusCode, body
	}

	status, body := get("?type=http")
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	if v := gjson.GetBytes(body, "x402Version").Int(); v != 2 {
		t.Errorf("x402Version %d", v)
	}
	if pg := gjson.GetBytes(body, "pagination").Raw; pg != `{"limit":20,"offset":0,"total":5}` {
		t.Errorf("pagination %s", pg)
	}
	items := gjson.GetBytes(body, "items").Array()
	if len(items) != 5 {
		t.Fatalf("%d items", len(items))
	}
	want := map[string]struct {
		version int64
		amount  string
	}{
		"/v2/weather": {2, "10000"}, "/v1/joke": {1, "20000"}, "/v2/summarize": {2, "30000"},
		"/v1/fx": {1, "5000"}, "/v2/report": {2, "500000"},
	}
	for _, it := range items {
		path := strings.TrimPrefix(it.Get("resource").String(), n.APIURL)
		w, ok := want[path]
		if !ok {
			t.Errorf("unexpected resource %s", it.Get("resource"))
			continue
		}
		amount := it.Get("accepts.0.amount")
		if w.version == 1 {
			amount = it.Get("accepts.0.maxAmountRequired")
		}
		if it.Get("x402Version").Int() != w.version || amount.String() != w.amount || it.Get("type").String() != "http" {
			t.Errorf("%s: %s", path, it.Raw)
		}
		if _, err := time.Parse(time.RFC3339, it.Get("lastUpdated").String()); err != nil {
			t.Errorf("%s lastUpdated: %v", path, err)
		}
		if it.Get("metadata.input.type").String() != "http" || !it.Get("metadata.output.example").Exists() {
			t.Errorf("%s metadata %s", path, it.Get("metadata").Raw)
		}
	}

	for _, tc := range []struct {
		query      string
		pagination string
		items      int
	}{
		{"?limit=2", `{"limit":2,"offset":0,"total":5}`, 2},
		{"?limit=2&offset=2", `{"limit":2,"offset":2,"total":5}`, 2},
		{"?limit=2&offset=4", `{"limit":2,"offset":4,"total":5}`, 1},
		{"?offset=9", `{"limit":20,"offset":9,"total":5}`, 0},
		{"?limit=1000", `{"limit":100,"offset":0,"total":5}`, 5},
		{"?type=mcp", `{"limit":20,"offset":0,"total":0}`, 0},
	} {
		status, body := get(tc.query)
		if status != 200 || gjson.GetBytes(body, "pagination").Raw != tc.pagination || len(gjson.GetBytes(body, "items").Array()) != tc.items {
			t.Errorf("%s: %d %s", tc.query, status, body)
		}
	}
	// Pages do not overlap and together list everything once.
	seen := map[string]bool{}
	for off := 0; off < 5; off += 2 {
		_, body := get("?limit=2&offset=" + strconv.Itoa(off))
		for _, it := range gjson.GetBytes(body, "items").Array() {
			if seen[it.Get("resource").String()] {
				t.Errorf("%s listed twice", it.Get("resource"))
			}
			seen[it.Get("resource").String()] = true
		}
	}
	if len(seen) != 5 {
		t.Errorf("paging saw %d resources", len(seen))
	}
	for _, q := range []string{"?limit=-1", "?offset=x", "?limit=1.5"} {
		if status, _ := get(q); status != 400 {
			t.Errorf("%s: %d, want 400", q, status)
		}
	}
}

// TestDiscoverySearch: /discovery/search answers in the bazaar
// specification's shape (resources, partialResults, pagination.cursor),
// pages by cursor, filters like the listing, and can be switched off.
func TestDiscoverySearch(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	get := func(path string) (int, []byte) {
		resp, body := do(t, "GET", n.FacilitatorURL+path, nil, nil)
		return resp.StatusCode, body
	}
	paths := func(body []byte) []string {
		var out []string
		for _, it := range gjson.GetBytes(body, "resources").Array() {
			out = append(out, strings.TrimPrefix(it.Get("resource").String(), n.APIURL))
		}
		return out
	}

	status, body := get("/discovery/search?query=Weather&type=http")
	if status != 200 || !slices.Equal(paths(body), []string{"/v2/weather"}) ||
		gjson.GetBytes(body, "partialResults").Type != gjson.False || gjson.GetBytes(body, "pagination").Raw != `{"limit":20,"cursor":null}` {
		t.Errorf("weather: %d %s", status, body)
	}
	// Words match words of the URL, description, tags or method, or their
	// beginnings; more words matched come first.
	_, body = get("/discovery/search?query=summarize+report+premium&limit=1")
	if got := paths(body); !slices.Equal(got, []string{"/v2/report"}) || gjson.GetBytes(body, "pagination.cursor").String() != "o1" {
		t.Errorf("first page: %s", body)
	}
	_, body = get("/discovery/search?query=summarize+report+premium&limit=1&cursor=o1")
	if got := paths(body); !slices.Equal(got, []string{"/v2/summarize"}) || gjson.GetBytes(body, "pagination.cursor").Type != gjson.Null {
		t.Errorf("last page: %s", body)
	}
	_, body = get("/discovery/search?query=post")
	if got := paths(body); !slices.Equal(got, []string{"/v2/summarize"}) {
		t.Errorf("method: %q", got)
	}
	for _, q := range []string{"network=eip155:1", "scheme=upto", "payTo=0x0000000000000000000000000000000000000001"} {
		if _, body := get("/discovery/search?query=weather&" + q); len(paths(body)) != 0 {
			t.Errorf("%s: %s", q, body)
		}
		if _, body := get("/discovery/resources?" + q); gjson.GetBytes(body, "pagination.total").Int() != 0 {
			t.Errorf("listing %s: %s", q, body)
		}
	}
	if _, body := get("/discovery/search?query=weather&network=" + n.Chain.Network() + "&payTo=" + strings.ToLower(n.PayTo.Hex())); len(paths(body)) != 1 {
		t.Errorf("matching filters: %s", body)
	}
	for _, q := range []string{"", "?query=", "?query=%21%21", "?query=x&cursor=abc", "?query=x&limit=-2", "?query=x&network=a%20b"} {
		if status, body := get("/discovery/search" + q); status != 400 || gjson.GetBytes(body, "error").String() == "" {
			t.Errorf("%q: %d %s", q, status, body)
		}
	}
	if got := n.Facilitator.Searches(); len(got) != 14 || got[0] != "Weather" || got[1] != "summarize report premium" {
		t.Errorf("searches seen: %q", got)
	}

	n.Facilitator.SetSearch(false)
	if status, _ := get("/discovery/search?query=weather"); status != 404 {
		t.Errorf("search off: %d, want 404", status)
	}
	if status, _ := get("/discovery/resources"); status != 200 {
		t.Errorf("listing with search off: %d", status)
	}
}

// goroutineTB lets a helper that fails with Fatal run on a goroutine other
// than the test's: it records the failure and ends only that goroutine.
type goroutineTB struct{ testing.TB }

func (g goroutineTB) Fatal(args ...any) {
	g.TB.Helper()
	g.TB.Error(args...)
	runtime.Goexit()
}

func (g goroutineTB) Fatalf(format string, args ...any) {
	g.TB.Helper()
	g.TB.Errorf(format, args...)
	runtime.Goexit()
}

func decodeB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
