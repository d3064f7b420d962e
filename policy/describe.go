package policy

import (
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/x402-mcp/x402-mcp/tokens"
)

// Describe says what the policy allows in plain words, one rule per line,
// for `x402-mcp policy check FILE`. Rules that are off are listed too
// ("any host"), so that what is not limited is as visible as what is.
func (p Policy) Describe() string {
	var lines []string
	add := func(format string, a ...any) { lines = append(lines, fmt.Sprintf(format, a...)) }

	if p.MaxPerPayment.IsSet() {
		add("Each payment: at most %s USD", money(p.MaxPerPayment))
	} else {
		add("Each payment: nothing can be paid (no max_per_payment)")
	}
	for _, l := range p.TokenLimits {
		add("Each payment in %s: at most %s %s", l.Token, units(l.MaxPerPayment, l.Token.Decimals), l.Token.Symbol)
	}
	if p.ApprovalAbove.IsSet() {
		add("Over %s USD: ask the human first", money(p.ApprovalAbove))
	} else {
		add("Asking the human: never (no approval_above)")
	}

	if !p.Budget.IsSet() {
		add("Spending: no limit over time (no [budget])")
	}
	for _, b := range p.Budgets() {
		per := periodNamed(b.Period)
		if b.Host == "" {
			add("Spending: at most %s USD %s", money(b.Limit), per.words)
		} else {
			add("Spending at %s: at most %s USD %s", b.Host, money(b.Limit), per.words)
		}
	}
	if p.MaxPaymentsPerMinute > 0 {
		add("Rate: at most %d payments a minute, all hosts together", p.MaxPaymentsPerMinute)
	} else {
		add("Rate: no limit on payments a minute")
	}

	hosts := "Hosts: any host"
	if len(p.Hosts.Allow) > 0 {
		hosts = "Hosts: only " + list(p.Hosts.Allow, HostPattern.describe)
	}
	if len(p.Hosts.Deny) > 0 {
		hosts += "; never " + list(p.Hosts.Deny, HostPattern.describe)
	}
	add("%s", hosts)
	payees := "Payees: any address"
	if len(p.Payees.Allow) > 0 {
		payees = "Payees: only " + list(p.Payees.Allow, common.Address.Hex)
	}
	if len(p.Payees.Deny) > 0 {
		payees += "; never " + list(p.Payees.Deny, common.Address.Hex)
	}
	add("%s", payees)
	if len(p.Networks) > 0 {
		add("Networks: only %s", list(p.Networks, func(s string) string { return s }))
	} else {
		add("Networks: any network with a token in the registry")
	}
	if len(p.Tokens) > 0 {
		add("Tokens: only %s", list(p.Tokens, tokens.Token.String))
	} else {
		add("Tokens: any token in the registry")
	}

	switch p.HTTP {
	case HTTPLoopbackOnly:
		add("Plain http: only to this machine (loopback)")
	case HTTPNever:
		add("Plain http: never, https only")
	default:
		add("Plain http: to any host (require_https = false): anyone on the way can read and use a payment")
	}
	add("Authorizations: valid for at most %s", seconds(p.MaxWindow))
	if len(p.PaymentFlows) == 0 {
		add("Payment flows: only the standard one, where the server settles after doing the work (no payment_flows)")
	}
	for _, f := range p.PaymentFlows {
		add("Payment flow %s allowed: it %s", f, flowMeaning(f))
	}
	return strings.Join(lines, "\n") + "\n"
}

func periodNamed(name string) period {
	for _, per := range periods {
		if per.name == name {
			return per
		}
	}
	return period{words: name}
}

// money shows a USD amount with at least cents: "0.10", "5.00", "0.005".
func money(u USD) string {
	return atLeastCents(u.String(), 2)
}

// units shows a token amount like money, but never with more decimals
// than the token has.
func units(n *big.Int, decimals uint8) string {
	return atLeastCents(tokens.FormatUnits(n, decimals), min(2, int(decimals)))
}

func atLeastCents(s string, digits int) string {
	whole, frac, _ := strings.Cut(s, ".")
	if len(frac) >= digits {
		return s
	}
	frac += strings.Repeat("0", digits-len(frac))
	if frac == "" {
		return whole
	}
	return whole + "." + frac
}

func seconds(d time.Duration) string {
	s := int64(d / time.Second)
	switch {
	case s == 60:
		return "60 seconds (1 minute)"
	case s%60 == 0 && s > 60:
		return fmt.Sprintf("%d seconds (%d minutes)", s, s/60)
	}
	return fmt.Sprintf("%d seconds", s)
}

// list joins items in words: "a", "a and b", "a, b and c".
func list[T any](items []T, name func(T) string) string {
	s := make([]string, len(items))
	for i, it := range items {
		s[i] = name(it)
	}
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
