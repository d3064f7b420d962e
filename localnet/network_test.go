package localnet

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
	"github.com/tidwall/gjson"
)

// The tests pay through a minimal client of their own, written against the
// specification with gjson and apitypes: the point of this package is to be
// an independent counterpart for our real client, so the tests must not lean
// on the server code (or on our client) to build what they send.

// startNetwork starts a network that stops when the test ends.
func startNetwork(t testing.TB, cfg NetworkConfig) *Network {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return n
}

func newPayer(t testing.TB, n *Network, tokens int64) *payer {
	t.Helper()
	key, addr, err := n.NewPayer(context.Background(), big.NewInt(tokens))
	if err != nil {
		t.Fatalf("NewPayer: %v", err)
	}
	return &payer{key: key, addr: addr}
}

func balance(t testing.TB, n *Network, addr common.Address) int64 {
	t.Helper()
	b, err := n.Chain.BalanceOf(context.Background(), addr)
	if err != nil {
		t.Fatalf("BalanceOf: %v", err)
	}
	return b.Int64()
}

type payer struct {
	key  *ecdsa.PrivateKey
	addr common.Address
}

// authorization is the message the test client signs.
type authorization struct {
	From, To                       common.Address
	Value, ValidAfter, ValidBefore *big.Int
	Nonce                          [32]byte
}

// domain is the token's EIP-712 domain as the client understands it.
type domain struct {
	Name, Version string
	ChainID       *big.Int
	Token         common.Address
}

func randomNonce(t testing.TB) [32]byte {
	var n [32]byte
	if _, err := rand.Read(n[:]); err != nil {
		t.Fatal(err)
	}
	return n
}

// sign produces the 65-byte r‖s‖v signature (v in {27,28}) of a.
func sign(t testing.TB, key *ecdsa.PrivateKey, d domain, a authorization) []byte {
	t.Helper()
	td := apitypes.TypedData{
		Types: apitypes.Types{
			"EIP712Domain": {
				{Name: "name", Type: "string"}, {Name: "version", Type: "string"},
				{Name: "chainId", Type: "uint256"}, {Name: "verifyingContract", Type: "address"},
			},
			"TransferWithAuthorization": {
				{Name: "from", Type: "address"}, {Name: "to", Type: "address"},
				{Name: "value", Type: "uint256"}, {Name: "validAfter", Type: "uint256"},
				{Name: "validBefore", Type: "uint256"}, {Name: "nonce", Type: "bytes32"},
			},
		},
		PrimaryType: "TransferWithAuthorization",
		Domain: apitypes.TypedDataDomain{
			Name: d.Name, Version: d.Version,
			ChainId: (*math.HexOrDecimal256)(d.ChainID), VerifyingContract: d.Token.Hex(),
		},
		Message: apitypes.TypedDataMessage{
			"from": a.From.Hex(), "to": a.To.Hex(), "value": a.Value,
			"validAfter": a.ValidAfter, "validBefore": a.ValidBefore, "nonce": hexutil.Encode(a.Nonce[:]),
		},
	}
	digest, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		t.Fatalf("TypedDataAndHash: %v", err)
	}
	sig, err := crypto.Sign(digest, key)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	sig[64] += 27
	return sig
}

// exactPayload is the scheme payload, every number a decimal string.
func exactPayload(a authorization, sig []byte) map[string]any {
	return map[string]any{
		"signature": hexutil.Encode(sig),
		"authorization": map[string]any{
			"from": a.From.Hex(), "to": a.To.Hex(), "value": a.Value.String(),
			"validAfter": a.ValidAfter.String(), "validBefore": a.ValidBefore.String(),
			"nonce": hexutil.Encode(a.Nonce[:]),
		},
	}
}

func mustJSON(t testing.TB, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// offer is a 402 as the test client read it.
type offer struct {
	version    int
	accepted   json.RawMessage // the chosen option, verbatim
	resource   json.RawMessage // v2 only
	extensions json.RawMessage // v2 only, may be nil
	error      string
}

func (o offer) field(path string) gjson.Result { return gjson.GetBytes(o.accepted, path) }

func (o offer) amount() *big.Int {
	s := o.field("amount").String()
	if o.version == 1 {
		s = o.field("maxAmountRequired").String()
	}
	v, _ := new(big.Int).SetString(s, 10)
	return v
}

// read402 reads a 402 of either version and picks the first option.
func read402(t testing.TB, resp *http.Response, body []byte) offer {
	t.Helper()
	if resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("status %d, want 402; body %s", resp.StatusCode, body)
	}
	if h := resp.Header.Get("Payment-Required"); h != "" {
		doc, err := base64.StdEncoding.DecodeString(h)
		if err != nil {
			t.Fatalf("PAYMENT-REQUIRED is not base64: %v", err)
		}
		if v := gjson.GetBytes(doc, "x402Version").Int(); v != 2 {
			t.Fatalf("PAYMENT-REQUIRED x402Version %d", v)
		}
		o := offer{
			version:  2,
			accepted: json.RawMessage(gjson.GetBytes(doc, "accepts.0").Raw),
			resource: json.RawMessage(gjson.GetBytes(doc, "resource").Raw),
			error:    gjson.GetBytes(doc, "error").String(),
		}
		if ext := gjson.GetBytes(doc, "extensions"); ext.Exists() {
			o.extensions = json.RawMessage(ext.Raw)
		}
		return o
	}
	if v := gjson.GetBytes(body, "x402Version").Int(); v != 1 {
		t.Fatalf("402 without PAYMENT-REQUIRED and body x402Version %d: %s", v, body)
	}
	return offer{version: 1, accepted: json.RawMessage(gjson.GetBytes(body, "accepts.0").Raw), error: gjson.GetBytes(body, "error").String()}
}

