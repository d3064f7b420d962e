package pay

import (
	"net"
	"net/url"
	"strings"

	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/policy"
	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/x402"
)

// MaxShownTarget bounds the path and query a human reads when deciding a
// payment: enough to recognise the resource, too little for a query string
// to carry a paragraph that reads like instructions.
const MaxShownTarget = 120

// ShowURL splits a request URL into what a human deciding a payment reads:
// the host the payment goes to, and the request target (path and query).
//
// The host is the one the policy judges and the connection is made to: an
// internationalised name appears in its ASCII (punycode, "xn--") form
// only, so a look-alike of a familiar name cannot pass for it; a port other
// than the scheme's default is shown; user info ("good.example@" in
// https://good.example@evil.example/) is never shown, since it names no
// host.
//
// The target is shown as it goes on the wire: every byte that is not
// printable ASCII (spaces, controls, non-ASCII letters, and with them
// every bidi or zero-width character) is percent-encoded, so nothing in it
// can reorder, hide or forge text; the fragment, which is never sent, is
// left out; and it is cut at MaxShownTarget bytes, marked with "…", by the
// one display cleaner.
func ShowURL(raw string) (host, target string) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", clipTarget(wireForm(raw))
	}
	return showHost(u), clipTarget(wireTarget(u))
}

// clipTarget cuts a target in wire form at MaxShownTarget bytes, never
// inside a %XX escape, and marks the cut with the display cleaner's "…".
func clipTarget(t string) string {
	if len(t) <= MaxShownTarget {
		return x402.Display(t, MaxShownTarget)
	}
	n := MaxShownTarget
	if i := strings.LastIndexByte(t[n-2:n], '%'); i >= 0 {
		n -= 2 - i
	}
	return x402.Display(t[:n], n) + "…"
}

// WireURL is a URL as it is used on the wire, for showing whole: the
// scheme, the host as ShowURL shows it, and the whole path and query
// percent-encoded as ShowURL encodes them, unclipped. It is printable
// ASCII, so no character in it can hide or reorder another. A URL that
// does not parse is encoded as a whole.
func WireURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return wireForm(raw)
	}
	return wireForm(strings.ToLower(u.Scheme)) + "://" + showHost(u) + wireTarget(u)
}

func wireTarget(u *url.URL) string {
	target := u.EscapedPath()
	if target == "" {
		target = "/"
	}
	if u.RawQuery != "" || u.ForceQuery {
		target += "?" + u.RawQuery
	}
	return wireForm(target)
}

func showHost(u *url.URL) string {
	name, err := policy.NormalizeHost(u)
	if err != nil {
		// Not a host a payment can go to (it is refused before that); show
		// what it is, encoded like a target.
		return x402.Display(wireForm(u.Hostname()), 255)
	}
	port := u.Port()
	if port == "" || (port == "443" && strings.EqualFold(u.Scheme, "https")) || (port == "80" && strings.EqualFold(u.Scheme, "http")) {
		if strings.Contains(name, ":") && !strings.HasPrefix(name, policy.MCPHostPrefix) {
			return "[" + name + "]"
		}
		return name
	}
	return net.JoinHostPort(name, port)
}

// wireForm percent-encodes every byte of s that is not printable ASCII.
func wireForm(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c > ' ' && c < 0x7f {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// Term is one line of what a human reads before approving a payment.
type Term struct{ Name, Value string }

// Terms is what a human reads before approving this payment, host first:
// it is what they should recognise before anything else. The elicitation,
// the text the agent relays and the CLI all show these lines.
func (a Ask) Terms() []Term {
	return terms(a.Host, a.Amount, a.AmountAtomic, a.USD, a.Token, a.Asset, a.Network, a.PayTo, a.Method, a.Target)
}

// ApprovalTerms is Terms for an approval recorded in the ledger. Every
// value passes the display cleaner here, where it is shown, whoever wrote
// the record.
func ApprovalTerms(a ledger.Approval) []Term {
	host, target := ShowURL(a.URL)
	if host == "" {
		host = x402.Display(a.Host, 255)
	}
	usd := ""
	if a.USDNano > 0 {
		usd = ledger.FormatUSDNano(a.USDNano)
	}
	amount := "?"
	if a.Amount != nil {
		amount = tokens.FormatUnits(a.Amount, a.Decimals)
	}
	atomic := "?"
	if a.Amount != nil {
		atomic = a.Amount.String()
	}
	return terms(host, amount, atomic, usd, x402.Display(a.Token, 32), a.Asset.Hex(), x402.Display(a.Network, 64),
		a.PayTo.Hex(), x402.Display(a.Method, 16), target)
}

func terms(host, amount, atomic, usd, token, asset, network, payTo, method, target string) []Term {
	amt := amount + " " + token + " (" + atomic + " atomic units"
	if usd != "" {
		amt += ", about " + usd + " USD"
	}
	return []Term{
		{"host", host},
		{"amount", amt + ")"},
		{"token", token + " " + asset},
		{"network", network},
		{"payee", payTo},
		{"request", method + " " + target},
	}
}
