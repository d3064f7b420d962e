package pay

import (
	"context"
	"maps"
	"sync/atomic"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/policy"
	"github.com/x402-mcp/x402-mcp/x402"
)

// withFlow rewrites path's options to carry extra.paymentFlow = flow.
func withFlow(path, flow string) []localnet.Route {
	return rewrite(path, func(o map[string]any) { extra(o)["paymentFlow"] = flow })
}

// TestTermsRefusedBeforeSigning covers the terms of a 402 that are refused
// however cheap the payment: a payment flow in which the server takes the
// money before doing the work (unless the operator allows it), a flow x402
// does not define, a payee that is the wallet itself and a v2 option
// without its EIP-712 domain. For each, Quote and JudgeListing give the
// same verdict and reason, Fetch refuses with them, the counting signer is
// never called, no balance moves and nothing is recorded. The cases that
// pay show the rules refuse no more than that.
func TestTermsRefusedBeforeSigning(t *testing.T) {
	t.Parallel()
	allowUpfront := policy.Default()
	allowUpfront.PaymentFlows = []string{x402.FlowUpfront}

	// The payer's address exists only once the network has funded it, so
	// the route reads it when the 402 is written.
	var payer atomic.Pointer[common.Address]
	payToPayer := rewrite("/v2/weather", func(o map[string]any) {
		if a := payer.Load(); a != nil {
			o["payTo"] = a.Hex()
		}
	})
	// A cheaper upfront option ahead of the standard one.
	upfrontBeside := localnet.DefaultRoutes()
	for i := range upfrontBeside {
		if upfrontBeside[i].Path == "/v2/weather" {
			upfrontBeside[i].Accepts = func(opts []map[string]any) []map[string]any {
				cheap := maps.Clone(opts[0])
				cheap["extra"] = maps.Clone(extra(opts[0]))
				cheap["amount"] = "5000"
				extra(cheap)["paymentFlow"] = x402.FlowUpfront
				return append([]map[string]any{cheap}, opts...)
			}
		}
	}

	for _, tc := range []struct {
		name   string
		routes []localnet.Route
		policy policy.Policy // unset: policy.Default()
		path   string        // the resource, as the listing names it
		query  string
		// payerPayTo: the 402 names the payer, which the discovery
		// listing (written before the payer existed) does not.
		payerPayTo bool
		want       string
		reason     string // the whole first reason, or part of it after "~"
		price      int64  // what an allowed fetch pays
	}{
		{name: "upfront", routes: withFlow("/v2/weather", x402.FlowUpfront), path: "/v2/weather", query: "?city=Lisbon",
			want:   VerdictDenied,
			reason: `payment flow "upfront" means the server settles before it does the work, so a request that fails is paid all the same; the operator's policy does not allow it (policy: payment_flows)`},
		{name: "escrow", routes: withFlow("/v2/weather", x402.FlowEscrow), path: "/v2/weather", query: "?city=Lisbon",
			want:   VerdictDenied,
			reason: `payment flow "escrow" means the server settles before it does the work (and again after it), so a request that fails is paid all the same; the operator's policy does not allow it (policy: payment_flows)`},
		{name: "escrow with only upfront allowed", routes: withFlow("/v2/weather", x402.FlowEscrow), policy: allowUpfront,
			path: "/v2/weather", query: "?city=Lisbon", want: VerdictDenied, reason: `~payment flow "escrow" means`},
		{name: "unknown flow", routes: withFlow("/v2/weather", "pay-later"), path: "/v2/weather", query: "?city=Lisbon",
			want:   VerdictUnpayable,
			reason: `option 0: payment flow "pay-later" is not one x402 defines (authorization, upfront or escrow), so what the server does with the money is unknown`},
		{name: "unknown flow the policy cannot allow", routes: withFlow("/v2/weather", "Upfront"), policy: allowUpfront,
			path: "/v2/weather", query: "?city=Lisbon", want: VerdictUnpayable, reason: `~payment flow "Upfront" is not one x402 defines`},
		{name: "unknown flow on v1", routes: withFlow("/v1/joke", "later"), path: "/v1/joke",
			want: VerdictUnpayable, reason: `~payment flow "later" is not one x402 defines`},
		{name: "payTo is the payer", routes: payToPayer, path: "/v2/weather", query: "?city=Lisbon", payerPayTo: true,
			want: VerdictUnpayable, reason: "~is this wallet's own address; paying yourself moves no money, only burns gas and signs an authorization for nothing"},
		{name: "v2 without extra name", path: "/v2/weather", query: "?city=Lisbon",
			routes: rewrite("/v2/weather", func(o map[string]any) { delete(extra(o), "name") }),
			want:   VerdictUnpayable,
			reason: "option 0: the 402 gives no extra.name; the reference facilitator rejects a v2 exact option without extra name and version, so signing it would hand out an authorization nobody can verify"},
		{name: "v2 without extra version", path: "/v2/weather", query: "?city=Lisbon",
			routes: rewrite("/v2/weather", func(o map[string]any) { delete(extra(o), "version") }),
			want:   VerdictUnpayable, reason: "~option 0: the 402 gives no extra.version; the reference facilitator rejects"},
		{name: "v2 without extra", path: "/v2/weather", query: "?city=Lisbon",
			routes: rewrite("/v2/weather", func(o map[string]any) { delete(o, "extra") }),
			want:   VerdictUnpayable, reason: "~the 402 gives no extra.name and extra.version"},

		{name: "upfront allowed by the policy pays", routes: withFlow("/v2/weather", x402.FlowUpfront), policy: allowUpfront,
			path: "/v2/weather", query: "?city=Lisbon", want: VerdictAllowed, price: 10000},
		{name: "the standard flow named pays", routes: withFlow("/v2/weather", x402.FlowAuthorization),
			path: "/v2/weather", query: "?city=Lisbon", want: VerdictAllowed, price: 10000},
		{name: "upfront beside the standard flow: the standard one is paid", routes: upfrontBeside,
			path: "/v2/weather", query: "?city=Lisbon", want: VerdictAllowed, price: 10000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := startNet(t, localnet.NetworkConfig{Routes: tc.routes}, funding)
			if tc.payerPayTo {
				a := n.payer
				payer.Store(&a)
			}
			p := tc.policy
			if !p.MaxPerPayment.IsSet() {
				p = policy.Default()
			}
			led := openLedger(t)
			c := n.clientWith(t, p, led)
			checkOneVerdict(t, verdictCheck{n: n, c: c, led: led, path: tc.path, query: tc.query, want: tc.want,
				reason: tc.reason, price: tc.price, listed: !tc.payerPayTo})
		})
	}
}

