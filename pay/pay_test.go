package pay

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/policy"
)

const funding = 10_000_000 // 10 USDC

func TestPaysV2AndV1OnChain(t *testing.T) {
	n := startNet(t, localnet.NetworkConfig{}, funding)
	c := n.client(t, policy.Default())
	ctx := context.Background()
	payer0, payee0 := n.balances(t)

	for _, tc := range []struct {
		path  string
		price int64
	}{
		{"/v2/weather?city=Lisbon", 10000},
		{"/v1/joke", 20000},
	} {
		res, err := c.Fetch(ctx, Request{URL: n.APIURL + tc.path})
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if res.Status != 200 || res.Payment == nil || !res.Payment.Settled {
			t.Fatalf("%s: result %+v", tc.path, res)
		}
		p := res.Payment
		if p.Amount.Cmp(big.NewInt(tc.price)) != 0 || p.Payer != n.payer || p.PayTo != n.PayTo || p.Network != n.token.Network {
			t.Errorf("%s: receipt %+v", tc.path, p)
		}
		rc, err := n.Chain.Client().TransactionReceipt(ctx, common.HexToHash(p.Transaction))
		if err != nil || rc.Status != 1 {
			t.Errorf("%s: transaction %s not mined successfully: %v", tc.path, p.Transaction, err)
		}
		var nonce [32]byte
		nonce = p.Nonce
		if used, err := n.Chain.AuthorizationState(ctx, n.payer, nonce); err != nil || !used {
			t.Errorf("%s: nonce %s not burned on chain (%v)", tc.path, p.NonceHex(), err)
		}
	}
	payer1, payee1 := n.balances(t)
	if d := new(big.Int).Sub(payer0, payer1); d.Int64() != 30000 {
		t.Errorf("payer paid %s, want 30000", d)
	}
	if d := new(big.Int).Sub(payee1, payee0); d.Int64() != 30000 {
		t.Errorf("payee got %s, want 30000", d)
	}
	if got := n.signer.calls.Load(); got != 2 {
		t.Errorf("%d signatures for 2 payments", got)
	}
}

