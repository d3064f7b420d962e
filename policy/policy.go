package policy

import (
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/x402-mcp/x402-mcp/internal/redact"
	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/x402"
)

// Defaults applied when the operator sets nothing. They are deliberately
// small: a misconfigured agent should be able to waste cents, not dollars.
const (
	DefaultMaxPerPayment        = "0.10"
	DefaultMaxWindow            = 5 * time.Minute
	DefaultDailyBudget          = "1.00"
	DefaultMaxPaymentsPerMinute = 30
	// minWindow is below what facilitators accept (validBefore >= now+6s)
	// plus a margin for the round trip.
	minWindow = 10 * time.Second
	// maxWindow bounds how long a signed authorization may stay spendable
	// by whoever holds it.
	maxWindow = 24 * time.Hour
)

// PlainHTTP says where a payment may go over plain http.
type PlainHTTP uint8

const (
	// HTTPLoopbackOnly refuses http:// except to this machine (127.0.0.0/8,
	// ::1, localhost), where local test servers live and nobody can read
	// the payment header on the way. It is the zero value so that a Policy
	// that never mentions HTTP gets the safe default.
	HTTPLoopbackOnly PlainHTTP = iota
	// HTTPNever refuses http:// everywhere.
	HTTPNever
	// HTTPAnywhere allows http:// to any host: anyone on the path can read
	// the signed authorization and use it before the server does.
	HTTPAnywhere
)

// Policy holds the operator's rules. All of them apply together, so the
// strictest wins. A Policy is a value: build it (Default, Load, Parse) and
// then only read it; its slices and map are shared by copies.
type Policy struct {
	// MaxPerPayment caps a single payment, in USD.
	MaxPerPayment USD
	// Networks, if non-empty, lists the CAIP-2 networks payments may use.
	// Empty means every network with a token in the registry.
	Networks []string
	// MaxWindow caps how long a signed authorization stays valid: a server
	// asking for a longer maxTimeoutSeconds gets this instead.
	MaxWindow time.Duration

	// ApprovalAbove, if set, is the USD amount above which a payment needs
	// the human's confirmation (Request.Confirmed) before it is approved.
	ApprovalAbove USD
	// MaxPaymentsPerMinute caps payments in any 60 seconds, all hosts
	// together, to break loops; 0 is no limit. The ledger enforces it.
	MaxPaymentsPerMinute int
	// HTTP says where plain http is allowed; the zero value is loopback
	// only.
	HTTP PlainHTTP
	// Tokens, if non-empty, lists the only tokens payments may use
	// (registry entries, compared by network and address).
	Tokens []tokens.Token
	// TokenLimits caps a single payment in a token's own units.
	TokenLimits []TokenLimit
	// Budget caps spending over rolling windows, all hosts together.
	Budget Periods
	// HostBudgets caps spending per host; keys are normalised host names.
	HostBudgets map[string]Periods
	// Hosts restricts where payments may go.
	Hosts HostRules
	// Payees restricts who payments may go to.
	Payees PayeeRules
	// PaymentFlows lists the payment flows (x402.FlowUpfront,
	// x402.FlowEscrow) allowed besides the standard one, in which the server
	// settles only after it has done the work (x402.FlowAuthorization,
	// always allowed). Empty allows only the standard flow: in the others
	// a request that fails is paid all the same.
	PaymentFlows []string

	// Written holds the keys a policy file wrote, as dotted paths
	// ("max_per_payment", "budget.day", "hosts.allow"); every other rule
	// has the value Default gives it. Describe uses it to tell the
	// operator's rules from the defaults and from limits the file turned
	// off. Nil for Default and for policies built in code.
	Written map[string]bool
}

// TokenLimit caps one payment in one token, in the token's atomic units.
type TokenLimit struct {
	// Token is the registry entry the limit was written for; its Decimals
	// turned the file's text into MaxPerPayment.
	Token         tokens.Token
	MaxPerPayment *big.Int
}

// HostRules restricts the hosts payments may go to. Deny wins over allow;
// an empty Allow allows any host that is not denied.
type HostRules struct {
	Allow []HostPattern
	Deny  []HostPattern
}

// PayeeRules restricts payTo addresses. Deny wins over allow; an empty
// Allow allows any payee that is not denied.
type PayeeRules struct {
	Allow []common.Address
	Deny  []common.Address
}

// Default is the policy used when the operator configures none, and the
// base every policy file starts from (see Parse): at most
// 0.10 USD per payment and 1.00 USD in any 24 hours, at most 30 payments a
// minute, authorizations valid for at most 300 seconds, https required
// except to this machine, any network, token, host and payee, only the
// standard payment flow, and no approval threshold.
func Default() Policy {
	return Policy{
		MaxPerPayment:        MustUSD(DefaultMaxPerPayment),
		MaxWindow:            DefaultMaxWindow,
		Budget:               Periods{Day: MustUSD(DefaultDailyBudget)},
		MaxPaymentsPerMinute: DefaultMaxPaymentsPerMinute,
		HTTP:                 HTTPLoopbackOnly,
	}
}