// TestV1WithoutDomainIsJudgedAsBefore: the rule for a v2 option without
// extra name and version leaves v1 alone, where the registry supplies the
// domain. Only the verdict is checked: the local facilitator checks that
// the option names the domain (invalid_exact_evm_missing_eip712_domain),
// for v1 too, so a fetch would sign an authorization it then rejects.
func TestV1WithoutDomainIsJudgedAsBefore(t *testing.T) {
	t.Parallel()
	n := startNet(t, localnet.NetworkConfig{Routes: rewrite("/v1/joke", func(o map[string]any) { delete(o, "extra") })}, funding)
	q, err := n.client(t, policy.Default()).Quote(context.Background(), Request{URL: n.APIURL + "/v1/joke"})
	if err != nil {
		t.Fatal(err)
	}
	if q.Required.Version != 1 || q.Judgement.Verdict != VerdictAllowed || q.Chosen == nil || q.Chosen.Wire.ExtraName != "" {
		t.Errorf("v1 option without extra: version %d, judgement %+v", q.Required.Version, q.Judgement)
	}
	if got := n.signer.calls.Load(); got != 0 {
		t.Errorf("a quote called the signer %d times", got)
	}
}

// TestPayeeCheckNeedsAWallet: without a signer there is no payer to
// compare payTo with, so an option naming any address is judged on its
// other terms (and is unpayable only for the missing wallet).
func TestPayeeCheckNeedsAWallet(t *testing.T) {
	t.Parallel()
	n := startNet(t, localnet.NetworkConfig{Routes: rewrite("/v2/weather", func(o map[string]any) {
		o["payTo"] = "0x2222222222222222222222222222222222222222"
	})}, funding)
	c, err := New(Config{Registry: n.reg, Policy: policy.Default(), AllowPrivate: loopback})
	if err != nil {
		t.Fatal(err)
	}
	q, err := c.Quote(context.Background(), Request{URL: n.APIURL + "/v2/weather?city=Lisbon"})
	if err != nil {
		t.Fatal(err)
	}
	if q.Chosen == nil || !q.Chosen.Payable || q.Judgement.Verdict != VerdictUnpayable ||
		len(q.Judgement.Reasons) != 1 || q.Judgement.Reasons[0] != (NoWalletError{}).Error() {
		t.Errorf("quote without a wallet: chosen %+v, judgement %+v", q.Chosen, q.Judgement)
	}
}