func TestPaysPOSTWithBody(t *testing.T) {
	n := startNet(t, localnet.NetworkConfig{}, funding)
	c := n.client(t, policy.Default())
	res, err := c.Fetch(context.Background(), Request{Method: "POST", URL: n.APIURL + "/v2/summarize",
		Headers: map[string]string{"Content-Type": "application/json"}, Body: []byte(`{"text":"Paying per request works. It needs no account."}`)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Payment == nil || res.Payment.Amount.String() != "30000" || !strings.Contains(string(res.Body), "Paying per request works") {
		t.Fatalf("result %+v body %s", res, res.Body)
	}
}

func TestFreeRouteSignsNothing(t *testing.T) {
	n := startNet(t, localnet.NetworkConfig{}, funding)
	res, err := n.client(t, policy.Default()).Fetch(context.Background(), Request{URL: n.APIURL + "/free/status"})
	if err != nil || res.Status != 200 || res.Payment != nil {
		t.Fatalf("free route: %+v, %v", res, err)
	}
	if n.signer.calls.Load() != 0 {
		t.Error("a free route was signed for")
	}
}

// rewrite returns a route table where path's options are rewritten.
func rewrite(path string, f func(o map[string]any)) []localnet.Route {
	routes := localnet.DefaultRoutes()
	for i := range routes {
		if strings.HasPrefix(path, routes[i].Path) {
			routes[i].Accepts = func(opts []map[string]any) []map[string]any {
				for _, o := range opts {
					f(o)
				}
				return opts
			}
		}
	}
	return routes
}

func extra(o map[string]any) map[string]any {
	e, _ := o["extra"].(map[string]any)
	if e == nil {
		e = map[string]any{}
		o["extra"] = e
	}
	return e
}

// TestNoSignatureWhenRefused covers every refusal that must happen before
// the signer is reached: the counting signer stays at zero and no balance
// moves.
func TestNoSignatureWhenRefused(t *testing.T) {
	narrow := policy.Default()
	narrow.Networks = []string{"eip155:8453"}
	for _, tc := range []struct {
		name     string
		routes   []localnet.Route
		path     string
		policy   policy.Policy
		maxPrice string
		want     any
		reason   string
	}{
		{name: "unknown token", path: "/v2/weather",
			routes: rewrite("/v2/weather", func(o map[string]any) { o["asset"] = "0x1111111111111111111111111111111111111111" }),
			want:   &UnpayableError{}, reason: "not in the token registry"},
		{name: "extra name mismatch", path: "/v2/weather",
			routes: rewrite("/v2/weather", func(o map[string]any) { extra(o)["name"] = "USDC" }),
			want:   &UnpayableError{}, reason: "registry says"},
		{name: "extra version mismatch", path: "/v1/joke",
			routes: rewrite("/v1/joke", func(o map[string]any) { extra(o)["version"] = "1" }),
			want:   &UnpayableError{}, reason: "registry says"},
		{name: "permit2 only", path: "/v2/weather",
			routes: rewrite("/v2/weather", func(o map[string]any) { extra(o)["assetTransferMethod"] = "permit2" }),
			want:   &UnpayableError{}, reason: "permit2"},
		{name: "upto only", path: "/v2/weather",
			routes: rewrite("/v2/weather", func(o map[string]any) { o["scheme"] = "upto" }),
			want:   &UnpayableError{}, reason: "upto"},
		{name: "window too short to settle", path: "/v2/weather",
			routes: rewrite("/v2/weather", func(o map[string]any) { o["maxTimeoutSeconds"] = 3 }),
			want:   &UnpayableError{}, reason: "too short"},
		{name: "over the cap", path: "/v2/report", want: &DeniedError{}, reason: "above the operator's per-payment cap of 0.1 USD"},
		{name: "disallowed network", path: "/v2/weather", policy: narrow, want: &DeniedError{}, reason: "not in the operator's allowed networks"},
		{name: "max_price below price", path: "/v2/weather", maxPrice: "0.005", want: &DeniedError{}, reason: "max_price of 0.005 USD"},
		{name: "max_price cannot raise the cap", path: "/v2/report", maxPrice: "100", want: &DeniedError{}, reason: "operator's per-payment cap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := startNet(t, localnet.NetworkConfig{Routes: tc.routes}, funding)
			p := tc.policy
			if !p.MaxPerPayment.IsSet() {
				p = policy.Default()
			}
			r := Request{URL: n.APIURL + tc.path}
			if tc.maxPrice != "" {
				r.MaxPrice = policy.MustUSD(tc.maxPrice)
			}
			payer0, payee0 := n.balances(t)
			_, err := n.client(t, p).Fetch(context.Background(), r)
			if err == nil {
				t.Fatal("paid")
			}
			switch tc.want.(type) {
			case *UnpayableError:
				var e *UnpayableError
				if !errors.As(err, &e) {
					t.Fatalf("err = %T %v", err, err)
				}
			case *DeniedError:
				var e *DeniedError
				if !errors.As(err, &e) {
					t.Fatalf("err = %T %v", err, err)
				}
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("err = %v, want it to say %q", err, tc.reason)
			}
			if got := n.signer.calls.Load(); got != 0 {
				t.Errorf("the signer was called %d times", got)
			}
			payer1, payee1 := n.balances(t)
			if payer0.Cmp(payer1) != 0 || payee0.Cmp(payee1) != 0 {
				t.Errorf("balances moved: payer %s -> %s, payee %s -> %s", payer0, payer1, payee0, payee1)
			}
		})
	}
}

// TestNo402Repay: a server that takes the signature and answers 402 again
// gets exactly one signature, and the call reports a failed payment.
func TestNo402Repay(t *testing.T) {
	routes := localnet.DefaultRoutes()
	for i := range routes {
		if routes[i].Path == "/v2/weather" {
			routes[i].AlwaysRequirePayment = true
		}
	}
	n := startNet(t, localnet.NetworkConfig{Routes: routes}, funding)
	payer0, _ := n.balances(t)
	_, err := n.client(t, policy.Default()).Fetch(context.Background(), Request{URL: n.APIURL + "/v2/weather?city=Oslo"})
	var failed *PaymentFailedError
	if !errors.As(err, &failed) || failed.Status != http.StatusPaymentRequired {
		t.Fatalf("err = %T %v", err, err)
	}
	if failed.Receipt == nil || failed.Receipt.Nonce == [32]byte{} {
		t.Error("the failure does not say which authorization was sent")
	}
	if got := n.signer.calls.Load(); got != 1 {
		t.Errorf("%d signatures, want exactly 1", got)
	}
	if payer1, _ := n.balances(t); payer0.Cmp(payer1) != 0 {
		t.Errorf("payer balance moved %s -> %s", payer0, payer1)
	}
}

// TestFailedSettlementKeepsItsTransaction: a server whose settlement
// failed but named a transaction (a facilitator that gave up waiting for
// its receipt) leaves the payment unknown with that hash on the record,
// for the reconciler to look up; text that is not a transaction hash is
// not kept, and the outcome is still recorded. A fake front is used
// because the local paid API never answers like that; the 402 it serves is
// the local network's.
func TestFailedSettlementKeepsItsTransaction(t *testing.T) {
	n := startNet(t, localnet.NetworkConfig{}, funding)
	hash := "0x" + strings.Repeat("5a", 32)
	for _, tc := range []struct{ named, kept string }{{hash, hash}, {"0xnot-a-hash", ""}} {
		front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("PAYMENT-SIGNATURE") != "" {
				st, _ := json.Marshal(map[string]any{"success": false, "errorReason": "unexpected_settle_error",
					"transaction": tc.named, "network": n.Chain.Network()})
				w.Header().Set("PAYMENT-RESPONSE", base64.StdEncoding.EncodeToString(st))
				http.Error(w, "settlement timed out", http.StatusBadGateway)
				return
			}
			relay(w, n.APIURL+"/v2/weather?city=Rome")
		}))
		led := openLedger(t)
		_, err := n.clientWith(t, policy.Default(), led).Fetch(context.Background(), Request{URL: front.URL + "/v2/weather?city=Rome"})
		front.Close()
		var failed *PaymentFailedError
		if !errors.As(err, &failed) || failed.Receipt == nil {
			t.Fatalf("err = %T %v", err, err)
		}
		r, err := led.Get(context.Background(), failed.Receipt.LedgerID)
		if err != nil {
			t.Fatal(err)
		}
		if r.State != ledger.Unknown || r.Transaction != tc.kept || !strings.Contains(r.Note, "answered 502") {
			t.Errorf("named %q: record %s, transaction %q, note %q; want unknown with %q", tc.named, r.State, r.Transaction, r.Note, tc.kept)
		}
	}
}

