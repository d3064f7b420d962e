package policy

import (
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/x402"
)

// Defaults applied when the operator sets nothing. They are deliberately
// small: a misconfigured agent should be able to waste cents, not dollars.
const (
	DefaultMaxPerPayment = "0.10"
	DefaultMaxWindow     = 5 * time.Minute
	// minWindow is below what facilitators accept (validBefore >= now+6s)
	// plus a margin for the round trip.
	minWindow = 10 * time.Second
)

// Policy holds the operator's limits.
type Policy struct {
	// MaxPerPayment caps a single payment, in USD.
	MaxPerPayment USD
	// Networks, if non-empty, lists the CAIP-2 networks payments may use.
	// Empty means every network with a token in the registry.
	Networks []string
	// MaxWindow caps how long a signed authorization stays valid: a server
	// asking for a longer maxTimeoutSeconds gets this instead.
	MaxWindow time.Duration
}

// Default is the policy used when the operator configures none.
func Default() Policy {
	return Policy{MaxPerPayment: MustUSD(DefaultMaxPerPayment), MaxWindow: DefaultMaxWindow}
}

// Validate reports configuration mistakes.
func (p Policy) Validate() error {
	if !p.MaxPerPayment.IsSet() {
		return errors.New("max_per_payment is not set")
	}
	if p.MaxWindow < minWindow {
		return fmt.Errorf("max_authorization_seconds is %d; it must be at least %d", int(p.MaxWindow/time.Second), int(minWindow/time.Second))
	}
	for _, n := range p.Networks {
		if _, err := tokens.ParseNetwork(n); err != nil {
			return err
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
	URL   string
	Host  string
	Token tokens.Token
	PayTo common.Address
	// Amount is in the token's atomic units.
	Amount *big.Int
	// MaxPrice is the agent's own per-call cap in USD; it can only lower
	// the operator's cap. Unset means no extra limit.
	MaxPrice USD
}

// Verdict is the outcome of checking a request.
type Verdict struct {
	Allowed bool
	// Reasons says why a payment is denied, in words an agent can act on.
	Reasons []string
	// Limit is the effective per-payment cap in USD (operator cap lowered by
	// the agent's max_price) and LimitAtomic the same in token units.
	Limit       USD
	LimitAtomic *big.Int
}

// DeniedError is returned by Approve for a payment the policy refuses.
type DeniedError struct {
	Reasons []string
}

func (e *DeniedError) Error() string {
	return "payment denied by policy: " + strings.Join(e.Reasons, "; ")
}

// Check evaluates a request against the limits. It signs nothing and
// changes nothing, so quoting can show the verdict ahead of paying.
func (p Policy) Check(r Request) Verdict {
	v := Verdict{Limit: p.MaxPerPayment.Min(r.MaxPrice)}
	deny := func(format string, a ...any) { v.Reasons = append(v.Reasons, fmt.Sprintf(format, a...)) }

	if len(p.Networks) > 0 && !slices.Contains(p.Networks, r.Token.Network) {
		deny("network %s is not in the operator's allowed networks (%s)", r.Token.Network, strings.Join(p.Networks, ", "))
	}
	if r.Amount == nil || r.Amount.Sign() <= 0 {
		deny("the amount is not a positive number of atomic units")
	}
	if !p.MaxPerPayment.IsSet() {
		// A policy without a cap is a configuration bug; refuse rather than
		// pay without limit.
		deny("no per-payment cap is configured")
	} else if r.Token.Currency != "USD" {
		deny("token %s has no USD value in the registry, and the per-payment cap is in USD", r.Token)
	} else if r.Amount != nil {
		v.LimitAtomic = v.Limit.Atomic(r.Token.Decimals)
		if r.Amount.Cmp(v.LimitAtomic) > 0 {
			price := tokens.FormatUnits(r.Amount, r.Token.Decimals)
			if r.MaxPrice.IsSet() && r.MaxPrice.Cmp(p.MaxPerPayment) < 0 {
				deny("price %s %s is above the max_price of %s USD given for this call", price, r.Token.Symbol, r.MaxPrice)
			} else {
				deny("price %s %s is above the operator's per-payment cap of %s USD", price, r.Token.Symbol, p.MaxPerPayment)
			}
		}
	}
	if r.PayTo == (common.Address{}) {
		deny("the payee address is the zero address")
	}
	if r.PayTo == r.Token.Address {
		deny("the payee is the token contract itself")
	}
	v.Allowed = len(v.Reasons) == 0
	return v
}

// Approve checks the request and the exact authorization that would be
// signed for it, and on success issues the only kind of value the signer
// accepts. now is the signing time.
func (p Policy) Approve(r Request, auth x402.Authorization, now time.Time) (*Approval, error) {
	v := p.Check(r)
	if !v.Allowed {
		return nil, &DeniedError{Reasons: v.Reasons}
	}
	var bad []string
	if auth.To != r.PayTo {
		bad = append(bad, "authorization payee differs from the checked payee")
	}
	if auth.Value == nil || r.Amount == nil || auth.Value.Cmp(r.Amount) != 0 {
		bad = append(bad, "authorization value differs from the checked amount")
	}
	if auth.Nonce == ([32]byte{}) {
		bad = append(bad, "authorization nonce is zero")
	}
	if auth.ValidAfter == nil || auth.ValidBefore == nil {
		bad = append(bad, "authorization window is missing")
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
	a := &Approval{issued: true, token: r.Token, auth: auth}
	a.auth = a.Authorization() // own copies of the numbers
	return a, nil
}
