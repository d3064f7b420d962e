package pay

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/policy"
)

// knownClient is a client that pays on the first request when it knows the
// terms, with a ledger the test reads.
func knownClient(t *testing.T, n *testNet, p policy.Policy) (*Client, *ledger.Ledger) {
	t.Helper()
	led := openLedger(t)
	return n.clientFor(t, Config{Policy: p, Ledger: led, KnownTerms: time.Minute}), led
}

// requests is how many requests the paid API has seen at path since the
// last call; its baseline starts at the count when it is made.
func requestsAt(n *testNet, path string) func() int {
	last := n.API.Requests(path)
	return func() int {
		now := n.API.Requests(path)
		d := now - last
		last = now
		return d
	}
}

func mustSettle(t *testing.T, c *Client, r Request) *Result {
	t.Helper()
	res, err := c.Fetch(context.Background(), r)
	if err != nil || res.Payment == nil || !res.Payment.Settled {
		t.Fatalf("fetch %s: %+v, %v", r.URL, res, err)
	}
	return res
}

// TestKnownTermsOneRoundTrip: once the terms are known (a fetch's 402, a
// quote), a fetch of the same method and URL pays with its first request:
// the server sees one request, the money moves once, one signature.
func TestKnownTermsOneRoundTrip(t *testing.T) {
	t.Parallel()
	n := startNet(t, localnet.NetworkConfig{}, funding)
	c, led := knownClient(t, n, policy.Default())
	ctx := context.Background()
	payer0, payee0 := n.balances(t)

	weather := Request{URL: n.APIURL + "/v2/weather?city=Lisbon"}
	reqs := requestsAt(n, "/v2/weather")
	mustSettle(t, c, weather)
	if got := reqs(); got != 2 {
		t.Fatalf("the first fetch made %d requests, want 2 (the unpaid one, then the paid one)", got)
	}
	res := mustSettle(t, c, weather)
	if got := reqs(); got != 1 {
		t.Errorf("the second fetch made %d requests, want 1", got)
	}
	if res.Judgement.Verdict != VerdictAllowed || res.Payment.Amount.String() != "10000" {
		t.Errorf("second fetch: %+v %+v", res.Judgement, res.Payment)
	}

	// A quote makes the terms known too (v1 this time: terms in the body).
	joke := Request{URL: n.APIURL + "/v1/joke"}
	jokes := requestsAt(n, "/v1/joke")
	if q, err := c.Quote(ctx, joke); err != nil || q.Judgement.Verdict != VerdictAllowed {
		t.Fatalf("quote: %+v, %v", q, err)
	}
	mustSettle(t, c, joke)
	if got := jokes(); got != 2 {
		t.Errorf("a quote and a fetch made %d requests, want 2 (one each)", got)
	}

	n.moved(t, payer0, payee0, 10_000+10_000+20_000)
	if got := len(n.Facilitator.Broadcasts()); got != 3 {
		t.Errorf("%d settlements, want 3", got)
	}
	if got := n.signer.calls.Load(); got != 3 {
		t.Errorf("%d signatures, want 3", got)
	}
	recs, err := led.Recent(ctx, 10)
	if err != nil || len(recs) != 3 {
		t.Fatalf("ledger: %d records, %v", len(recs), err)
	}
	for _, r := range recs {
		if r.State != ledger.Settled {
			t.Errorf("record %d is %s, want settled", r.ID, r.State)
		}
	}

	// Turned off, every fetch asks first.
	off := n.clientFor(t, Config{Policy: policy.Default(), Ledger: led})
	mustSettle(t, off, weather)
	mustSettle(t, off, weather)
	if got := reqs(); got != 4 {
		t.Errorf("without known terms, two fetches made %d requests, want 4", got)
	}
}