// TestPaymentHeaderStaysWithItsOrigin: a server that answers the paid retry
// with a redirect to another origin must not receive the payment header
// there. A fake front is used because no honest server redirects a paid
// request elsewhere; the 402 it serves is the local network's.
func TestPaymentHeaderStaysWithItsOrigin(t *testing.T) {
	n := startNet(t, localnet.NetworkConfig{}, funding)
	var leaked atomic.Value
	leaked.Store("")
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(r.Header.Get("PAYMENT-SIGNATURE") + r.Header.Get("X-PAYMENT"))
		io.WriteString(w, "elsewhere")
	}))
	defer other.Close()
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("PAYMENT-SIGNATURE") != "" {
			http.Redirect(w, r, other.URL+"/landing", http.StatusFound)
			return
		}
		relay(w, n.APIURL+"/v2/weather?city=Rome")
	}))
	defer front.Close()

	res, err := n.client(t, policy.Default()).Fetch(context.Background(), Request{URL: front.URL + "/v2/weather?city=Rome"})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Body) != "elsewhere" {
		t.Fatalf("redirect not followed: %q", res.Body)
	}
	if got := leaked.Load().(string); got != "" {
		t.Errorf("payment header sent to another origin: %q", got)
	}
	if res.Payment == nil || res.Payment.Settled {
		t.Errorf("a payment without settlement reported as settled: %+v", res.Payment)
	}
}

func TestQuote(t *testing.T) {
	n := startNet(t, localnet.NetworkConfig{}, funding)
	c := n.client(t, policy.Default())
	q, err := c.Quote(context.Background(), Request{URL: n.APIURL + "/v2/weather?city=Lisbon"})
	if err != nil {
		t.Fatal(err)
	}
	if q.Free || q.Chosen == nil || q.Judgement.Verdict != VerdictAllowed || q.Chosen.Wire.Amount.Int64() != 10000 || q.Chosen.Token.Symbol != "USDC" {
		t.Fatalf("quote %+v", q)
	}
	q, err = c.Quote(context.Background(), Request{URL: n.APIURL + "/v2/report"})
	if err != nil || q.Judgement.Verdict != VerdictDenied || len(q.Judgement.Reasons) == 0 || !strings.Contains(q.Judgement.Reasons[0], "max_per_payment") {
		t.Fatalf("quote of an over-cap route: %+v, %v", q, err)
	}
	q, err = c.Quote(context.Background(), Request{URL: n.APIURL + "/free/status"})
	if err != nil || !q.Free || q.Judgement.Verdict != VerdictFree {
		t.Fatalf("quote of a free route: %+v, %v", q, err)
	}
	if n.signer.calls.Load() != 0 {
		t.Error("quoting signed something")
	}
}

func TestRequestValidation(t *testing.T) {
	c, err := New(Config{Registry: nil})
	if err == nil {
		t.Fatal("client without registry")
	}
	n := startNet(t, localnet.NetworkConfig{}, funding)
	c = n.client(t, policy.Default())
	for name, r := range map[string]Request{
		"scheme":           {URL: "ftp://example.com/"},
		"userinfo":         {URL: "http://ok.com@127.0.0.1:1/"},
		"no host":          {URL: "http:///path"},
		"method":           {URL: n.APIURL, Method: "CONNECT"},
		"payment header":   {URL: n.APIURL, Headers: map[string]string{"payment-signature": "x"}},
		"x-payment":        {URL: n.APIURL, Headers: map[string]string{"X-Payment": "x"}},
		"header injection": {URL: n.APIURL, Headers: map[string]string{"X-A": "a\r\nX-B: b"}},
		"big body":         {URL: n.APIURL, Method: "POST", Body: make([]byte, MaxRequestBody+1)},
	} {
		var re *RequestError
		if _, err := c.Fetch(context.Background(), r); !errors.As(err, &re) {
			t.Errorf("%s: err = %v, want *RequestError", name, err)
		}
	}
}

// relay answers w with the local network's own (unpaid) answer for url: a
// fake front serves the real 402.
func relay(w http.ResponseWriter, url string) {
	resp, err := http.Get(url)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}
