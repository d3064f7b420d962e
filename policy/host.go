package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/idna"

	"github.com/x402-mcp/x402-mcp/internal/redact"
)

// Host names are compared in one canonical form so that the many ways of
// writing a host cannot slip past an allow or deny list:
//
//   - A DNS name is lower case ASCII: IDNs become punycode (IDNA2008, the
//     lookup profile, so "bücher.example" and "xn--bcher-kva.example" are
//     one host and invalid labels are refused), and one trailing dot is
//     dropped ("OK.COM." is "ok.com").
//   - An IPv4 address must be written in plain dotted decimal. Hosts that
//     end in a numeric label but are not that form ("127.1", "2130706433",
//     "0x7f.1", "017.0.0.1", "127.0.0.1.") are refused: net/url keeps them
//     as names, but C resolvers and browsers read them as IP addresses, so
//     any answer we gave about them could be wrong.
//   - An IPv6 address is written in brackets in a URL; it is compared in
//     its canonical form without brackets ("::1"), an IPv4-mapped address
//     as the IPv4 address it reaches, and zones ("%eth0") are refused.
//   - The port and any user info play no part: the host is read from the
//     parsed URL, never from the text of the URL.
const (
	// maxHostInput bounds the text handed to IDNA processing.
	maxHostInput = 1024
	maxNameLen   = 253
	maxLabelLen  = 63
)

// host is a parsed, normalised host.
type host struct {
	// name is the canonical form used for matching and shown to people.
	name string
	// ip is set when the host is an IP literal.
	ip netip.Addr
	// raw is the host as written, kept to decide whether a name is
	// literally "localhost" (see loopback).
	raw string
}

// loopback reports whether plain http to h cannot leave this machine:
// 127.0.0.0/8, ::1 (also IPv4-mapped), or the name "localhost" written
// exactly so. Variants like "localhost." or Unicode look-alikes are not
// trusted, because they may be sent to a DNS resolver instead of being
// answered from the hosts file.
func (h host) loopback() bool {
	if h.ip.IsValid() {
		return h.ip.IsLoopback()
	}
	return asciiEqualFold(h.raw, "localhost")
}

// NormalizeHost returns the canonical host of a URL for matching against
// host patterns; see the package's host rules. It refuses a URL without a
// host, an out-of-range port, IPv6 zones, invalid IDNs and numeric hosts
// that are not plain IPv4 addresses.
func NormalizeHost(u *url.URL) (string, error) {
	h, err := hostOfURL(u)
	return h.name, err
}

func hostOfURL(u *url.URL) (host, error) {
	if u == nil || u.Host == "" {
		return host{}, errors.New("the URL has no host")
	}
	if strings.EqualFold(u.Scheme, MCPScheme) {
		h, _, err := mcpHost(MCPHostPrefix + u.Host)
		return h, err
	}
	if err := checkPort(u.Port()); err != nil {
		return host{}, err
	}
	// Hostname strips the brackets of an IPv6 literal; remember that they
	// were there so that "[::1]" and a name are told apart.
	return parseHost(u.Hostname(), strings.HasPrefix(u.Host, "["))
}

func checkPort(port string) error {
	if port == "" {
		return nil
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return fmt.Errorf("port %s is not a number from 1 to 65535", redact.Quote(port))
	}
	return nil
}

// hostOfString parses a host as it appears in a URL's authority or a Host
// header: "name", "name:port", "[v6]", "[v6]:port", or a bare IPv6 address
// (what url.URL.Hostname returns for an IPv6 literal).
func hostOfString(s string) (host, error) {
	if h, ok, err := mcpHost(s); ok {
		return h, err
	}
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return host{}, fmt.Errorf("%s has no closing bracket", redact.Quote(s))
		}
		rest := s[end+1:]
		if rest != "" {
			port, ok := strings.CutPrefix(rest, ":")
			if !ok {
				return host{}, fmt.Errorf("%s has text after the closing bracket", redact.Quote(s))
			}
			if err := checkPort(port); err != nil {
				return host{}, err
			}
		}
		return parseHost(s[1:end], true)
	}
	switch strings.Count(s, ":") {
	case 0:
		return parseHost(s, false)
	case 1:
		name, port, _ := strings.Cut(s, ":")
		if err := checkPort(port); err != nil {
			return host{}, err
		}
		return parseHost(name, false)
	default:
		return parseHost(s, true)
	}
}

