package main

import (
	"os"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestOfficialClientKnownTerms: through the binary and the official client,
// an x402_quote makes the terms known, and the x402_fetch of the same URL
// that follows pays with its first request: the API sees one request for
// it, and the money moves once. With http.known_terms_seconds = 0 the
// fetch asks first.
func TestOfficialClientKnownTerms(t *testing.T) {
	tsClientDir(t)
	for _, tc := range []struct {
		name      string
		off       bool
		fetchReqs int
	}{{"default", false, 1}, {"turned off", true, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			n, cfg, payer := tsDevnet(t, "max_per_payment = \"0.10\"\n")
			if tc.off {
				b, err := os.ReadFile(cfg)
				if err != nil {
					t.Fatal(err)
				}
				text := strings.Replace(string(b), "[http]\n", "[http]\nknown_terms_seconds = 0\n", 1)
				if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			payer0, payee0 := chainBalance(t, n, payer), chainBalance(t, n, n.PayTo)
			weather := n.APIURL + "/v2/weather?city=Rome"
			// The quote and the fetch in one session: the terms live in
			// the server process.
			before := n.API.Requests("/v2/weather")
			res := called(t, tsClient(t, plan(cfg,
				tsStep{Op: "call", Name: "x402_quote", Arguments: map[string]any{"url": weather}},
				fetchStep(map[string]any{"url": weather}),
			)))
			if s := res[0].Structured(); res[0].IsError() || gjson.Get(s, "verdict").String() != "allowed" {
				t.Fatalf("quote: %s %s", res[0].Text(), s)
			}
			if s := res[1].Structured(); res[1].IsError() || !gjson.Get(s, "payment.settled").Bool() || gjson.Get(s, "payment.amount_atomic").String() != "10000" {
				t.Fatalf("fetch: %s %s", res[1].Text(), s)
			}
			if got := n.API.Requests("/v2/weather") - before; got != 1+tc.fetchReqs {
				t.Errorf("the quote and the fetch made %d requests, want %d (the fetch %d)", got, 1+tc.fetchReqs, tc.fetchReqs)
			}
			if d := payer0.Sub(payer0, chainBalance(t, n, payer)); d.Int64() != 10_000 {
				t.Errorf("payer spent %s atomic units, want 10000", d)
			}
			if d := chainBalance(t, n, n.PayTo); d.Sub(d, payee0).Int64() != 10_000 {
				t.Errorf("payee received %s atomic units, want 10000", d)
			}
			if b := n.Facilitator.Broadcasts(); len(b) != 1 {
				t.Errorf("%d settlements, want 1", len(b))
			}
		})
	}
}
