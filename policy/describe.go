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
// for `x402-mcp policy check FILE` and the agent's policy resource. Rules
// that are off are listed too ("any host"), so that what is not limited is
// as visible as what is. Each line ends with where the rule comes from:
// "(default)" for a rule the policy file does not write (see Parse),
// "(policy file)" for one it writes, and "(turned off in the policy file:
// KEY = "none")" for a limit it turned off. A rule of a policy built in
// code that differs from its default has no mark.
func (p Policy) Describe() string {
	var lines []string
	add := func(format string, a ...any) { lines = append(lines, fmt.Sprintf(format, a...)) }
	def := Default()
	from := func(isDefault bool, keys ...string) string { return p.origin(isDefault, keys...) }

	if p.MaxPerPayment.IsSet() {
		add("Each payment: at most %s USD%s", money(p.MaxPerPayment), from(p.MaxPerPayment.Cmp(def.MaxPerPayment) == 0, "max_per_payment"))
	} else {
		add("Each payment: nothing can be paid (no max_per_payment)")
	}
	for _, l := range p.TokenLimits {
		add("Each payment in %s: at most %s %s%s", l.Token, units(l.MaxPerPayment, l.Token.Decimals), l.Token.Symbol, from(false, "token_limits"))
	}
	switch {
	case p.ApprovalAbove.IsSet():
		add("Over %s USD: ask the human first%s", money(p.ApprovalAbove), from(false, "approval_above"))
	case p.Written["approval_above"]:
		add("Asking the human: never%s", turnedOff("approval_above"))
	default:
		add("Asking the human: never, no approval_above%s", from(true, "approval_above"))
	}

	global := 0
	for _, per := range periods {
		key := "budget." + per.name
		u, du := *per.field(&p.Budget), *per.field(&def.Budget)
		switch {
		case u.IsSet():
			add("Spending: at most %s USD %s%s", money(u), per.words, from(du.IsSet() && u.Cmp(du) == 0, key))
		case p.Written[key]:
			add("Spending: no limit %s%s", per.words, turnedOff(key))
		case du.IsSet():
			add("Spending: no limit %s", per.words)
		default:
			continue
		}
		global++
	}
	if global == 0 {
		add("Spending: no limit over time (no [budget])")
	}
	for _, h := range p.budgetHosts() {
		for _, b := range p.HostBudgets[h].budgets(h) {
			add("Spending at %s: at most %s USD %s%s", b.Host, money(b.Limit), periodNamed(b.Period).words, from(false, "hosts.budget"))
		}
	}
	switch {
	case p.MaxPaymentsPerMinute > 0:
		add("Rate: at most %d payments a minute, all hosts together%s", p.MaxPaymentsPerMinute,
			from(p.MaxPaymentsPerMinute == def.MaxPaymentsPerMinute, "max_payments_per_minute"))
	case p.Written["max_payments_per_minute"]:
		add("Rate: no limit on payments a minute%s", turnedOff("max_payments_per_minute"))
	default:
		add("Rate: no limit on payments a minute")
	}

	hosts := "Hosts: any host"
	if len(p.Hosts.Allow) > 0 {
		hosts = "Hosts: only " + list(p.Hosts.Allow, HostPattern.describe)
	}
	if len(p.Hosts.Deny) > 0 {
		hosts += "; never " + list(p.Hosts.Deny, HostPattern.describe)
	}
	add("%s%s", hosts, from(len(p.Hosts.Allow)+len(p.Hosts.Deny) == 0, "hosts.allow", "hosts.deny"))
	payees := "Payees: any address"
	if len(p.Payees.Allow) > 0 {
		payees = "Payees: only " + list(p.Payees.Allow, common.Address.Hex)
	}
	if len(p.Payees.Deny) > 0 {
		payees += "; never " + list(p.Payees.Deny, common.Address.Hex)
	}
	add("%s%s", payees, from(len(p.Payees.Allow)+len(p.Payees.Deny) == 0, "payees.allow", "payees.deny"))
	if len(p.Networks) > 0 {
		add("Networks: only %s%s", list(p.Networks, func(s string) string { return s }), from(false, "networks"))
	} else {
		add("Networks: any network with a token in the registry%s", from(true, "networks"))
	}
	if len(p.Tokens) > 0 {
		add("Tokens: only %s%s", list(p.Tokens, tokens.Token.String), from(false, "tokens"))
	} else {
		add("Tokens: any token in the registry%s", from(true, "tokens"))
	}

	httpFrom := from(p.HTTP == def.HTTP, "require_https", "allow_http_loopback")
	switch p.HTTP {
	case HTTPLoopbackOnly:
		add("Plain http: only to this machine (loopback)%s", httpFrom)
	case HTTPNever:
		add("Plain http: never, https only%s", httpFrom)
	default:
		add("Plain http: to any host (require_https = false): anyone on the way can read and use a payment%s", httpFrom)
	}
	add("Authorizations: valid for at most %s%s", seconds(p.MaxWindow), from(p.MaxWindow == def.MaxWindow, "max_authorization_seconds"))
	if len(p.PaymentFlows) == 0 {
		add("Payment flows: only the standard one, where the server settles after doing the work%s", from(true, "payment_flows"))
	}
	for _, f := range p.PaymentFlows {
		add("Payment flow %s allowed: it %s%s", f, flowMeaning(f), from(false, "payment_flows"))
	}
	return strings.Join(lines, "\n") + "\n"
}

// origin marks a line of Describe with where its rule comes from: the
// policy file when it wrote one of keys, else the default when the value
// is the default's (always so for a policy from a file), else nothing.
func (p Policy) origin(isDefault bool, keys ...string) string {
	for _, k := range keys {
		if p.Written[k] {
			return " (policy file)"
		}
	}
	if isDefault {
		return " (default)"
	}
	return ""
}

// turnedOff marks a limit the policy file turned off with "none".
func turnedOff(key string) string {
	return fmt.Sprintf(" (turned off in the policy file: %s = %q)", key, None)
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
