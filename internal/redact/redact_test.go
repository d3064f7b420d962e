package redact

import (
	"strings"
	"testing"
)

const key = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"

func TestLooksSecret(t *testing.T) {
	for _, s := range []string{
		key, "0x" + key, "0X" + strings.ToUpper(key), " " + key + "\n", "/home/me/.config/x402-mcp/0x" + key,
		`C:\keys\` + key, "~/" + key, "key=" + key + key,
		"abandon ability able about above absent absorb abstract absurd abuse access accident",
		"legal winner thank year wave sausage worth useful legal winner thank yellow legal winner thank year wave sausage worth useful legal winner thank yellow",
		"/tmp/abandon ability able about above absent absorb abstract absurd abuse access accident",
	} {
		if !LooksSecret(s) {
			t.Errorf("LooksSecret(%.20q…) = false", s)
		}
	}
	for _, s := range []string{
		"", "payer.key", "/home/me/.config/x402-mcp/payer.key", "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
		key[:63], "api.example.com", "eip155:8453/erc20:0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
		"one two three four five six seven eight nine ten eleven", // 11 words
		"My Documents/x402 keys/payer.key",
	} {
		if LooksSecret(s) {
			t.Errorf("LooksSecret(%q) = true", s)
		}
	}
}

func TestScrub(t *testing.T) {
	for in, want := range map[string]string{
		"key_file 0x" + key + " is missing":                        "key_file (not shown) is missing",
		`parsing "` + key + `": out of range`:                      `parsing "(not shown)": out of range`,
		"two " + key + " and " + key + "ab":                        "two (not shown) and (not shown)",
		"address 0x209693Bc6afc0C5328bA36FaF03C514EF312287C stays": "address 0x209693Bc6afc0C5328bA36FaF03C514EF312287C stays",
	} {
		if got := Scrub(in); got != want {
			t.Errorf("Scrub(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUnquote(t *testing.T) {
	for in, want := range map[string]string{
		`strconv.ParseInt: parsing "12345": value out of range`: `strconv.ParseInt: parsing (value not shown): value out of range`,
		`no quotes here`:   `no quotes here`,
		`a "b" c "d`:       `a (value not shown) c (value not shown)`,
		`"x" and "y" done`: `(value not shown) and (value not shown) done`,
	} {
		if got := Unquote(in); got != want {
			t.Errorf("Unquote(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestQuote(t *testing.T) {
	if got := Quote("api.example.com/x"); got != `"api.example.com/x"` {
		t.Errorf("Quote = %s", got)
	}
	if got := Quote("0x" + key); strings.Contains(got, key[:16]) || !strings.Contains(got, "not shown") {
		t.Errorf("Quote of a key = %s", got)
	}
	if got := Quote(strings.Repeat("é", 40)); !strings.HasSuffix(got, `…"`) || strings.ContainsRune(got, '\uFFFD') || strings.Contains(got, `\x`) {
		t.Errorf("Quote clipped inside a character: %s", got)
	}
	if got := Path("/etc/x402-mcp/payer.key"); got != "/etc/x402-mcp/payer.key" {
		t.Errorf("Path = %s", got)
	}
	if got := Path("/etc/" + key); strings.Contains(got, key[:16]) {
		t.Errorf("Path of a key = %s", got)
	}
}