// Validate reports configuration mistakes, for policies built in code; a
// policy from Parse has passed it.
func (p Policy) Validate() error {
	if !p.MaxPerPayment.IsSet() {
		return errors.New("max_per_payment is not set")
	}
	if p.MaxWindow < minWindow || p.MaxWindow > maxWindow {
		return fmt.Errorf("max_authorization_seconds is %d; it must be from %d to %d", int64(p.MaxWindow/time.Second), int64(minWindow/time.Second), int64(maxWindow/time.Second))
	}
	for _, n := range p.Networks {
		if _, err := tokens.ParseNetwork(n); err != nil {
			return err
		}
	}
	if p.MaxPaymentsPerMinute < 0 {
		return fmt.Errorf("max_payments_per_minute is %d; it must not be negative", p.MaxPaymentsPerMinute)
	}
	for _, f := range p.PaymentFlows {
		if !x402.KnownPaymentFlow(f) {
			return fmt.Errorf("payment flow %s is not one x402 defines", redact.Quote(f))
		}
	}
	if p.HTTP > HTTPAnywhere {
		return fmt.Errorf("unknown plain-http rule %d", p.HTTP)
	}
	for _, l := range p.TokenLimits {
		if l.MaxPerPayment == nil || l.MaxPerPayment.Sign() < 0 {
			return fmt.Errorf("token limit for %s is not a non-negative amount", l.Token)
		}
	}
	for _, hp := range slices.Concat(p.Hosts.Allow, p.Hosts.Deny) {
		if hp.name == "" {
			return errors.New("a host pattern is empty; make patterns with ParseHostPattern")
		}
	}
	for h := range p.HostBudgets {
		// The ledger compares these keys with NormalizeHost's output; a key
		// in any other form would never match and its budget never apply.
		if n, err := hostOfString(h); err != nil || n.name != h {
			return fmt.Errorf("per-host budget key %s is not a normalised host name", redact.Quote(h))
		}
	}
	return nil
}

// Window is how long an authorization for an option asking for
// maxTimeoutSeconds may stay valid: the smaller of the two.
func (p Policy) Window(maxTimeoutSeconds uint64) time.Duration {
	w := p.MaxWindow
	if maxTimeoutSeconds < uint64(w/time.Second) {
		w = time.Duration(maxTimeoutSeconds) * time.Second
	}
	return w
}

// Request is a payment the flow wants to make.
type Request struct {
	// URL is the URL that answered 402 (after redirects); the host rules
	// and the https rule are applied to its parsed host.
	URL string
	// Host, if set, must be the same host as URL's.
	Host  string
	Token tokens.Token
	PayTo common.Address
	// Amount is in the token's atomic units.
	Amount *big.Int
	// PaymentFlow is the option's extra.paymentFlow; "" (absent) is the
	// standard flow.
	PaymentFlow string
	// MaxPrice is the agent's own per-call cap in USD; it can only lower
	// the operator's cap. Unset means no extra limit.
	MaxPrice USD
	// Confirmed says the human confirmed this payment (not the agent: the
	// flow must ask the person, e.g. through MCP elicitation). Approve
	// requires it for a payment above ApprovalAbove.
	Confirmed bool
}

// Verdict is the outcome of checking a request.
type Verdict struct {
	Allowed bool
	// Reasons says why a payment is denied, in words an agent can act on
	// and naming the policy key a human would change.
	Reasons []string
	// Limit is the effective per-payment cap in USD (operator cap lowered by
	// the agent's max_price) and LimitAtomic the effective cap in token
	// units (also lowered by the token's own limit).
	Limit       USD
	LimitAtomic *big.Int
	// NeedsApproval is set when the amount is above approval_above: the
	// payment is allowed only once the human confirms it, and
	// ApprovalReason says so in words.
	NeedsApproval  bool
	ApprovalReason string
}

// DeniedError is returned by Approve for a payment the policy refuses.
type DeniedError struct {
	Reasons []string
}

func (e *DeniedError) Error() string {
	return "payment denied by policy: " + strings.Join(e.Reasons, "; ")
}