// payOptions lets a test bend the client.
type payOptions struct {
	now            func() int64                          // clock for the validity window; wall clock when nil
	mutateAccepted func(json.RawMessage) json.RawMessage // v2: change the echoed option
	header         string                                // send the payment under this header instead
	domainName     string                                // sign under this EIP-712 name (facilitator tests)
	auth           func(*authorization)                  // change the authorization before signing
}

// authorize signs an authorization for offer o the way reference clients
// do: value = amount, to = payTo, validAfter 0 (v2) or now-600 (v1),
// validBefore = now + maxTimeoutSeconds.
func authorize(t testing.TB, p *payer, o offer, opt payOptions) (authorization, []byte) {
	t.Helper()
	now := time.Now().Unix()
	if opt.now != nil {
		now = opt.now()
	}
	chainID, ok := new(big.Int).SetString(strings.TrimPrefix(o.field("network").String(), "eip155:"), 10)
	if !ok {
		t.Fatalf("option network %q is not eip155", o.field("network").String())
	}
	a := authorization{
		From:        p.addr,
		To:          common.HexToAddress(o.field("payTo").String()),
		Value:       o.amount(),
		ValidAfter:  big.NewInt(0),
		ValidBefore: big.NewInt(now + o.field("maxTimeoutSeconds").Int()),
		Nonce:       randomNonce(t),
	}
	if o.version == 1 {
		a.ValidAfter = big.NewInt(now - 600)
	}
	if opt.auth != nil {
		opt.auth(&a)
	}
	d := domain{
		Name: o.field("extra.name").String(), Version: o.field("extra.version").String(),
		ChainID: chainID, Token: common.HexToAddress(o.field("asset").String()),
	}
	return a, sign(t, p.key, d, a)
}

// paymentHeader builds the payment header for offer o.
func buildPaymentHeader(t testing.TB, o offer, a authorization, sig []byte, opt payOptions) (name, value string) {
	t.Helper()
	var doc []byte
	if o.version == 2 {
		accepted := o.accepted
		if opt.mutateAccepted != nil {
			accepted = opt.mutateAccepted(accepted)
		}
		p := map[string]any{"x402Version": 2, "resource": o.resource, "accepted": accepted, "payload": exactPayload(a, sig)}
		if o.extensions != nil {
			p["extensions"] = o.extensions
		}
		doc, name = mustJSON(t, p), "PAYMENT-SIGNATURE"
	} else {
		doc = mustJSON(t, map[string]any{
			"x402Version": 1, "scheme": o.field("scheme").String(), "network": o.field("network").String(),
			"payload": exactPayload(a, sig),
		})
		name = "X-PAYMENT"
	}
	if opt.header != "" {
		name = opt.header
	}
	return name, base64.StdEncoding.EncodeToString(doc)
}

func do(t testing.TB, method, url string, body []byte, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, data
}

// paid is the outcome of one paid call.
type paid struct {
	offer offer
	auth  authorization
	resp  *http.Response
	body  []byte
}

// pay requests url, reads the 402, signs and repeats the request once.
func pay(t testing.TB, p *payer, method, url string, body []byte, opt payOptions) paid {
	t.Helper()
	resp, data := do(t, method, url, body, nil)
	o := read402(t, resp, data)
	a, sig := authorize(t, p, o, opt)
	name, value := buildPaymentHeader(t, o, a, sig, opt)
	resp, data = do(t, method, url, body, map[string]string{name: value})
	return paid{offer: o, auth: a, resp: resp, body: data}
}

// settlement decodes the settlement header of a response.
func settlement(t testing.TB, resp *http.Response, name string) settleResponse {
	t.Helper()
	h := resp.Header.Get(name)
	if h == "" {
		t.Fatalf("no %s header", name)
	}
	data, err := base64.StdEncoding.DecodeString(h)
	if err != nil {
		t.Fatalf("%s not base64: %v", name, err)
	}
	var s settleResponse
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return s
}

