// Package netguard keeps agent-chosen HTTP requests away from this
// machine and its private networks: loopback, RFC 1918, CGNAT, link-local
// (cloud metadata at 169.254.169.254 and fd00:ec2::254), unique-local,
// multicast, unspecified and other reserved ranges, in every IPv6 form that
// embeds such an IPv4 address (IPv4-mapped, IPv4-compatible, IPv4-translated,
// NAT64 64:ff9b::/96, 6to4 2002::/16, Teredo).
//
// Invariant: the check runs on the address actually being dialed, in the
// dialer's Control hook, after name resolution and before connect(2). A name
// that resolves to a private address (DNS rebinding, "localhost", a hostile
// redirect) is refused the same way as a literal one, and no packet leaves
// for a refused address. Only the operator widens the set (Guard.Allow).
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// Rule is one refused range and what it is, for the message.
type Rule struct {
	Prefix netip.Prefix
	// What completes "x is ...", e.g. "a loopback address".
	What string
}

func rule(p, what string) Rule { return Rule{Prefix: netip.MustParsePrefix(p), What: what} }

// v4Rules and v6Rules are refused unless allowed. More specific prefixes
// come first, so the message names the narrowest rule.
var v4Rules = []Rule{
	rule("0.0.0.0/32", "the unspecified address (this machine)"),
	rule("0.0.0.0/8", `a "this network" address (0.0.0.0/8)`),
	rule("10.0.0.0/8", "a private address (RFC 1918)"),
	rule("100.64.0.0/10", "a carrier-grade NAT address (100.64.0.0/10, shared address space)"),
	rule("127.0.0.0/8", "a loopback address"),
	rule("169.254.169.254/32", "the cloud metadata address (link-local)"),
	rule("169.254.0.0/16", "a link-local address"),
	rule("172.16.0.0/12", "a private address (RFC 1918)"),
	rule("192.0.0.0/24", "an IETF protocol assignment address (192.0.0.0/24, reserved)"),
	rule("192.0.2.0/24", "a documentation address (TEST-NET-1)"),
	rule("192.168.0.0/16", "a private address (RFC 1918)"),
	rule("198.18.0.0/15", "a benchmarking address (198.18.0.0/15, for local networks only)"),
	rule("198.51.100.0/24", "a documentation address (TEST-NET-2)"),
	rule("203.0.113.0/24", "a documentation address (TEST-NET-3)"),
	rule("224.0.0.0/4", "a multicast address"),
	rule("255.255.255.255/32", "the broadcast address"),
	rule("240.0.0.0/4", "a reserved address (240.0.0.0/4)"),
}

var v6Rules = []Rule{
	rule("::/128", "the unspecified address (this machine)"),
	rule("::1/128", "a loopback address"),
	rule("::/96", "an IPv4-compatible address (deprecated)"),
	rule("64:ff9b:1::/48", "a local-use NAT64 address (64:ff9b:1::/48)"),
	rule("100::/64", "a discard-only address (100::/64)"),
	rule("2001:db8::/32", "a documentation address (2001:db8::/32)"),
	rule("fd00:ec2::254/128", "the cloud metadata address (unique-local)"),
	rule("fc00::/7", "a unique-local address (fc00::/7)"),
	rule("fe80::/10", "a link-local address"),
	rule("fec0::/10", "a site-local address (deprecated)"),
	rule("ff00::/8", "a multicast address"),
}

// embedding prefixes carry an IPv4 address inside an IPv6 one; the IPv4
// address decides. IPv4-mapped (::ffff:0:0/96) is unmapped first and
// judged as plain IPv4.
var (
	compat = netip.MustParsePrefix("::/96")
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
	siit   = netip.MustParsePrefix("::ffff:0:0:0/96")
	sixTo4 = netip.MustParsePrefix("2002::/16")
	teredo = netip.MustParsePrefix("2001::/32")
)

// RefusedError is a dial to an address the guard refuses. Host is the
// name that was asked for, when known; IP is the address it resolved to.
type RefusedError struct {
	Host string
	IP   netip.Addr
	// What says what IP is, e.g. "a loopback address", or "an
	// IPv4-mapped form of 127.0.0.1, a loopback address".
	What string
}

