package config

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// FuzzRedactURL checks that a redacted URL never shows more than scheme
// and host, whatever the input: the user info, path and query of an RPC
// URL are where providers put API keys.
func FuzzRedactURL(f *testing.F) {
	for _, s := range []string{
		"https://mainnet.base.org", "wss://a.example.com:8546/ws/KEY", "https://u:KEY@a.example.com/p?k=KEY#KEY",
		"http://[::1]:8545/KEY", "https://a.example.com/%zzKEY", "KEY", "//KEY@host/KEY", "https://a.example.com?KEY",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got := RedactURL(raw)
		u, err := url.Parse(raw)
		if err != nil || u.Scheme == "" || u.Host == "" {
			if got != `""` && got != "(URL not shown)" {
				t.Fatalf("RedactURL(%q) = %q for a value that is not an absolute URL", raw, got)
			}
			return
		}
		rest := strings.TrimPrefix(got, strings.ToLower(truncate(u.Scheme, 16))+"://")
		rest = strings.TrimPrefix(rest, "…@")
		rest = strings.TrimPrefix(rest, truncate(u.Host, 253))
		if rest != "" && rest != "/…" {
			t.Fatalf("RedactURL(%q) = %q shows more than scheme and host", raw, got)
		}
		// checkURL's messages show the URL only through RedactURL.
		if _, p := checkURL(raw, rpcURL); p != nil && u.User != nil {
			if pw, ok := u.User.Password(); ok && len(pw) >= 4 && strings.Contains(p.msg+p.hint, pw) && !strings.Contains(got, pw) {
				t.Fatalf("checkURL(%q) shows the password: %s", raw, p.msg)
			}
		}
	})
}

// FuzzParse feeds arbitrary text to the config parser: it must not panic,
// and every error must be an *Error naming the file (the policy file is
// never reached with these inputs' relative names unless it exists).
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("[[networks]]  # x\nid = \"eip155:8453\"\nrpc_url = \"https://mainnet.base.org\"\n[[networks]]\nid = \"eip155:8453\"\n"))
	f.Add([]byte("[discovery]\nfacilitators = [\"https://x402.org/facilitator\"]\ncatalogs = [\"c.toml\"]\ncache_seconds = 300\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 || strings.Contains(string(data), "policy_file") {
			return
		}
		_, err := Parse("fuzz.toml", data)
		var ce *Error
		if err != nil && (!errors.As(err, &ce) || ce.Path != "fuzz.toml") {
			t.Fatalf("error %T does not name the file: %v", err, err)
		}
	})
}