// checkSettled asserts a successful paid response: 200, a settlement header
// naming a mined, successful transaction that transferred exactly price
// from the payer to the payee.
func checkSettled(t *testing.T, n *Network, p *payer, got paid, header string, price int64) {
	t.Helper()
	if got.resp.StatusCode != http.StatusOK {
		t.Fatalf("paid request: status %d, body %s", got.resp.StatusCode, got.body)
	}
	s := settlement(t, got.resp, header)
	if !s.Success || s.Network != n.Chain.Network() || !strings.EqualFold(s.Payer, p.addr.Hex()) {
		t.Fatalf("settlement %+v", s)
	}
	receipt, err := n.Chain.Client().TransactionReceipt(context.Background(), common.HexToHash(s.Transaction))
	if err != nil {
		t.Fatalf("receipt of %s: %v", s.Transaction, err)
	}
	if receipt.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("transaction %s failed", s.Transaction)
	}
	// The receipt must carry the token's Transfer(from, to, value) event.
	transfer := crypto.Keccak256Hash([]byte("Transfer(address,address,uint256)"))
	found := false
	for _, l := range receipt.Logs {
		if l.Address == n.Chain.TokenAddress() && len(l.Topics) == 3 && l.Topics[0] == transfer &&
			common.BytesToAddress(l.Topics[1].Bytes()) == p.addr && common.BytesToAddress(l.Topics[2].Bytes()) == n.PayTo &&
			new(big.Int).SetBytes(l.Data).Int64() == price {
			found = true
		}
	}
	if !found {
		t.Fatalf("transaction %s has no Transfer of %d from payer to payee", s.Transaction, price)
	}
	used, err := n.Chain.AuthorizationState(context.Background(), p.addr, got.auth.Nonce)
	if err != nil || !used {
		t.Fatalf("authorization state after settlement: used=%v err=%v", used, err)
	}
}

func TestPaidGETv2(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	p := newPayer(t, n, 1_000_000)

	got := pay(t, p, "GET", n.APIURL+"/v2/weather?city=Paris", nil, payOptions{})
	checkSettled(t, n, p, got, "PAYMENT-RESPONSE", 10_000)
	if got.resp.Header.Get("X-Payment-Response") != "" {
		t.Error("v2 response carries X-PAYMENT-RESPONSE")
	}
	if city := gjson.GetBytes(got.body, "city").String(); city != "Paris" {
		t.Errorf("body %s", got.body)
	}
	if b := balance(t, n, p.addr); b != 990_000 {
		t.Errorf("payer balance %d, want 990000", b)
	}
	if b := balance(t, n, n.PayTo); b != 10_000 {
		t.Errorf("payee balance %d, want 10000", b)
	}
	if h := n.API.Hits("/v2/weather"); h != 1 {
		t.Errorf("Hits = %d, want 1", h)
	}
	if s := n.Facilitator.Settled(); s != 1 {
		t.Errorf("Settled = %d, want 1", s)
	}
}

func TestPaidGETv1(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	p := newPayer(t, n, 1_000_000)

	got := pay(t, p, "GET", n.APIURL+"/v1/joke", nil, payOptions{})
	if got.offer.version != 1 {
		t.Fatalf("/v1/joke answered a v%d 402", got.offer.version)
	}
	checkSettled(t, n, p, got, "X-PAYMENT-RESPONSE", 20_000)
	if got.resp.Header.Get("Payment-Response") != "" {
		t.Error("v1 response carries PAYMENT-RESPONSE")
	}
	if !gjson.GetBytes(got.body, "punchline").Exists() {
		t.Errorf("body %s", got.body)
	}
	if b := balance(t, n, p.addr); b != 980_000 {
		t.Errorf("payer balance %d", b)
	}
	if b := balance(t, n, n.PayTo); b != 20_000 {
		t.Errorf("payee balance %d", b)
	}
	if h := n.API.Hits("/v1/joke"); h != 1 {
		t.Errorf("Hits = %d", h)
	}
}

func TestPaidPOSTWithBody(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	p := newPayer(t, n, 1_000_000)

	body := []byte(`{"text":"Agents pay per call.  Nobody needs an account! Settlement is on chain."}`)
	got := pay(t, p, "POST", n.APIURL+"/v2/summarize", body, payOptions{})
	checkSettled(t, n, p, got, "PAYMENT-RESPONSE", 30_000)
	if s := gjson.GetBytes(got.body, "summary").String(); s != "Agents pay per call." {
		t.Errorf("summary %q (body %s)", s, got.body)
	}
	if w := gjson.GetBytes(got.body, "words").Int(); w != 12 {
		t.Errorf("words %d", w)
	}
	if s := gjson.GetBytes(got.body, "sentences").Int(); s != 3 {
		t.Errorf("sentences %d", s)
	}
	if b := balance(t, n, n.PayTo); b != 30_000 {
		t.Errorf("payee balance %d", b)
	}
}

