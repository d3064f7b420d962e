package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestCheck covers every refused range, its mapped and embedded forms,
// and public addresses that must pass. want is a part of the message, ""
// for an address that may be dialed.
func TestCheck(t *testing.T) {
	cases := []struct{ ip, want string }{
		// IPv4.
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", `"this network"`},
		{"10.0.0.1", "private address (RFC 1918)"},
		{"10.255.255.255", "RFC 1918"},
		{"100.64.0.1", "carrier-grade NAT"},
		{"100.127.255.255", "carrier-grade NAT"},
		{"127.0.0.1", "loopback"},
		{"127.0.0.2", "loopback"},
		{"127.255.255.254", "loopback"},
		{"169.254.169.254", "cloud metadata"},
		{"169.254.1.1", "link-local"},
		{"172.16.0.1", "RFC 1918"},
		{"172.31.255.255", "RFC 1918"},
		{"192.0.0.192", "IETF protocol assignment"},
		{"192.0.2.1", "documentation"},
		{"192.168.1.1", "RFC 1918"},
		{"198.18.0.1", "benchmarking"},
		{"198.19.255.255", "benchmarking"},
		{"198.51.100.7", "documentation"},
		{"203.0.113.9", "documentation"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"240.0.0.1", "reserved"},
		{"255.255.255.255", "broadcast"},
		// IPv4 neighbours of the ranges, public.
		{"1.1.1.1", ""},
		{"8.8.8.8", ""},
		{"9.255.255.255", ""},
		{"11.0.0.0", ""},
		{"100.63.255.255", ""},
		{"100.128.0.0", ""},
		{"126.255.255.255", ""},
		{"128.0.0.0", ""},
		{"169.253.255.255", ""},
		{"172.15.255.255", ""},
		{"172.32.0.0", ""},
		{"192.167.255.255", ""},
		{"192.169.0.0", ""},
		{"198.17.255.255", ""},
		{"198.20.0.0", ""},
		{"223.255.255.255", ""},
		// IPv6.
		{"::", "unspecified"},
		{"::1", "loopback"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"fec0::1", "site-local"},
		{"fc00::1", "unique-local"},
		{"fd12:3456::1", "unique-local"},
		{"fd00:ec2::254", "cloud metadata"},
		{"ff02::1", "multicast"},
		{"ff05::2", "multicast"},
		{"100::1", "discard-only"},
		{"2001:db8::1", "documentation"},
		{"64:ff9b:1::a00:1", "local-use NAT64"},
		{"2606:4700::1111", ""},
		{"2a00:1450:4001::200e", ""},
		// IPv4-mapped: judged as the IPv4 address itself.
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:7f00:1", "loopback"},
		{"::ffff:10.0.0.1", "RFC 1918"},
		{"::ffff:169.254.169.254", "cloud metadata"},
		{"::ffff:0.0.0.0", "unspecified"},
		{"::ffff:8.8.8.8", ""},
		// IPv4-compatible (deprecated): refused whatever it embeds.
		{"::127.0.0.1", "IPv4-compatible form of 127.0.0.1, a loopback"},
		{"::10.1.2.3", "IPv4-compatible form of 10.1.2.3"},
		{"::8.8.8.8", "IPv4-compatible address (deprecated)"},
		// IPv4-translated (SIIT).
		{"::ffff:0:127.0.0.1", "IPv4-translated form of 127.0.0.1"},
		{"::ffff:0:8.8.8.8", ""},
		// NAT64 well-known prefix: private IPv4 refused, public passes.
		{"64:ff9b::127.0.0.1", "NAT64 form of 127.0.0.1, a loopback"},
		{"64:ff9b::a9fe:a9fe", "NAT64 form of 169.254.169.254"},
		{"64:ff9b::192.168.0.1", "NAT64 form of 192.168.0.1"},
		{"64:ff9b::8.8.8.8", ""},
		// 6to4: the IPv4 address in bits 16..47.
		{"2002:7f00:1::1", "6to4 form of 127.0.0.1"},
		{"2002:a00:1::", "6to4 form of 10.0.0.1"},
		{"2002:c0a8:101::1", "6to4 form of 192.168.1.1"},
		{"2002:808:808::1", ""},
		// Teredo: the client's address inverted in the last 32 bits.
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo form of 127.0.0.1"},
		{"2001:0:4136:e378:8000:63bf:f7f7:f7f7", ""},
	}
	var g Guard
	for _, tc := range cases {
		ip := netip.MustParseAddr(tc.ip)
		err := g.Check(ip)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused (%v), want allowed", tc.ip, err)
		case tc.want != "" && err == nil:
			t.Errorf("%s: allowed, want refused as %q", tc.ip, tc.want)
		case tc.want != "":
			var re *RefusedError
			if !errors.As(err, &re) {
				t.Errorf("%s: %T is not a *RefusedError", tc.ip, err)
			} else if !strings.Contains(re.What, tc.want) {
				t.Errorf("%s: %q does not say %q", tc.ip, err, tc.want)
			}
		}
	}
}

