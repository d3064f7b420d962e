package pay

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/policy"
)

// listing returns what the facilitator's discovery listing (over HTTP, as
// a catalog reads it) says about the resource at path: its URL, the x402
// version and the payment options exactly as listed.
func (n *testNet) listing(t testing.TB, path string) (string, int, []json.RawMessage) {
	t.Helper()
	resp, err := http.Get(n.FacilitatorURL + "/discovery/resources?limit=100")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Items []struct {
			Resource    string            `json:"resource"`
			X402Version int               `json:"x402Version"`
			Accepts     []json.RawMessage `json:"accepts"`
		} `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	want := n.APIURL + path
	for _, it := range out.Items {
		if it.Resource == want {
			return it.Resource, it.X402Version, it.Accepts
		}
	}
	t.Fatalf("the discovery listing has no %s", want)
	return "", 0, nil
}

// rawOptions are a quote's options exactly as the 402 sent them.
func rawOptions(q *Quote) []json.RawMessage {
	var out []json.RawMessage
	for _, o := range q.Required.Options {
		out = append(out, o.Raw)
	}
	return out
}

// TestOneVerdictEverywhere: for each verdict, what Quote says, what
// JudgeListing says of the same options (taken from the 402 and from the
// facilitator's discovery listing) and what Fetch does agree, with the
// same reasons; a refusal signs nothing and moves nothing.
func TestOneVerdictEverywhere(t *testing.T) {
	t.Parallel()
	askAbove := policy.Default()
	askAbove.ApprovalAbove = policy.MustUSD("0.015")
	smallBudget := policy.Default()
	smallBudget.Budget.Day = policy.MustUSD("0.01")
	unknownToken := rewrite("/v2/weather", func(o map[string]any) { o["asset"] = "0x1111111111111111111111111111111111111111" })

	for _, tc := range []struct {
		name     string
		routes   []localnet.Route
		policy   policy.Policy // unset: policy.Default()
		noWallet bool
		// spend is paid first, to use up a budget.
		spend  string
		path   string // the resource, as the listing names it
		query  string
		want   string
		reason string // part of the first reason
		price  int64  // what an allowed fetch pays
	}{
		{name: "allowed", path: "/v2/weather", query: "?city=Lisbon", want: VerdictAllowed, price: 10000},
		{name: "needs approval", path: "/v1/joke", policy: askAbove, want: VerdictNeedsApproval, reason: "(policy: approval_above)"},
		{name: "denied over the cap", path: "/v2/report", want: VerdictDenied, reason: "per-payment cap of 0.1 USD"},
		{name: "denied by a spent budget", path: "/v2/weather", query: "?city=Lisbon", policy: smallBudget,
			spend: "/v2/weather?city=Oslo", want: VerdictDenied, reason: "daily budget: 0.01 USD of 0.01 spent"},
		{name: "unpayable token", path: "/v2/weather", query: "?city=Lisbon", routes: unknownToken, want: VerdictUnpayable, reason: "not in the token registry"},
		{name: "unpayable without a wallet", path: "/v2/weather", query: "?city=Lisbon", noWallet: true, want: VerdictUnpayable, reason: "no wallet key is configured"},
		{name: "free", path: "/free/status", want: VerdictFree},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			n := startNet(t, localnet.NetworkConfig{Routes: tc.routes}, funding)
			p := tc.policy
			if !p.MaxPerPayment.IsSet() {
				p = policy.Default()
			}
			var (
				c   *Client
				led *ledger.Ledger
			)
			if tc.noWallet {
				var err error
				if c, err = New(Config{Registry: n.reg, Policy: p, AllowPrivate: loopback}); err != nil {
					t.Fatal(err)
				}
			} else {
				led = openLedger(t)
				c = n.clientWith(t, p, led)
			}
			if tc.spend != "" {
				if res, err := c.Fetch(ctx, Request{URL: n.APIURL + tc.spend}); err != nil || res.Payment == nil || !res.Payment.Settled {
					t.Fatalf("paying to use up the budget: %+v, %v", res, err)
				}
			}
			checkOneVerdict(t, verdictCheck{n: n, c: c, led: led, path: tc.path, query: tc.query, want: tc.want,
				reason: "~" + tc.reason, price: tc.price, listed: true, noWallet: tc.noWallet})
		})
	}
}

// verdictCheck is one resource, and what its quote, the listings of its
// options and a fetch of it must say.
type verdictCheck struct {
	n   *testNet
	c   *Client
	led *ledger.Ledger // nil without a wallet
	// path is the resource as the discovery listing names it; query is
	// added for the request.
	path, query string
	want        string
	// reason is the quote's first reason: exact, or a part of it after
	// "~"; "" or "~" checks none.
	reason string
	price  int64 // what an allowed fetch pays
	// listed also judges the facilitator's discovery listing of path.
	listed   bool
	noWallet bool
}

// checkOneVerdict asserts that Quote gives vc.want with its reason, that
// JudgeListing agrees on the same options (from the 402, and from the
// discovery listing), and that Fetch does what the verdict says with the
// same reasons: an allowed one pays once exactly the price, a refusal
// signs, moves and records nothing.
func checkOneVerdict(t *testing.T, vc verdictCheck) {
	t.Helper()
	ctx, n, c := context.Background(), vc.n, vc.c
	calls0 := n.signer.calls.Load()
	payer0, payee0 := n.balances(t)
	records0 := recordCount(t, vc.led)

	r := Request{URL: n.APIURL + vc.path + vc.query}
	q, err := c.Quote(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	j := q.Judgement
	if j.Verdict != vc.want {
		t.Fatalf("Quote says %q (%q), want %q", j.Verdict, j.Reasons, vc.want)
	}
	if part, contains := strings.CutPrefix(vc.reason, "~"); part != "" {
		if len(j.Reasons) == 0 || contains && !strings.Contains(j.Reasons[0], part) || !contains && j.Reasons[0] != part {
			t.Errorf("Quote gives reasons %q, want the first to be %q", j.Reasons, vc.reason)
		}
	}
	if vc.want == VerdictAllowed && len(j.Reasons) != 0 {
		t.Errorf("an allowed quote gives reasons %q", j.Reasons)
	}

	if vc.want != VerdictFree {
		listings := map[string]*Quote{}
		if listings["the 402's options"], err = c.JudgeListing(ctx, q.URL, q.Required.Version, rawOptions(q)); err != nil {
			t.Fatal(err)
		}
		if vc.listed {
			url, version, accepts := n.listing(t, vc.path)
			if listings["the discovery listing"], err = c.JudgeListing(ctx, url, version, accepts); err != nil {
				t.Fatal(err)
			}
		}
		for where, lq := range listings {
			if lq.Judgement.Verdict != j.Verdict || !slices.Equal(lq.Judgement.Reasons, j.Reasons) {
				t.Errorf("JudgeListing of %s says %q %q; Quote says %q %q", where, lq.Judgement.Verdict, lq.Judgement.Reasons, j.Verdict, j.Reasons)
			}
		}
	}

	res, err := c.Fetch(ctx, r)
	switch vc.want {
	case VerdictAllowed:
		if err != nil || res.Payment == nil || !res.Payment.Settled {
			t.Fatalf("Fetch of an allowed resource: %+v, %v", res, err)
		}
		if res.Judgement.Verdict != j.Verdict || res.Judgement.Limit.String() != j.Limit.String() || len(res.Judgement.Reasons) != 0 {
			t.Errorf("Fetch acted on %+v; Quote said %+v", res.Judgement, j)
		}
		if got := n.signer.calls.Load() - calls0; got != 1 {
			t.Errorf("%d signatures for one payment", got)
		}
		n.moved(t, payer0, payee0, vc.price)
		if got := recordCount(t, vc.led); got != records0+1 {
			t.Errorf("the ledger went from %d records to %d, want one more", records0, got)
		}
		return
	case VerdictFree:
		if err != nil || res.Status != http.StatusOK || res.Payment != nil || res.Judgement.Verdict != VerdictFree {
			t.Fatalf("Fetch of a free resource: %+v, %v", res, err)
		}
	case VerdictNeedsApproval:
		var need *ApprovalNeededError
		if !errors.As(err, &need) {
			t.Fatalf("Fetch: %T %v; want *ApprovalNeededError", err, err)
		}
		sameReasons(t, need.Quote.Judgement.Reasons, j.Reasons)
	case VerdictDenied:
		var denied *DeniedError
		if !errors.As(err, &denied) {
			t.Fatalf("Fetch: %T %v; want *DeniedError", err, err)
		}
		sameReasons(t, denied.Reasons, j.Reasons)
	case VerdictUnpayable:
		if vc.noWallet {
			if !errors.As(err, new(NoWalletError)) {
				t.Fatalf("Fetch: %T %v; want NoWalletError", err, err)
			}
			sameReasons(t, []string{err.Error()}, j.Reasons)
			break
		}
		var unpayable *UnpayableError
		if !errors.As(err, &unpayable) {
			t.Fatalf("Fetch: %T %v; want *UnpayableError", err, err)
		}
		sameReasons(t, unpayable.Reasons, j.Reasons)
	}
	if got := n.signer.calls.Load() - calls0; got != 0 {
		t.Errorf("the signer was called %d times", got)
	}
	n.moved(t, payer0, payee0, 0)
	if got := recordCount(t, vc.led); got != records0 {
		t.Errorf("the ledger went from %d records to %d", records0, got)
	}
}

func sameReasons(t *testing.T, fetch, quote []string) {
	t.Helper()
	if len(quote) == 0 || !slices.Equal(fetch, quote) {
		t.Errorf("Fetch refused with reasons %q; Quote gave %q", fetch, quote)
	}
}

// recordCount is how many payments the ledger holds; 0 without a ledger.
func recordCount(t testing.TB, led *ledger.Ledger) int {
	t.Helper()
	if led == nil {
		return 0
	}
	rs, err := led.Recent(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	return len(rs)
}

// TestBudgetRefusalReadsTheSame: a budget can run out between the
// judgement and the reservation (another call paid in between). The
// refusal then comes from the ledger's check, and must read exactly as the
// quote's does, and sign nothing.
func TestBudgetRefusalReadsTheSame(t *testing.T) {
	t.Parallel()
	daily := policy.Default()
	daily.Budget.Day = policy.MustUSD("0.01")
	perMinute := policy.Default()
	perMinute.MaxPaymentsPerMinute = 1
	for _, tc := range []struct {
		name   string
		policy policy.Policy
		reason string
	}{
		{"money", daily, "daily budget"},
		{"count", perMinute, "payments per minute"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			n := startNet(t, localnet.NetworkConfig{}, funding)
			c := n.client(t, tc.policy)
			r := Request{URL: n.APIURL + "/v2/weather?city=Lisbon"}
			u, err := r.validate()
			if err != nil {
				t.Fatal(err)
			}
			first, err := c.send(ctx, r.Method, u, &r, nil, "", "")
			if err != nil {
				t.Fatal(err)
			}
			q, err := c.quote(first, &r)
			if err != nil {
				t.Fatal(err)
			}
			use, err := c.decide(ctx, q, &r)
			if err != nil || q.Judgement.Verdict != VerdictAllowed {
				t.Fatalf("decide: %+v, %v", q, err)
			}
			payer0, payee0 := n.balances(t)
			if res, err := c.Fetch(ctx, Request{URL: n.APIURL + "/v2/weather?city=Oslo"}); err != nil || res.Payment == nil || !res.Payment.Settled {
				t.Fatalf("the payment in between: %+v, %v", res, err)
			}

			_, err = c.authorize(ctx, q, &r, use)
			var denied *DeniedError
			if !errors.As(err, &denied) {
				t.Fatalf("authorize after the budget ran out: %T %v; want *DeniedError", err, err)
			}
			now, err := c.Quote(ctx, r)
			if err != nil || now.Judgement.Verdict != VerdictDenied {
				t.Fatalf("Quote: %+v, %v", now, err)
			}
			if len(now.Judgement.Reasons) == 0 || !strings.Contains(now.Judgement.Reasons[0], tc.reason) {
				t.Errorf("Quote reasons %q, want %q named", now.Judgement.Reasons, tc.reason)
			}
			sameReasons(t, denied.Reasons, now.Judgement.Reasons)
			if got := n.signer.calls.Load(); got != 1 {
				t.Errorf("%d signatures; only the payment in between should be signed", got)
			}
			n.moved(t, payer0, payee0, 10000)
		})
	}
}