func TestFreeRoute(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	resp, body := do(t, "GET", n.APIURL+"/free/status", nil, nil)
	if resp.StatusCode != 200 || gjson.GetBytes(body, "status").String() != "ok" {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
	if n.API.Hits("/free/status") != 1 {
		t.Error("free handler did not count")
	}
	if resp, _ := do(t, "GET", n.APIURL+"/nowhere", nil, nil); resp.StatusCode != 404 {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}
	if resp, _ := do(t, "DELETE", n.APIURL+"/v2/weather", nil, nil); resp.StatusCode != 405 {
		t.Errorf("wrong method: %d", resp.StatusCode)
	}
}

// TestConcurrentPayments sends 20 paid requests at once from four payers
// (so several authorizations of one payer are in flight together).
func TestConcurrentPayments(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	payers := make([]*payer, 4)
	for i := range payers {
		payers[i] = newPayer(t, n, 1_000_000)
	}
	const requests = 20
	var wg sync.WaitGroup
	results := make([]paid, requests)
	for i := range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = pay(goroutineTB{t}, payers[i%len(payers)], "GET", n.APIURL+"/v2/weather?city=c"+strconv.Itoa(i), nil, payOptions{})
		}()
	}
	wg.Wait()
	txs := map[string]bool{}
	for i, r := range results {
		if r.resp == nil || r.resp.StatusCode != 200 {
			t.Fatalf("request %d did not succeed", i)
		}
		s := settlement(t, r.resp, "PAYMENT-RESPONSE")
		if !s.Success || txs[s.Transaction] {
			t.Fatalf("request %d: settlement %+v (duplicate tx: %v)", i, s, txs[s.Transaction])
		}
		txs[s.Transaction] = true
	}
	if b := balance(t, n, n.PayTo); b != requests*10_000 {
		t.Errorf("payee balance %d, want %d", b, requests*10_000)
	}
	for _, p := range payers {
		if b := balance(t, n, p.addr); b != 1_000_000-5*10_000 {
			t.Errorf("payer %s balance %d", p.addr, b)
		}
	}
	if s := n.Facilitator.Settled(); s != requests {
		t.Errorf("Settled = %d", s)
	}
	if h := n.API.Hits("/v2/weather"); h != requests {
		t.Errorf("Hits = %d", h)
	}
}

func TestStartRejectsBadRoutes(t *testing.T) {
	t.Parallel()
	h := func(http.ResponseWriter, *http.Request) {}
	for name, routes := range map[string][]Route{
		"no handler":  {{Method: "GET", Path: "/x"}},
		"bad version": {{Method: "GET", Path: "/x", Price: big.NewInt(1), Version: 3, Handler: h}},
		"duplicate":   {{Method: "GET", Path: "/x", Handler: h}, {Method: "GET", Path: "/x", Handler: h}},
		"bad bazaar":  {{Method: "GET", Path: "/x", Handler: h, Bazaar: json.RawMessage(`{`)}},
	} {
		if _, err := Start(context.Background(), NetworkConfig{Routes: routes}); err == nil {
			t.Errorf("%s: Start succeeded", name)
		}
	}
}

func TestCloseIdempotent(t *testing.T) {
	t.Parallel()
	n, err := Start(context.Background(), NetworkConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(n.APIURL + "/free/status"); err == nil {
		t.Error("paid API still answers after Close")
	}
}

// BenchmarkPaidRequest measures one full v2 paid GET: 402, signature,
// verify, handler, settlement mined on chain. The chain may run far ahead of
// the clock here (one block per request), so the client takes its clock from
// the chain head, as it would on a real chain whose head tracks real time.
func BenchmarkPaidRequest(b *testing.B) {
	n := startNetwork(b, NetworkConfig{MaxClockDrift: 365 * 24 * time.Hour})
	p := newPayer(b, n, 1_000_000_000_000)
	now := func() int64 {
		head, err := n.Chain.Now(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		return max(time.Now().Unix(), int64(head))
	}
	url := n.APIURL + "/v2/weather?city=Lisbon"
	b.ReportAllocs()
	for b.Loop() {
		got := pay(b, p, "GET", url, nil, payOptions{now: now})
		if got.resp.StatusCode != 200 {
			b.Fatalf("status %d: %s", got.resp.StatusCode, got.body)
		}
	}
	if n.Facilitator.Settled() != b.N {
		b.Fatalf("settled %d of %d", n.Facilitator.Settled(), b.N)
	}
}