// TestKnownTermsPriceChanged: the price changed since the terms were seen.
// The payment sent on the old terms is answered 402; it stays counted as
// unknown (and unused on chain), the new terms are judged afresh and paid
// once; and with that unknown payment on the host, the next fetch asks
// first.
func TestKnownTermsPriceChanged(t *testing.T) {
	t.Parallel()
	var price atomic.Int64
	price.Store(10_000)
	n := startNet(t, localnet.NetworkConfig{Routes: rewrite("/v2/weather", func(o map[string]any) {
		o["amount"] = strconv.FormatInt(price.Load(), 10)
	})}, funding)
	c, led := knownClient(t, n, policy.Default())
	ctx := context.Background()
	payer0, payee0 := n.balances(t)
	weather := Request{URL: n.APIURL + "/v2/weather?city=Oslo"}
	reqs := requestsAt(n, "/v2/weather")

	mustSettle(t, c, weather)
	reqs()
	price.Store(20_000)
	res := mustSettle(t, c, weather)
	if res.Payment.Amount.String() != "20000" {
		t.Errorf("paid %s, want the new price 20000", res.Payment.Amount)
	}
	if got := reqs(); got != 2 {
		t.Errorf("the fetch made %d requests, want 2 (paid on the old terms, paid on the new)", got)
	}
	n.moved(t, payer0, payee0, 10_000+20_000)
	if got := len(n.Facilitator.Broadcasts()); got != 2 {
		t.Errorf("%d settlements, want 2: the payment on the old terms must not settle", got)
	}
	if got := n.signer.calls.Load(); got != 3 {
		t.Errorf("%d signatures, want 3", got)
	}
	pending, err := led.Pending(ctx)
	if err != nil || len(pending) != 1 || pending[0].State != ledger.Unknown || pending[0].Amount.Int64() != 10_000 {
		t.Fatalf("pending: %+v, %v; want the old-terms payment, unknown", pending, err)
	}
	u, err := led.Usage(ctx, []ledger.Limit{{Name: "total", MaxUSDNano: 1 << 62}})
	if err != nil || u[0].Count != 3 {
		t.Errorf("counted %d payments, want 3 (the unknown one too): %v", u[0].Count, err)
	}

	// An unknown payment on the host: the next fetch asks first.
	mustSettle(t, c, weather)
	if got := reqs(); got != 2 {
		t.Errorf("with an unknown payment on the host, the fetch made %d requests, want 2", got)
	}
}

// TestKnownTermsAskedAgain: the server answers 402 on the very terms that
// were paid. The same authorization is re-sent (no new signature), and it
// settles once; asked a third time, the call fails without signing again
// and nothing settles.
func TestKnownTermsAskedAgain(t *testing.T) {
	t.Parallel()
	n := startNet(t, localnet.NetworkConfig{}, funding)
	c, led := knownClient(t, n, policy.Default())
	ctx := context.Background()
	payer0, payee0 := n.balances(t)
	weather := Request{URL: n.APIURL + "/v2/weather?city=Lima"}
	reqs := requestsAt(n, "/v2/weather")
	mustSettle(t, c, weather)
	reqs()

	n.API.AskAgain(1)
	mustSettle(t, c, weather)
	if got := reqs(); got != 2 {
		t.Errorf("%d requests, want 2 (paid, then the same payment again)", got)
	}
	if got := n.signer.calls.Load(); got != 2 {
		t.Errorf("%d signatures, want 2: the re-sent payment is not signed again", got)
	}
	n.moved(t, payer0, payee0, 20_000)
	if got := len(n.Facilitator.Broadcasts()); got != 2 {
		t.Errorf("%d settlements, want 2", got)
	}

	n.API.AskAgain(2)
	_, err := c.Fetch(ctx, Request{URL: weather.URL})
	var failed *PaymentFailedError
	if !errors.As(err, &failed) || !failed.Resent || failed.Status != 402 {
		t.Fatalf("asked twice: %T %v; want a failed re-sent payment", err, err)
	}
	if got := reqs(); got != 2 {
		t.Errorf("%d requests, want 2: one payment, re-sent once, never a third time", got)
	}
	if got := n.signer.calls.Load(); got != 3 {
		t.Errorf("%d signatures, want 3", got)
	}
	n.moved(t, payer0, payee0, 20_000)
	if got := len(n.Facilitator.Broadcasts()); got != 2 {
		t.Errorf("%d settlements, want 2", got)
	}
	if rec, err := led.Get(ctx, failed.Receipt.LedgerID); err != nil || rec.State != ledger.Unknown {
		t.Errorf("the unanswered payment is %s (%v), want unknown", rec.State, err)
	}
}

