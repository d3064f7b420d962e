package policy

import (
	"net/url"
	"strings"
	"testing"
)

func TestNormalizeHost(t *testing.T) {
	for _, tc := range []struct {
		url, want string // want "" means refused
	}{
		{"https://api.example.com/x", "api.example.com"},
		{"https://API.Example.COM./x", "api.example.com"},
		{"https://api.example.com:8443/x", "api.example.com"},
		// The host is what the parser finds, never what the text starts with.
		{"https://ok.com@evil.com/", "evil.com"},
		{"https://ok.com:pw@evil.com/", "evil.com"},
		{"https://ok.com%2f@evil.com/", "evil.com"},
		{"https://evil.com#@ok.com", "evil.com"},
		{"https://evil.com?@ok.com", "evil.com"},
		{"https://evil.com/@ok.com", "evil.com"},
		{"https://ok.com.evil.net/", "ok.com.evil.net"},
		// IDNs become punycode; look-alike forms IDNA maps are one host.
		{"https://bücher.example/", "xn--bcher-kva.example"},
		{"https://BÜCHER.example/", "xn--bcher-kva.example"},
		{"https://xn--bcher-kva.example/", "xn--bcher-kva.example"},
		{"https://ⓞⓚ.com/", "ok.com"},
		{"https://ok。com/", "ok.com"},
		// IP literals in their one canonical form.
		{"http://127.0.0.1:8080/", "127.0.0.1"},
		{"http://[::1]:8080/", "::1"},
		{"http://[0:0:0:0:0:0:0:1]/", "::1"},
		{"http://[::FFFF:127.0.0.1]/", "127.0.0.1"},
		{"http://[2001:DB8::1]/", "2001:db8::1"},
		{"http://localhost/", "localhost"},
		// Numbers that some resolvers read as IPv4 and net/url keeps as names.
		{"http://0x7f.1/", ""},
		{"http://0x7f000001/", ""},
		{"http://2130706433/", ""},
		{"http://127.1/", ""},
		{"http://017.0.0.1/", ""},
		{"http://127.000.000.001/", ""},
		{"http://127.0.0.1./", ""},
		{"http://1.2.3.4.5/", ""},
		{"http://example.0/", ""},
		{"http://0x/", ""},
		{"http://１２７.０.０.１/", ""}, // full-width digits map to 127.0.0.1, but a resolver would not
		// Not host names.
		{"http://[fe80::1%25en0]/", ""},
		{"http://a..b/", ""},
		{"http://.ok.com/", ""},
		{"http://ok.com../", ""},
		{"http:///x", ""},
		{"http:ok.com", ""},
		{"/relative/path", ""},
		{"http://ok.com:99999/", ""},
		{"http://ok.com:0/", ""},
		{"http://_dmarc.ok.com/", ""},
		{"http://-ok.com/", ""},
		{"http://xn--zz.example/", ""},
		{"http://a\u200db.com/", ""},
		{"http://" + strings.Repeat("a", 64) + ".com/", ""},
		{"http://" + strings.Repeat("a.", 127) + "com/", ""},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			if tc.want != "" {
				t.Errorf("url.Parse(%q): %v", tc.url, err)
			}
			continue
		}
		got, err := NormalizeHost(u)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("NormalizeHost(%q) = %q, want an error", tc.url, got)
		case tc.want != "" && (err != nil || got != tc.want):
			t.Errorf("NormalizeHost(%q) = %q, %v; want %q", tc.url, got, err, tc.want)
		}
	}
	if _, err := NormalizeHost(nil); err == nil {
		t.Error("NormalizeHost(nil) succeeded")
	}
}