func (e *RefusedError) Error() string {
	_, literal := netip.ParseAddr(e.Host)
	switch {
	case e.Host == "" || e.Host == e.IP.String():
		return fmt.Sprintf("%s is %s", e.IP, e.What)
	case literal == nil:
		return fmt.Sprintf("%s (that is %s) is %s", e.Host, e.IP, e.What)
	}
	return fmt.Sprintf("%s resolves to %s, which is %s", e.Host, e.IP, e.What)
}

// Guard decides which addresses may be dialed. The zero value refuses
// every range above.
type Guard struct {
	// Allow lists the prefixes the operator lets through. An IPv4 prefix
	// also covers its IPv4-mapped IPv6 form.
	Allow []netip.Prefix
}

// Check returns a *RefusedError when ip must not be dialed.
func (g Guard) Check(ip netip.Addr) error {
	ip = ip.WithZone("").Unmap()
	for _, p := range g.Allow {
		if p.Contains(ip) {
			return nil
		}
	}
	if what := classify(ip); what != "" {
		return &RefusedError{IP: ip, What: what}
	}
	return nil
}

// classify says what a refused address is, "" for an address that may be
// dialed. ip is unmapped.
func classify(ip netip.Addr) string {
	if !ip.IsValid() {
		return "not a valid address"
	}
	if ip.Is4() {
		for _, r := range v4Rules {
			if r.Prefix.Contains(ip) {
				return r.What
			}
		}
		return ""
	}
	if v4, form, ok := embedded(ip); ok {
		if what := classify(v4); what != "" {
			return fmt.Sprintf("%s form of %s, %s", form, v4, what)
		}
		if form != "an IPv4-compatible" {
			// NAT64, 6to4 and Teredo carry traffic to public IPv4
			// addresses too.
			return ""
		}
	}
	for _, r := range v6Rules {
		if r.Prefix.Contains(ip) {
			return r.What
		}
	}
	return ""
}

// embedded returns the IPv4 address an IPv6 address carries, and the name
// of the form.
func embedded(ip netip.Addr) (netip.Addr, string, bool) {
	b := ip.As16()
	switch {
	case ip == netip.IPv6Unspecified() || ip == netip.IPv6Loopback():
		return netip.Addr{}, "", false
	case compat.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), "an IPv4-compatible", true
	case nat64.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), "a NAT64", true
	case siit.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), "an IPv4-translated", true
	case sixTo4.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6])), "a 6to4", true
	case teredo.Contains(ip):
		// The client's address is stored inverted (RFC 4380).
		return netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]}), "a Teredo", true
	}
	return netip.Addr{}, "", false
}

// Control is a net.Dialer Control function: it refuses the connection to
// a refused address before it is made.
func (g Guard) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// Control gets resolved IP addresses for TCP and UDP; anything
		// else is not something this guard can vouch for.
		return fmt.Errorf("netguard: cannot check %s address %q", network, address)
	}
	return g.Check(ap.Addr())
}

// DialContext dials like d, with the guard's Control hook in front of
// every connection, and names the host asked for in a refusal. d's own
// Control, if any, is replaced.
func (g Guard) DialContext(d net.Dialer) func(ctx context.Context, network, address string) (net.Conn, error) {
	d.Control = g.Control
	d.ControlContext = nil
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, address)
		if err != nil {
			var re *RefusedError
			if errors.As(err, &re) {
				host, _, _ := net.SplitHostPort(address)
				re.Host = host
			}
			return nil, err
		}
		return c, nil
	}
}

// ParsePrefix reads an operator's allow entry: an IP address ("10.1.2.3",
// "::1") or a CIDR prefix ("10.1.2.0/24"). An IPv4-mapped IPv6 entry is
// stored as the IPv4 prefix it maps, so it matches either form.
func ParsePrefix(s string) (netip.Prefix, error) {
	var p netip.Prefix
	if ip, err := netip.ParseAddr(s); err == nil {
		if ip.Zone() != "" {
			return p, fmt.Errorf("%q has a zone; give the address without %%zone", s)
		}
		p = netip.PrefixFrom(ip, ip.BitLen())
	} else {
		p, err = netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("%q is not an IP address or CIDR prefix such as 10.1.2.0/24", s)
		}
		if p != p.Masked() {
			return p, fmt.Errorf("%q has bits set beyond its /%d; write %s", s, p.Bits(), p.Masked())
		}
	}
	if a := p.Addr(); a.Is4In6() {
		// Masked above, a prefix of ::ffff:a.b.c.d is at least /96.
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p, nil
}