// parseHost normalises a host name or IP literal (without brackets or
// port). bracketed says the host was an IPv6 literal in brackets.
func parseHost(raw string, bracketed bool) (host, error) {
	switch {
	case raw == "":
		return host{}, errors.New("the host is empty")
	case len(raw) > maxHostInput:
		return host{}, fmt.Errorf("the host is longer than %d bytes", maxHostInput)
	}
	if bracketed || strings.Contains(raw, ":") {
		a, err := netip.ParseAddr(raw)
		if err != nil || !a.Is6() {
			return host{}, fmt.Errorf("%s is not an IPv6 address", redact.Quote(raw))
		}
		if a.Zone() != "" {
			// A zone names a local interface; it has no meaning in a policy
			// and different stacks parse it differently.
			return host{}, fmt.Errorf("%s has an IPv6 zone, which is not allowed", redact.Quote(raw))
		}
		a = a.Unmap()
		return host{name: a.String(), ip: a, raw: raw}, nil
	}

	ascii, err := idna.Lookup.ToASCII(raw)
	if err != nil {
		return host{}, fmt.Errorf("%s is not a valid host name (%v)", redact.Quote(raw), err)
	}
	// A name whose ASCII form changes again is one IDNA does not have a
	// stable answer for; refuse it rather than pick one.
	if again, err := idna.Lookup.ToASCII(ascii); err != nil || again != ascii {
		return host{}, fmt.Errorf("%s has no stable ASCII form", redact.Quote(raw))
	}
	trailingDot := strings.HasSuffix(ascii, ".")
	name := strings.TrimSuffix(ascii, ".")
	if err := checkName(name); err != nil {
		return host{}, fmt.Errorf("%s is not a valid host name (%v)", redact.Quote(raw), err)
	}

	labels := strings.Split(name, ".")
	if endsInNumber(labels[len(labels)-1]) {
		// Browsers (WHATWG URL) and inet_aton treat a host whose last label
		// is a number as an IPv4 address, in forms net/url and netip do
		// not know. Accept only the one form everybody reads the same way.
		a, err := netip.ParseAddr(name)
		if err != nil || !a.Is4() || a.String() != name || raw != name || trailingDot {
			return host{}, fmt.Errorf("%s looks like an IP address but is not written as a plain one such as 127.0.0.1", redact.Quote(raw))
		}
		return host{name: name, ip: a, raw: raw}, nil
	}
	return host{name: name, raw: raw}, nil
}

// checkName checks an ASCII name for DNS shape. IDNA's lookup profile
// already refuses characters outside letters, digits and hyphens but allows
// empty labels and any length.
func checkName(name string) error {
	if name == "" {
		return errors.New("empty name")
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("longer than %d characters", maxNameLen)
	}
	for _, l := range strings.Split(name, ".") {
		if l == "" {
			return errors.New("empty label")
		}
		if len(l) > maxLabelLen {
			return fmt.Errorf("a label is longer than %d characters", maxLabelLen)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("character %q is not allowed", c)
			}
		}
	}
	return nil
}