func TestMatchHost(t *testing.T) {
	for _, tc := range []struct {
		pattern, host string
		want          bool
	}{
		{"ok.com", "ok.com", true},
		{"ok.com", "OK.COM.", true},
		{"OK.COM.", "ok.com", true},
		{"ok.com", "ok.com:443", true},
		{"ok.com", "ok.com.", true},
		{"ok.com", "ok.com..", false},
		{"ok.com", "ok.com.evil.net", false},
		{"*.ok.com", "ok.com.evil.net", false},
		{"ok.com", "evil.net.ok.com", false},
		{"ok.com", "okay.com", false},
		{"ok.com", "xok.com", false},
		{"*.ok.com", "xok.com", false},
		{"ok.com", "ok.co", false},
		{"ok.com", "ok.com.", true},
		{"ok.com", "ok.com:abc", false},
		{"ok.com", "ok.com ", false},
		{"ok.com", " ok.com", false},
		{"ok.com", "ok.com\x00", false},
		{"ok.com", "", false},
		{"", "ok.com", false},
		// Wildcards: any depth of subdomain, never the name itself.
		{"*.ok.com", "a.ok.com", true},
		{"*.ok.com", "a.b.c.ok.com", true},
		{"*.ok.com", "A.OK.COM.", true},
		{"*.ok.com", "ok.com", false},
		{"*.ok.com", ".ok.com", false},
		{"*.ok.com", "a..ok.com", false},
		{"*.ok.com", "a_b.ok.com", false},
		{"*.com", "ok.com", true},
		{"*.com", "127.0.0.1", false},
		// "*" only as a leading "*." label.
		{"*", "ok.com", false},
		{"*ok.com", "xok.com", false},
		{"*ok.com", "ok.com", false},
		{"ok.*", "ok.com", false},
		{"api.*.com", "api.x.com", false},
		{"*.*.ok.com", "a.b.ok.com", false},
		{"**.ok.com", "a.ok.com", false},
		{"*.", "ok.com", false},
		{".ok.com", "a.ok.com", false},
		// IDN: Unicode and punycode are one name, both ways.
		{"xn--bcher-kva.example", "bücher.example", true},
		{"bücher.example", "xn--bcher-kva.example", true},
		{"BÜCHER.example", "bücher.example", true},
		{"*.bücher.example", "shop.xn--bcher-kva.example", true},
		{"*.xn--bcher-kva.example", "shop.bücher.example", true},
		{"bucher.example", "bücher.example", false},
		{"ok.com", "ⓞⓚ.com", true}, // IDNA maps these letters; a resolver asks for ok.com
		// IP addresses: exact, canonical, never by wildcard.
		{"127.0.0.1", "127.0.0.1", true},
		{"127.0.0.1", "127.0.0.1:8080", true},
		{"127.0.0.1", "127.1", false},
		{"127.0.0.1", "2130706433", false},
		{"127.0.0.1", "0x7f.1", false},
		{"127.0.0.1", "0x7f.0.0.1", false},
		{"127.0.0.1", "017.0.0.1", false},
		{"127.0.0.1", "127.0.0.1.", false},
		{"127.0.0.1", "[::ffff:127.0.0.1]", true},
		{"127.0.0.1", "::ffff:7f00:1", true},
		{"127.0.0.2", "127.0.0.1", false},
		{"::1", "[::1]:8080", true},
		{"[::1]", "::1", true},
		{"::1", "[0::1]", true},
		{"::1", "[::1%25lo]", false},
		{"*.0.1", "127.0.0.1", false},
		{"*.1", "127.0.0.1", false},
		{"*.127.0.0.1", "a.127.0.0.1", false},
		{"1.2.3.4", "a.1.2.3.4", false},
		{"localhost", "LOCALHOST", true},
		{"localhost", "localhost.", true},
		// Ports and URLs are not patterns.
		{"ok.com:443", "ok.com", false},
		{"https://ok.com", "ok.com", false},
		{"ok.com/", "ok.com", false},
	} {
		if got := MatchHost(tc.pattern, tc.host); got != tc.want {
			t.Errorf("MatchHost(%q, %q) = %v, want %v", tc.pattern, tc.host, got, tc.want)
		}
	}
}

func TestParseHostPatternRefusals(t *testing.T) {
	for _, s := range []string{"*", "", "*.", "**.ok.com", "api.*.com", "ok.*", "*ok.com", "ok.com:443", "https://ok.com",
		"ok.com/x", "*.127.0.0.1", "*.[::1]", "127.1", "0x7f.1", "[fe80::1%en0]", "a..b", "ok com", "_x.ok.com"} {
		if p, err := ParseHostPattern(s); err == nil {
			t.Errorf("ParseHostPattern(%q) = %q, want an error", s, p)
		}
	}
	var zero HostPattern
	if zero.match(host{name: "ok.com"}) {
		t.Error("the zero pattern matches")
	}
}

func TestLoopback(t *testing.T) {
	for raw, want := range map[string]bool{
		"127.0.0.1": true, "127.255.0.9": true, "[::1]": true, "[::ffff:127.0.0.1]": true, "localhost": true, "LocalHost": true,
		"localhost.": false, "localhoſt": false, "foo.localhost": false, "128.0.0.1": false, "10.0.0.1": false,
		"[::2]": false, "0.0.0.0": false, "[::]": false, "localhost.evil.net": false,
	} {
		h, err := hostOfString(raw)
		if err != nil {
			if want {
				t.Errorf("%q: %v", raw, err)
			}
			continue
		}
		if got := h.loopback(); got != want {
			t.Errorf("loopback(%q) = %v, want %v", raw, got, want)
		}
	}
}

