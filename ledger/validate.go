package ledger

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
)

// Bounds on what a record may hold. Everything in a record comes, one way
// or another, from a server we do not trust; the ledger file must not grow
// by megabytes because one answered with a huge header.
const (
	maxURL        = 4096
	maxHost       = 253 // DNS name limit
	maxToken      = 32
	maxTx         = 128 // an EVM hash is 66; leave room for other chains' ids
	maxSettlement = 8 << 10
	maxNote       = 1 << 10
	maxLimitName  = 200
	maxLimits     = 64
	maxRecent     = 1000
	maxAmountBits = 256 // EIP-3009 values are uint256
)

// Compiled on first use, not at package init: every x402-mcp command links
// the ledger and most start without writing a record; the counted
// repetitions compile into large programs (issue 10, goal 3).
var (
	// The text forms of addresses and nonces (keys.go).
	reAddress = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^0x[0-9a-fA-F]{40}$`) })
	reNonce   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^0x[0-9a-fA-F]{64}$`) })
	// CAIP-2: namespace:reference.
	reNetwork = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32}$`) })
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// validateRecord checks the fields a caller supplies to Reserve.
func validateRecord(r *Record) error {
	switch {
	case r.URL == "" || len(r.URL) > maxURL || !printable(r.URL):
		return invalid("url must be 1 to %d printable bytes", maxURL)
	case !validHost(r.Host):
		return invalid("host %q must be a normalised host name (lower-case, no port)", clip(r.Host, 80))
	case !reNetwork().MatchString(r.Network):
		return invalid("network %q is not a CAIP-2 id", clip(r.Network, 80))
	case r.Asset == (common.Address{}):
		return invalid("asset is unset")
	case len(r.Token) > maxToken || !printable(r.Token):
		return invalid("token symbol must be at most %d printable bytes", maxToken)
	case r.Amount == nil || r.Amount.Sign() <= 0 || r.Amount.BitLen() > maxAmountBits:
		return invalid("amount must be a positive uint256")
	case r.USDNano < 0:
		return invalid("usd value must not be negative")
	case r.PayTo == (common.Address{}):
		return invalid("payTo is unset")
	case r.Payer == (common.Address{}):
		return invalid("payer is unset")
	case r.Nonce == [32]byte{}:
		return invalid("nonce is unset")
	case r.ValidBefore <= 0:
		return invalid("validBefore must be a positive unix time")
	}
	return nil
}

func validateLimits(limits []Limit) error {
	if len(limits) > maxLimits {
		return invalid("at most %d limits", maxLimits)
	}
	for _, lim := range limits {
		switch {
		case len(lim.Name) > maxLimitName || !printable(lim.Name):
			return invalid("limit name must be at most %d printable bytes", maxLimitName)
		case lim.Window < 0 || lim.MaxUSDNano < 0 || lim.MaxCount < 0:
			return invalid("limit %q has a negative field", lim.Name)
		case lim.Host != "" && !validHost(lim.Host):
			return invalid("limit %q: host %q must be a normalised host name", lim.Name, clip(lim.Host, 80))
		}
	}
	return nil
}

// validHost accepts what a caller's normalisation produces: non-empty,
// printable ASCII without spaces, slashes or upper case. The ledger
// compares hosts byte for byte, so "API.example.com" would silently escape
// a limit on "api.example.com"; refusing it is safer.
func validHost(h string) bool {
	if h == "" || len(h) > maxHost {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if c <= ' ' || c >= 0x7f || c == '/' || ('A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

func validTx(tx string) bool {
	if len(tx) > maxTx {
		return false
	}
	for i := 0; i < len(tx); i++ {
		if tx[i] <= ' ' || tx[i] >= 0x7f {
			return false
		}
	}
	return true
}

// printable: valid UTF-8 without control characters, which could forge
// lines in a log or terminal that displays the ledger.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f })
}

// clip cuts s to at most n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// cleanText makes outside text fit a bounded TEXT column: invalid UTF-8,
// and NUL, which PostgreSQL's text cannot hold, are replaced, then the
// result is cut. The same on both backends, so they store the same text.
func cleanText(s string, n int) string {
	return clip(strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD"), n)
}

// validateApproval checks what a caller supplies to RequestApproval. A
// human decides by reading these fields, so the ones shown must look like
// what they are: besides the bounds records have, the URL and token may
// hold no invisible or format characters (a bidi override could make one
// URL read as another).
func validateApproval(a *Approval) error {
	switch {
	case a.Binding == [32]byte{}:
		return invalid("approval binding is unset")
	case a.RequestKey == [32]byte{}:
		return invalid("approval request key is unset")
	case !validMethod(a.Method):
		return invalid("method %q must be an HTTP method of at most %d bytes", clip(a.Method, 40), maxMethod)
	case a.URL == "" || len(a.URL) > maxURL || !visible(a.URL):
		return invalid("url must be 1 to %d bytes of visible text", maxURL)
	case !validHost(a.Host):
		return invalid("host %q must be a normalised host name (lower-case, no port)", clip(a.Host, 80))
	case !reNetwork().MatchString(a.Network):
		return invalid("network %q is not a CAIP-2 id", clip(a.Network, 80))
	case a.Asset == (common.Address{}):
		return invalid("asset is unset")
	case len(a.Token) > maxToken || !visible(a.Token):
		return invalid("token symbol must be at most %d bytes of visible text", maxToken)
	case a.Amount == nil || a.Amount.Sign() <= 0 || a.Amount.BitLen() > maxAmountBits:
		return invalid("amount must be a positive uint256")
	case a.USDNano < 0:
		return invalid("usd value must not be negative")
	case a.PayTo == (common.Address{}):
		return invalid("payTo is unset")
	}
	return nil
}

// validateUse checks Record.Approval and normalises its ID.
func validateUse(u *ApprovalUse) error {
	id, ok := approvalID(u.ID)
	switch {
	case !ok:
		return invalid("approval id %q is not ap- and 8 letters", clip(u.ID, 40))
	case u.Binding == [32]byte{}:
		return invalid("approval binding is unset")
	}
	u.ID = id
	return nil
}

// validMethod accepts an RFC 9110 token: what net/http sends as a method.
func validMethod(m string) bool {
	if m == "" || len(m) > maxMethod {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// visible: printable, and every rune shows as itself: no control, format
// (bidi, zero-width) or unassigned code point.
func visible(s string) bool {
	return printable(s) && !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsGraphic(r) })
}

// cleanLine is cleanText for text shown on one line of a table: control
// characters become spaces and invisible ones are dropped, so what another
// party wrote can neither forge a line nor reorder what a human reads.
func cleanLine(s string, n int) string {
	return cleanText(strings.Map(func(r rune) rune {
		switch {
		case unicode.IsControl(r):
			return ' '
		case !unicode.IsGraphic(r):
			return -1
		}
		return r
	}, s), n)
}
