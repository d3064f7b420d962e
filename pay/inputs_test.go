package pay

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/policy"
	"github.com/x402-mcp/x402-mcp/x402"
)

// TestMissingInputsRefusedBeforeSigning: a request that lacks an input the
// server's own 402 declares required is refused before anything is
// reserved or signed, and never reaches the paid handler; the same request
// with its inputs pays.
func TestMissingInputsRefusedBeforeSigning(t *testing.T) {
	t.Parallel()
	asJSON := map[string]string{"Content-Type": "application/json"}
	for _, tc := range []struct {
		name     string
		route    string // the route's path, for its hit count
		lacking  Request
		missing  []string
		complete Request
		price    int64
	}{
		{name: "v2 query parameter", route: "/v2/weather",
			lacking:  Request{URL: "/v2/weather"},
			missing:  []string{`query parameter "city"`},
			complete: Request{URL: "/v2/weather?city=Lisbon"}, price: 10000},
		{name: "v2 body field in an empty object", route: "/v2/summarize",
			lacking:  Request{Method: "POST", URL: "/v2/summarize", Headers: asJSON, Body: []byte(`{}`)},
			missing:  []string{`body field "text"`},
			complete: Request{Method: "POST", URL: "/v2/summarize", Headers: asJSON, Body: []byte(`{"text":"Short. Text."}`)}, price: 30000},
		{name: "v2 body field without a body", route: "/v2/summarize",
			lacking:  Request{Method: "POST", URL: "/v2/summarize"},
			missing:  []string{`body field "text"`},
			complete: Request{Method: "POST", URL: "/v2/summarize", Headers: asJSON, Body: []byte(`{"text":"Short. Text."}`)}, price: 30000},
		{name: "v1 outputSchema query parameter", route: "/v1/fx",
			lacking:  Request{URL: "/v1/fx?base=USD"},
			missing:  []string{`query parameter "quote"`},
			complete: Request{URL: "/v1/fx?base=USD&quote=EUR"}, price: 5000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			n := startNet(t, localnet.NetworkConfig{}, funding)
			led := openLedger(t)
			c := n.clientWith(t, policy.Default(), led)
			payer0, payee0 := n.balances(t)

			r := tc.lacking
			r.URL = n.APIURL + r.URL
			_, err := c.Fetch(ctx, r)
			var missing *MissingInputsError
			if !errors.As(err, &missing) {
				t.Fatalf("Fetch: %T %v; want *MissingInputsError", err, err)
			}
			if !slices.Equal(missing.Missing, tc.missing) {
				t.Errorf("missing %q, want %q", missing.Missing, tc.missing)
			}
			if q := QuoteOf(err); q == nil || !slices.Equal(q.Missing, tc.missing) {
				t.Errorf("the refusal's quote: %+v", q)
			}
			if got := n.signer.calls.Load(); got != 0 {
				t.Errorf("the signer was called %d times", got)
			}
			n.moved(t, payer0, payee0, 0)
			if got := recordCount(t, led); got != 0 {
				t.Errorf("the ledger holds %d records", got)
			}
			if got := n.API.Hits(tc.route); got != 0 {
				t.Errorf("the paid handler ran %d times", got)
			}

			r = tc.complete
			r.URL = n.APIURL + r.URL
			res, err := c.Fetch(ctx, r)
			if err != nil || res.Payment == nil || !res.Payment.Settled {
				t.Fatalf("Fetch with the inputs: %+v, %v", res, err)
			}
			if got := n.signer.calls.Load(); got != 1 {
				t.Errorf("%d signatures for one payment", got)
			}
			n.moved(t, payer0, payee0, tc.price)
			if got := recordCount(t, led); got != 1 {
				t.Errorf("the ledger holds %d records after one payment", got)
			}
			if got := n.API.Hits(tc.route); got != 1 {
				t.Errorf("the paid handler ran %d times for one paid request", got)
			}
		})
	}
}

// TestUnclearBodyIsNotRefused: a body that is not JSON cannot be checked
// for fields, and an unclear case is never a reason to refuse: the paid
// request goes to the server, whose handler decides.
func TestUnclearBodyIsNotRefused(t *testing.T) {
	t.Parallel()
	n := startNet(t, localnet.NetworkConfig{}, funding)
	c := n.client(t, policy.Default())
	_, err := c.Fetch(context.Background(), Request{Method: "POST", URL: n.APIURL + "/v2/summarize",
		Headers: map[string]string{"Content-Type": "text/plain"}, Body: []byte("just some words, not JSON")})
	if errors.As(err, new(*MissingInputsError)) {
		t.Fatalf("refused as missing inputs: %v", err)
	}
	if got := n.signer.calls.Load(); got != 1 {
		t.Errorf("%d signatures; the paid request should have been signed once", got)
	}
	if got := n.API.Hits("/v2/summarize"); got != 1 {
		t.Errorf("the paid handler ran %d times; the server should have judged the body", got)
	}
}

// TestQuoteReportsMissingInputs: a quote names what the request lacks and
// what the route declares, and its verdict is still the one on the terms:
// the inputs decide whether to send, not whether the price is acceptable.
func TestQuoteReportsMissingInputs(t *testing.T) {
	t.Parallel()
	n := startNet(t, localnet.NetworkConfig{}, funding)
	c := n.client(t, policy.Default())
	q, err := c.Quote(context.Background(), Request{URL: n.APIURL + "/v2/weather"})
	if err != nil {
		t.Fatal(err)
	}
	if q.Judgement.Verdict != VerdictAllowed {
		t.Errorf("verdict %q, want %q", q.Judgement.Verdict, VerdictAllowed)
	}
	if want := []string{`query parameter "city"`}; !slices.Equal(q.Missing, want) {
		t.Errorf("Missing = %q, want %q", q.Missing, want)
	}
	if q.Inputs == nil {
		t.Fatal("no Inputs")
	}
	i := slices.IndexFunc(q.Inputs.Query, func(f x402.Field) bool { return f.Name == "city" })
	if i < 0 || !q.Inputs.Query[i].Required {
		t.Errorf("Inputs.Query = %+v, want city required", q.Inputs.Query)
	}
	if n.signer.calls.Load() != 0 || n.API.Hits("/v2/weather") != 0 {
		t.Error("quoting signed or reached the paid handler")
	}
}