// Check evaluates a request against every static rule (it does not know
// what was spent; budgets and the rate are the ledger's). It signs nothing
// and changes nothing, so quoting can show the verdict ahead of paying.
func (p Policy) Check(r Request) Verdict {
	v := Verdict{Limit: p.MaxPerPayment.Min(r.MaxPrice)}
	deny := func(format string, a ...any) { v.Reasons = append(v.Reasons, fmt.Sprintf(format, a...)) }

	p.checkDestination(r, deny)
	p.checkFlow(r.PaymentFlow, deny)

	if len(p.Networks) > 0 && !slices.Contains(p.Networks, r.Token.Network) {
		deny("network %s is not in the operator's allowed networks: %s (policy: networks)", r.Token.Network, strings.Join(p.Networks, ", "))
	}
	if len(p.Tokens) > 0 && !slices.ContainsFunc(p.Tokens, func(t tokens.Token) bool { return sameToken(t, r.Token) }) {
		deny("token %s is not in the operator's allowed tokens (policy: tokens)", r.Token)
	}
	if r.Amount == nil || r.Amount.Sign() <= 0 {
		deny("the amount is not a positive number of atomic units")
	}
	if !p.MaxPerPayment.IsSet() {
		// A policy without a cap is a configuration bug; refuse rather than
		// pay without limit.
		deny("no per-payment cap is configured (policy: max_per_payment)")
	} else if r.Token.Currency != "USD" {
		deny("token %s has no USD value in the registry, and the per-payment cap is in USD (policy: max_per_payment)", r.Token)
	} else if r.Amount != nil {
		v.LimitAtomic = v.Limit.Atomic(r.Token.Decimals)
		if r.Amount.Cmp(v.LimitAtomic) > 0 {
			price := tokens.FormatUnits(r.Amount, r.Token.Decimals)
			if r.MaxPrice.IsSet() && r.MaxPrice.Cmp(p.MaxPerPayment) < 0 {
				deny("price %s %s is above the max_price of %s USD given for this call", price, r.Token.Symbol, r.MaxPrice)
			} else {
				deny("price %s %s is above the operator's per-payment cap of %s USD (policy: max_per_payment)", price, r.Token.Symbol, p.MaxPerPayment)
			}
		}
	}
	for _, l := range p.TokenLimits {
		if !sameToken(l.Token, r.Token) {
			continue
		}
		if l.Token.Decimals != r.Token.Decimals {
			// The limit was converted with other decimals; comparing would
			// be off by powers of ten.
			deny("the limit for token %s was written for %d decimals but the registry now says %d; reload the policy (policy: token_limits)", r.Token, l.Token.Decimals, r.Token.Decimals)
			continue
		}
		if v.LimitAtomic == nil || l.MaxPerPayment.Cmp(v.LimitAtomic) < 0 {
			v.LimitAtomic = new(big.Int).Set(l.MaxPerPayment)
		}
		if r.Amount != nil && r.Amount.Cmp(l.MaxPerPayment) > 0 {
			deny("price %s %s is above the operator's per-payment cap of %s %s for this token (policy: token_limits)",
				tokens.FormatUnits(r.Amount, r.Token.Decimals), r.Token.Symbol, tokens.FormatUnits(l.MaxPerPayment, l.Token.Decimals), r.Token.Symbol)
		}
	}

	if r.PayTo == (common.Address{}) {
		deny("the payee address is the zero address")
	}
	if r.PayTo == r.Token.Address {
		deny("the payee is the token contract itself")
	}
	if slices.Contains(p.Payees.Deny, r.PayTo) {
		deny("payee %s is in the operator's denied payees (policy: payees.deny)", r.PayTo.Hex())
	} else if len(p.Payees.Allow) > 0 && !slices.Contains(p.Payees.Allow, r.PayTo) {
		deny("payee %s is not in the operator's allowed payees (policy: payees.allow)", r.PayTo.Hex())
	}

	if p.ApprovalAbove.IsSet() {
		// A token without a USD value cannot be compared with the
		// threshold, so it needs approval too (it is denied above anyway).
		if r.Token.Currency != "USD" || r.Amount == nil || r.Amount.Cmp(p.ApprovalAbove.Atomic(r.Token.Decimals)) > 0 {
			v.NeedsApproval = true
			v.ApprovalReason = fmt.Sprintf("price %s %s is above %s USD, over which the operator wants to be asked first (policy: approval_above); ask the human to confirm this payment",
				tokens.FormatUnits(r.Amount, r.Token.Decimals), r.Token.Symbol, p.ApprovalAbove)
		}
	}
	v.Allowed = len(v.Reasons) == 0
	return v
}

