package pay

import (
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"

	"github.com/x402-mcp/x402-mcp/policy"
	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/x402"
)

// minTimeoutSeconds is the shortest authorization window worth signing.
const minTimeoutSeconds = 10

// Option is one payment option of a 402 as this client sees it.
type Option struct {
	Wire *x402.Option
	// Token is the registry entry for the option's (network, asset); nil
	// when the token is unknown, which makes the option unpayable.
	Token *tokens.Token
	// Payable is false when the option cannot be paid at all; Reason says
	// why. A payable option may still be denied by the policy (Verdict).
	Payable bool
	Reason  string
	Verdict policy.Verdict
}

// Quote is what the server asks for a request, and what this client would
// do about it.
type Quote struct {
	// URL is where the 402 came from (after redirects).
	URL    string
	Host   string
	Status int
	Free   bool
	// Required is the parsed 402; nil when the resource is free.
	Required *x402.PaymentRequired
	Options  []Option
	// Chosen is the option that would be paid, or the best payable option
	// the policy denied; nil when nothing is payable.
	Chosen *Option
	// Judgement is the verdict on paying, with its reasons: the one that
	// every tool shows and that Fetch acts on.
	Judgement Judgement
	// Inputs is what the 402 says the request needs; nil when it declares
	// nothing readable. Missing names the required inputs this request
	// visibly lacks: Fetch refuses to pay for it.
	Inputs  *x402.Inputs
	Missing []string
	// Listed says the terms come from a discovery listing, not from a
	// request (QuoteListed): Status is 0 and nothing was sent.
	Listed bool

	// unreadable says why a 402 could not be read at all.
	unreadable []string
}

// assess looks at every option of a 402 and picks the one to pay: among
// payable options, the cheapest one the policy allows (USD value, exact),
// the server's order breaking ties. If the policy allows none, the cheapest
// payable option is chosen so its verdict can explain the denial. payer is
// the wallet's address; the zero address (no wallet) skips the check that
// an option does not pay the wallet itself.
//
// An option is unpayable (Payable false, Reason set) when nothing the
// operator could write would make paying it sensible: an unknown token, a
// domain nobody can verify, a window too short to settle, a payee that is
// the payer, a payment flow x402 does not define. An option that is fine
// to pay but that the operator's rules refuse is payable and denied by its
// Verdict, whose reason names the policy key to change. The payment flows
// upfront and escrow are of that second kind: this client can pay them
// (the signature is the same EIP-3009 authorization), but the server takes
// the money before it does the work, and whether to carry that risk is the
// operator's choice (payment_flows). So they are a policy denial, and the
// agent is told to ask the human about the policy, not that the server
// cannot be used. The policy applies the same rule in Approve, before the
// signer, whatever assess decided.
func assess(pr *x402.PaymentRequired, reg *tokens.Registry, pol policy.Policy, base policy.Request, payer common.Address) []Option {
	out := make([]Option, len(pr.Options))
	for i := range pr.Options {
		w := &pr.Options[i]
		out[i] = Option{Wire: w}
		if w.Err != nil {
			out[i].Reason = w.Err.Error()
			continue
		}
		t, ok := reg.Lookup(w.CAIP2, w.Asset)
		if !ok {
			out[i].Reason = fmt.Sprintf("option %d: token %s on %s is not in the token registry", w.Index, w.Asset.Hex(), w.CAIP2)
			continue
		}
		out[i].Token = &t
		if reason := unpayable(w, t, pr.Version, payer); reason != "" {
			out[i].Reason = reason
			continue
		}
		out[i].Payable = true
		r := base
		r.Token, r.PayTo, r.Amount, r.PaymentFlow = t, w.PayTo, w.Amount, w.PaymentFlow
		out[i].Verdict = pol.Check(r)
	}
	return out
}

// unpayable says why an option of a known token cannot be paid by this
// client whatever the policy says; "" when it can. version is the 402's
// x402 version.
func unpayable(w *x402.Option, t tokens.Token, version int, payer common.Address) string {
	if payer != (common.Address{}) && w.PayTo == payer {
		// The token would move nothing, yet the signature would be handed
		// out and the ledger would count the payment against the budgets.
		return fmt.Sprintf("option %d: payTo %s is this wallet's own address; paying yourself moves no money, only burns gas and signs an authorization for nothing", w.Index, w.PayTo.Hex())
	}
	if w.ExtraName != "" && w.ExtraName != t.Name {
		return fmt.Sprintf("option %d: the 402 names the token's EIP-712 domain %q but the registry says %q", w.Index, clip(w.ExtraName, 64), t.Name)
	}
	if w.ExtraVersion != "" && w.ExtraVersion != t.Version {
		return fmt.Sprintf("option %d: the 402 gives EIP-712 version %q but the registry says %q", w.Index, clip(w.ExtraVersion, 64), t.Version)
	}
	if version == 2 && (w.ExtraName == "" || w.ExtraVersion == "") {
		// v1 servers often leave the domain out and the registry supplies
		// it; a v2 facilitator needs it in the option it verifies against.
		var missing string
		switch {
		case w.ExtraName == "" && w.ExtraVersion == "":
			missing = "extra.name and extra.version"
		case w.ExtraName == "":
			missing = "extra.name"
		default:
			missing = "extra.version"
		}
		return fmt.Sprintf("option %d: the 402 gives no %s; the reference facilitator rejects a v2 exact option without extra name and version, so signing it would hand out an authorization nobody can verify", w.Index, missing)
	}
	if w.MaxTimeoutSeconds < minTimeoutSeconds {
		// Facilitators want validBefore at least 6 s away; a shorter
		// window cannot settle, so signing it would only leak an
		// authorization.
		return fmt.Sprintf("option %d: maxTimeoutSeconds %d is too short for a payment to settle (at least %d)", w.Index, w.MaxTimeoutSeconds, minTimeoutSeconds)
	}
	if w.PaymentFlow != "" && !x402.KnownPaymentFlow(w.PaymentFlow) {
		return fmt.Sprintf("option %d: payment flow %q is not one x402 defines (%s, %s or %s), so what the server does with the money is unknown", w.Index, w.PaymentFlow,
			x402.FlowAuthorization, x402.FlowUpfront, x402.FlowEscrow)
	}
	return ""
}

func choose(opts []Option) *Option {
	var best, bestAllowed *Option
	for i := range opts {
		o := &opts[i]
		if !o.Payable {
			continue
		}
		if best == nil || cheaper(o, best) {
			best = o
		}
		if o.Verdict.Allowed && (bestAllowed == nil || cheaper(o, bestAllowed)) {
			bestAllowed = o
		}
	}
	if bestAllowed != nil {
		return bestAllowed
	}
	return best
}

// cheaper compares a.amount/10^a.decimals < b.amount/10^b.decimals exactly.
func cheaper(a, b *Option) bool {
	l := new(big.Int).Mul(a.Wire.Amount, pow10(b.Token.Decimals))
	r := new(big.Int).Mul(b.Wire.Amount, pow10(a.Token.Decimals))
	return l.Cmp(r) < 0
}

func pow10(d uint8) *big.Int {
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d)), nil)
}