// TestKnownTermsSettlementFails: a payment on known terms whose settlement
// fails comes back 402 with only a settlement header: one failed payment,
// unknown, never a second signature or settlement.
func TestKnownTermsSettlementFails(t *testing.T) {
	t.Parallel()
	n := startNet(t, localnet.NetworkConfig{}, funding)
	c, led := knownClient(t, n, policy.Default())
	ctx := context.Background()
	weather := Request{URL: n.APIURL + "/v2/weather?city=Quito"}
	reqs := requestsAt(n, "/v2/weather")
	mustSettle(t, c, weather)
	reqs()
	payer0, payee0 := n.balances(t)

	n.Facilitator.SetFault(localnet.Fault{Reason: "unexpected_settle_error", Times: 1})
	_, err := c.Fetch(ctx, weather)
	var failed *PaymentFailedError
	if !errors.As(err, &failed) || failed.Resent {
		t.Fatalf("fetch: %T %v; want a failed payment, not re-sent", err, err)
	}
	if got := reqs(); got != 1 {
		t.Errorf("%d requests, want 1", got)
	}
	if got := n.signer.calls.Load(); got != 2 {
		t.Errorf("%d signatures, want 2", got)
	}
	n.moved(t, payer0, payee0, 0)
	if got := len(n.Facilitator.Broadcasts()); got != 1 {
		t.Errorf("%d settlements, want 1 (the first fetch's)", got)
	}
	if rec, err := led.Get(ctx, failed.Receipt.LedgerID); err != nil || rec.State != ledger.Unknown {
		t.Errorf("the failed payment is %s (%v), want unknown", rec.State, err)
	}
}

// TestKnownTermsNeedApproval: a payment that needs a human's approval is
// never paid on the first request, whatever is known: every fetch asks
// first, and without an approval nothing is signed.
func TestKnownTermsNeedApproval(t *testing.T) {
	t.Parallel()
	n := startNet(t, localnet.NetworkConfig{}, funding)
	c, _ := knownClient(t, n, askAbove())
	ctx := context.Background()
	joke := Request{URL: n.APIURL + "/v1/joke"}
	reqs := requestsAt(n, "/v1/joke")
	if q, err := c.Quote(ctx, joke); err != nil || q.Judgement.Verdict != VerdictNeedsApproval {
		t.Fatalf("quote: %+v, %v", q, err)
	}
	for range 2 {
		if _, err := c.Fetch(ctx, joke); err == nil {
			t.Fatal("paid without an approval")
		}
	}
	if got := reqs(); got != 3 {
		t.Errorf("%d requests, want 3 (a quote, then two unpaid requests: each fetch asks first)", got)
	}
	if got := n.signer.calls.Load(); got != 0 {
		t.Errorf("%d signatures without an approval", got)
	}
}

// TestKnownTermsBounded: the cache holds at most maxKnownTerms entries of
// at most maxKnownTermBytes each, forgets after its TTL, and keeps only a
// 402 that came from the URL asked, by the method asked.
func TestKnownTermsBounded(t *testing.T) {
	k := &knownTerms{ttl: time.Minute, m: map[string]knownEntry{}}
	now := time.Now()
	q := &Quote{Chosen: &Option{}}
	resp := func(u string, body []byte) (*url.URL, *response) {
		pu, _ := url.Parse(u)
		return pu, &response{url: pu, method: "GET", status: 402, header: http.Header{}, body: body}
	}
	for i := range maxKnownTerms + 10 {
		u, r := resp(fmt.Sprintf("https://api.example/%d", i), []byte(`{}`))
		k.remember("GET", u, r, q, now.Add(time.Duration(i)*time.Millisecond))
	}
	if len(k.m) != maxKnownTerms {
		t.Errorf("%d entries, want %d", len(k.m), maxKnownTerms)
	}
	if u, _ := resp("https://api.example/0", nil); k.lookup("GET", u, now) != nil {
		t.Error("the oldest entry was kept")
	}
	u, r := resp("https://api.example/last", []byte(`{}`))
	k.remember("GET", u, r, q, now)
	if k.lookup("GET", u, now.Add(30*time.Second)) == nil || k.lookup("GET", u, now.Add(time.Minute)) != nil {
		t.Error("an entry must live exactly its TTL")
	}
	if k.lookup("POST", u, now) != nil {
		t.Error("terms for GET used for POST")
	}
	big, r := resp("https://api.example/big", make([]byte, maxKnownTermBytes+1))
	k.remember("GET", big, r, q, now)
	if k.lookup("GET", big, now) != nil {
		t.Error("an oversized 402 was kept")
	}
	other, r := resp("https://api.example/redirected", []byte(`{}`))
	asked, _ := url.Parse("https://api.example/asked")
	k.remember("GET", asked, r, q, now)
	if k.lookup("GET", asked, now) != nil || k.lookup("GET", other, now) != nil {
		t.Error("a 402 from another URL than the one asked was kept")
	}
	u, r = resp("https://api.example/nothing", []byte(`{}`))
	k.remember("GET", u, r, &Quote{}, now)
	if k.lookup("GET", u, now) != nil {
		t.Error("terms with nothing payable were kept")
	}
}