// maxFuzzLen keeps fuzz inputs to host-sized strings: long ones find
// nothing new (lengths are bounded before any parsing) and make the
// fuzzer's minimizer crawl.
const maxFuzzLen = 300

func matchSeeds(f *testing.F) {
	for _, s := range [][2]string{
		{"ok.com", "OK.COM."}, {"*.ok.com", "a.b.ok.com"}, {"*.ok.com", "ok.com.evil.net"}, {"bücher.example", "xn--bcher-kva.example"},
		{"127.0.0.1", "0x7f.1"}, {"::1", "[::1]:80"}, {"*", "x"}, {"*.com", "127.0.0.1"}, {"localhost", "localhoſt"},
		{"*.xn--bcher-kva.example", "a.bücher.example"}, {"a.b", "a.b.."}, {"*.ok.com", "ⓐ.ok.com"},
	} {
		f.Add(s[0], s[1])
	}
}

// FuzzMatchHost: matching never panics, and a match always means the
// normalised host is the pattern's name, or for "*." ends with "." and the
// name (a label boundary) and is longer than it.
func FuzzMatchHost(f *testing.F) {
	matchSeeds(f)
	f.Fuzz(func(t *testing.T, pattern, hostname string) {
		if len(pattern) > maxFuzzLen || len(hostname) > maxFuzzLen {
			return
		}
		if !MatchHost(pattern, hostname) {
			return
		}
		p, err := ParseHostPattern(pattern)
		if err != nil {
			t.Fatalf("matched with an invalid pattern %q: %v", pattern, err)
		}
		h, err := hostOfString(hostname)
		if err != nil {
			t.Fatalf("matched an invalid host %q: %v", hostname, err)
		}
		if !p.wildcard {
			if h.name != p.name {
				t.Fatalf("%q matched %q: normalised %q != %q", pattern, hostname, h.name, p.name)
			}
			return
		}
		if h.ip.IsValid() || !strings.HasSuffix(h.name, "."+p.name) || len(h.name) <= len(p.name)+1 {
			t.Fatalf("%q matched %q (normalised %q) off a label boundary", pattern, hostname, h.name)
		}
	})
}

// FuzzNormalizeHost: normalising never panics, and its output is a fixed
// point in a small alphabet: lower-case letters, digits, '-', '.' and, for
// IPv6, hex and ':'.
func FuzzNormalizeHost(f *testing.F) {
	matchSeeds(f)
	f.Fuzz(func(t *testing.T, a, b string) {
		if len(a) > maxFuzzLen || len(b) > maxFuzzLen {
			return
		}
		for _, s := range []string{a, b, "http://" + a + "/", "https://" + b} {
			h, err := hostOfString(s)
			if u, uerr := url.Parse(s); uerr == nil && u.Host != "" {
				h, err = hostOfURL(u)
			}
			if err != nil {
				continue
			}
			for _, c := range h.name {
				if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == ':') {
					t.Fatalf("normalised %q has %q", s, c)
				}
			}
			again, err := hostOfString(h.name)
			if err != nil || again.name != h.name {
				t.Fatalf("normalise(%q) = %q, but normalising that gives %q, %v", s, h.name, again.name, err)
			}
		}
	})
}

func TestMCPHost(t *testing.T) {
	u, _ := url.Parse("mcp://paid/weather")
	if h, err := NormalizeHost(u); err != nil || h != "mcp:paid" {
		t.Errorf("NormalizeHost(%s) = %q, %v", u, h, err)
	}
	for _, p := range []string{"mcp:paid", "MCP:paid"} {
		if !MatchHost(p, "mcp:paid") {
			t.Errorf("%s does not match mcp:paid", p)
		}
	}
	for _, p := range []string{"*.paid", "paid", "mcp:other"} {
		if MatchHost(p, "mcp:paid") {
			t.Errorf("%s matches mcp:paid", p)
		}
	}
	for _, bad := range []string{"mcp:", "mcp:Paid", "mcp:a.b", "mcp:a_b", "mcp:1a"} {
		if _, err := ParseHostPattern(bad); err == nil {
			t.Errorf("ParseHostPattern(%q) accepted", bad)
		}
	}
	if h, err := MCPHost("paid"); err != nil || h != "mcp:paid" {
		t.Errorf("MCPHost: %q %v", h, err)
	}
	// The https rule does not apply; the host lists do.
	p := Default()
	p.Hosts.Deny = []HostPattern{MustHostPattern("mcp:paid")}
	if v := p.Check(Request{URL: "mcp://paid/weather"}); v.Allowed || !strings.Contains(strings.Join(v.Reasons, ";"), "mcp:paid") {
		t.Errorf("deny mcp:paid: %+v", v)
	}
}