// endsInNumber is the WHATWG URL test for a label that makes a host an
// IPv4 address: all decimal digits, or 0x followed by hex digits.
func endsInNumber(label string) bool {
	if label == "" {
		return false
	}
	if hex, ok := strings.CutPrefix(label, "0x"); ok {
		for i := 0; i < len(hex); i++ {
			c := hex[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
		return true
	}
	return allDigits(label)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// asciiEqualFold compares with ASCII case folding only: Unicode folding
// would equate "localhoſt" (long s) with "localhost", and a resolver would
// not.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// HostPattern is a normalised host pattern: an exact host ("api.example.com",
// "127.0.0.1", "::1") or "*." and a name ("*.example.com"), which matches
// every subdomain of that name at any depth but not the name itself (list
// both to allow both) and never an IP address. The zero value matches
// nothing. Make one with ParseHostPattern, so that every pattern in a
// Policy has been normalised exactly once.
type HostPattern struct {
	wildcard bool
	name     string
}

// ParseHostPattern normalises a pattern as NormalizeHost normalises a host.
// "*" is allowed only as a leading "*." label; "*" alone, URLs, paths and
// ports are refused.
func ParseHostPattern(s string) (HostPattern, error) {
	if s == "*" {
		return HostPattern{}, errors.New(`"*" alone is not a host pattern`)
	}
	if h, ok, err := mcpHost(s); ok {
		return HostPattern{name: h.name}, err
	}
	if strings.Contains(s, "/") {
		return HostPattern{}, fmt.Errorf("%s is not a host name: write only the host, without scheme or path", redact.Quote(s))
	}
	rest, wildcard := strings.CutPrefix(s, "*.")
	if strings.Contains(rest, "*") {
		return HostPattern{}, fmt.Errorf(`%s has a "*" that is not a leading "*."`, redact.Quote(s))
	}
	bracketed := strings.HasPrefix(rest, "[") && strings.HasSuffix(rest, "]")
	if bracketed {
		rest = rest[1 : len(rest)-1]
	} else if strings.Count(rest, ":") == 1 {
		return HostPattern{}, fmt.Errorf("%s has a port: patterns match host names, whatever the port", redact.Quote(s))
	}
	h, err := parseHost(rest, bracketed)
	if err != nil {
		return HostPattern{}, err
	}
	if wildcard && h.ip.IsValid() {
		return HostPattern{}, fmt.Errorf(`%s puts "*." before an IP address; an IP address has no subdomains`, redact.Quote(s))
	}
	return HostPattern{wildcard: wildcard, name: h.name}, nil
}

// MustHostPattern is ParseHostPattern for constants.
func MustHostPattern(s string) HostPattern {
	p, err := ParseHostPattern(s)
	if err != nil {
		panic(err)
	}
	return p
}

// String renders the pattern in its normalised form.
func (p HostPattern) String() string {
	if p.wildcard {
		return "*." + p.name
	}
	return p.name
}

// describe renders the pattern in words for Describe.
func (p HostPattern) describe() string {
	if p.wildcard {
		return "any subdomain of " + p.name
	}
	return p.name
}

// match reports whether the normalised host h matches. Comparing whole
// normalised names, and a wildcard only on a "." boundary, is what keeps
// "ok.com.evil.net", "xok.com" and "okay.com" from matching "ok.com".
func (p HostPattern) match(h host) bool {
	if p.name == "" || h.name == "" {
		return false
	}
	if !p.wildcard {
		return h.name == p.name
	}
	if h.ip.IsValid() {
		return false
	}
	return len(h.name) > len(p.name)+1 && strings.HasSuffix(h.name, "."+p.name)
}

// MatchHost reports whether host matches pattern. Both are normalised
// first (host may carry a port, and may be an IPv6 address with or without
// brackets); anything that does not normalise matches nothing. A Policy
// normalises its patterns once when it is loaded; MatchHost is for callers
// holding plain strings.
func MatchHost(pattern, host string) bool {
	p, err := ParseHostPattern(pattern)
	if err != nil {
		return false
	}
	h, err := hostOfString(host)
	if err != nil {
		return false
	}
	return p.match(h)
}

// An upstream MCP server reached over stdio (a child process) has no host
// name. Its payments are judged under the pseudo-host "mcp:<name>", <name>
// being the upstream's name in the configuration: host allow and deny
// lists and per-host budgets name it like any host ("mcp:paid"), it never
// matches a wildcard pattern, and the https rule does not apply to it (no
// network is involved). Its URL form is "mcp://<name>/<tool>". The colon
// keeps it apart from every DNS name, so no web host can pass for it.
const (
	MCPScheme     = "mcp"
	MCPHostPrefix = "mcp:"
	maxMCPName    = 32
)

// MCPHost is the pseudo-host of the stdio upstream called name, or an
// error when name is not a valid upstream name: a lower-case letter, then
// lower-case letters, digits and "-", at most 32 characters.
func MCPHost(name string) (string, error) {
	h, _, err := mcpHost(MCPHostPrefix + name)
	return h.name, err
}

// ValidMCPName reports whether name can name an upstream MCP server.
func ValidMCPName(name string) bool {
	if name == "" || len(name) > maxMCPName || name[0] < 'a' || name[0] > 'z' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// mcpHost parses "mcp:<name>"; ok is false when s does not have that
// prefix (in any case), and then s is some other kind of host.
func mcpHost(s string) (h host, ok bool, err error) {
	if len(s) < len(MCPHostPrefix) || !asciiEqualFold(s[:len(MCPHostPrefix)], MCPHostPrefix) {
		return host{}, false, nil
	}
	name := s[len(MCPHostPrefix):]
	if !ValidMCPName(name) {
		return host{}, true, fmt.Errorf("%s is not an MCP upstream host: write mcp:<name> with the upstream's name (a lower-case letter, then lower-case letters, digits and \"-\")", redact.Quote(s))
	}
	return host{name: MCPHostPrefix + name, raw: s}, true, nil
}