func TestAllow(t *testing.T) {
	allow := func(entries ...string) Guard {
		var g Guard
		for _, e := range entries {
			p, err := ParsePrefix(e)
			if err != nil {
				t.Fatalf("ParsePrefix(%q): %v", e, err)
			}
			g.Allow = append(g.Allow, p)
		}
		return g
	}
	cases := []struct {
		allow []string
		ip    string
		ok    bool
	}{
		{[]string{"127.0.0.1"}, "127.0.0.1", true},
		{[]string{"127.0.0.1"}, "::ffff:127.0.0.1", true}, // an IPv4 entry covers its mapped form
		{[]string{"127.0.0.1"}, "127.0.0.2", false},
		{[]string{"127.0.0.1"}, "::1", false},
		{[]string{"127.0.0.1"}, "64:ff9b::127.0.0.1", false}, // NAT64 goes to another machine's loopback
		{[]string{"::ffff:127.0.0.1"}, "127.0.0.1", true},    // a mapped entry is its IPv4 address
		{[]string{"::1"}, "::1", true},
		{[]string{"::1"}, "127.0.0.1", false},
		{[]string{"10.1.2.0/24"}, "10.1.2.200", true},
		{[]string{"10.1.2.0/24"}, "::ffff:10.1.2.200", true},
		{[]string{"10.1.2.0/24"}, "10.1.3.1", false},
		{[]string{"::ffff:10.1.2.0/120"}, "10.1.2.9", true},
		{[]string{"fd00::/8"}, "fd00:ec2::254", true},
		{[]string{"fe80::1"}, "fe80::1%eth0", true},
		{nil, "8.8.8.8", true},
	}
	for _, tc := range cases {
		err := allow(tc.allow...).Check(netip.MustParseAddr(tc.ip))
		if (err == nil) != tc.ok {
			t.Errorf("allow %v, %s: err %v, want allowed %v", tc.allow, tc.ip, err, tc.ok)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	good := map[string]string{
		"127.0.0.1":           "127.0.0.1/32",
		"::1":                 "::1/128",
		"10.1.2.0/24":         "10.1.2.0/24",
		"fd00::/8":            "fd00::/8",
		"::ffff:127.0.0.1":    "127.0.0.1/32",
		"::ffff:10.0.0.0/104": "10.0.0.0/8",
	}
	for in, want := range good {
		p, err := ParsePrefix(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	bad := map[string]string{
		"localhost":      "not an IP address or CIDR prefix",
		"10.1.2.3/24":    "bits set beyond its /24; write 10.1.2.0/24",
		"10.0.0.0/33":    "not an IP address",
		"fe80::1%eth0":   "has a zone",
		"::ffff:0:0/80":  "bits set beyond its /80",
		"":               "not an IP address",
		"127.0.0.1:8080": "not an IP address",
	}
	for in, want := range bad {
		_, err := ParsePrefix(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePrefix(%q): %v, want an error saying %q", in, err, want)
		}
	}
}

// dialTest dials address through the guard.
func dialTest(t *testing.T, g Guard, address string) (net.Conn, error) {
	t.Helper()
	dial := g.DialContext(net.Dialer{Timeout: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return dial(ctx, "tcp", address)
}

// TestDialRefusedBeforeConnect: a refused address fails in the Control
// hook, which runs before connect(2), so nothing is sent. The loopback
// listener proves it: it never sees the connection.
func TestDialRefusedBeforeConnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	for _, addr := range []string{
		net.JoinHostPort("127.0.0.1", port),
		net.JoinHostPort("::ffff:127.0.0.1", port),
		// Names are resolved first and the resolved address is checked:
		// "localhost" stands for any name a hostile DNS server points at
		// a private address (DNS rebinding).
		net.JoinHostPort("localhost", port),
		// Never routed anywhere: the guard refuses before connecting.
		"10.255.255.1:80",
		"169.254.169.254:80",
		"[fd00:ec2::254]:80",
		"100.64.0.1:80",
	} {
		c, err := dialTest(t, Guard{}, addr)
		if c != nil {
			c.Close()
		}
		var re *RefusedError
		if !errors.As(err, &re) {
			t.Errorf("dial %s: %v, want a *RefusedError", addr, err)
			continue
		}
		host, _, _ := net.SplitHostPort(addr)
		if re.Host != host {
			t.Errorf("dial %s: refusal names host %q", addr, re.Host)
		}
		if host == "localhost" && !strings.Contains(err.Error(), "localhost resolves to") {
			t.Errorf("dial localhost: %v does not say what the name resolved to", err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if n := accepted.Load(); n != 0 {
		t.Errorf("the loopback listener accepted %d connections through the guard", n)
	}

	// Allowed explicitly, the same address connects.
	g := Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	c, err := dialTest(t, g, net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		t.Fatalf("allowed 127.0.0.1: %v", err)
	}
	c.Close()
}

// TestControlSeesResolvedAddress: Control is given the IP:port being
// dialed, never a name; anything else is refused rather than guessed at.
func TestControlSeesResolvedAddress(t *testing.T) {
	var g Guard
	if err := g.Control("tcp", "localhost:80", nil); err == nil {
		t.Error("Control accepted a name")
	}
	if err := g.Control("tcp4", "93.184.215.14:443", nil); err != nil {
		t.Errorf("Control refused a public address: %v", err)
	}
	var _ func(string, string, syscall.RawConn) error = g.Control
}