// checkDestination applies the rules about where the payment goes: the
// URL's parsed host against the host lists, and the https rule.
func (p Policy) checkDestination(r Request, deny func(string, ...any)) {
	if r.URL == "" {
		deny("the URL that asked for payment is missing")
		return
	}
	u, err := url.Parse(r.URL)
	if err != nil || !u.IsAbs() {
		deny("the URL that asked for payment is not an absolute URL")
		return
	}
	if u.Scheme != "https" && u.Scheme != "http" && u.Scheme != MCPScheme {
		deny("the URL scheme %q is not http or https", truncate(u.Scheme))
		return
	}
	if u.User != nil {
		// Never echo it: it may hold a password.
		deny("the URL that asked for payment carries a user name or password")
	}
	h, err := hostOfURL(u)
	if err != nil {
		deny("the host of the URL that asked for payment is refused: %v", err)
		return
	}
	if r.Host != "" {
		if rh, err := hostOfString(r.Host); err != nil || rh.name != h.name {
			deny("the request's host %q is not the URL's host %s", truncate(r.Host), h.name)
		}
	}
	if u.Scheme == "http" {
		switch {
		case p.HTTP == HTTPAnywhere:
		case p.HTTP == HTTPLoopbackOnly && h.loopback():
		case p.HTTP == HTTPLoopbackOnly:
			deny("plain http to %s is refused: payments need https except to this machine (policy: require_https)", h.name)
		default:
			deny("plain http to %s is refused: payments need https, even to this machine (policy: allow_http_loopback)", h.name)
		}
	}
	if i := slices.IndexFunc(p.Hosts.Deny, func(hp HostPattern) bool { return hp.match(h) }); i >= 0 {
		deny("host %s is in the operator's denied hosts as %s (policy: hosts.deny)", h.name, p.Hosts.Deny[i])
	} else if len(p.Hosts.Allow) > 0 && !slices.ContainsFunc(p.Hosts.Allow, func(hp HostPattern) bool { return hp.match(h) }) {
		deny("host %s is not in the operator's allowed hosts (policy: hosts.allow)", h.name)
	}
}

// checkFlow applies payment_flows. Only the standard flow is allowed
// unless the operator lists another: in upfront and escrow the server takes
// the money before it does the work, so the payer carries the risk of
// paying for nothing. A flow x402 does not define is refused whatever the
// file says (the file cannot list one): nobody can say what it does with
// the money.
func (p Policy) checkFlow(flow string, deny func(string, ...any)) {
	switch {
	case flow == "" || flow == x402.FlowAuthorization:
	case !x402.KnownPaymentFlow(flow):
		deny("payment flow %s is not one x402 defines, so what the server does with the money is unknown", redact.Quote(flow))
	case !slices.Contains(p.PaymentFlows, flow):
		deny("payment flow %q %s; the operator's policy does not allow it (policy: payment_flows)", flow, flowMeaning(flow))
	}
}

// flowMeaning says what a defined payment flow means for the payer.
func flowMeaning(flow string) string {
	switch flow {
	case x402.FlowUpfront:
		return "means the server settles before it does the work, so a request that fails is paid all the same"
	case x402.FlowEscrow:
		return "means the server settles before it does the work (and again after it), so a request that fails is paid all the same"
	}
	return "means the server settles after it has done the work"
}

func sameToken(a, b tokens.Token) bool {
	return a.Network == b.Network && a.Address == b.Address
}

// Approve checks the request and the exact authorization that would be
// signed for it, and on success issues the only kind of value the signer
// accepts. res is the ledger's reservation of this very payment (payer,
// payee, amount and nonce): without it nothing is permitted, and it backs
// one permit only. now is the signing time.
func (p Policy) Approve(r Request, auth x402.Authorization, res ledger.Reservation, now time.Time) (*Permit, error) {
	v := p.Check(r)
	if !v.Allowed {
		return nil, &DeniedError{Reasons: v.Reasons}
	}
	if v.NeedsApproval && !r.Confirmed {
		return nil, &DeniedError{Reasons: []string{v.ApprovalReason}}
	}
	var bad []string
	if auth.To != r.PayTo {
		bad = append(bad, "authorization payee differs from the checked payee")
	}
	if auth.Value == nil || r.Amount == nil || auth.Value.Cmp(r.Amount) != 0 {
		bad = append(bad, "authorization value differs from the checked amount")
	}
	if err := auth.Check(); err != nil {
		bad = append(bad, err.Error())
	} else {
		unix := big.NewInt(now.Unix())
		limit := new(big.Int).Add(unix, big.NewInt(int64(p.MaxWindow/time.Second)))
		if auth.ValidAfter.Cmp(unix) >= 0 {
			bad = append(bad, "authorization validAfter is not in the past")
		}
		if auth.ValidBefore.Cmp(unix) <= 0 {
			bad = append(bad, "authorization validBefore is not in the future")
		}
		if auth.ValidBefore.Cmp(limit) > 0 {
			bad = append(bad, fmt.Sprintf("authorization window is longer than the operator's maximum of %ds", int(p.MaxWindow/time.Second)))
		}
	}
	if len(bad) > 0 {
		return nil, &DeniedError{Reasons: bad}
	}
	if err := res.Claim(auth.From, auth.To, auth.Value, auth.Nonce); err != nil {
		return nil, err
	}
	return &Permit{st: &permitState{token: r.Token, auth: copyAuthorization(auth), reservation: res}}, nil
}
