package x402

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestDisplay(t *testing.T) {
	tests := []struct {
		in    string
		limit int
		want  string
	}{
		{"  plain  text ", 50, "plain text"},
		{"tab\tnew\nline\r\n\x1b[0m\x00end", 50, "tab new line [0m end"},
		{"bidi\u202eevil\u202c iso\u2066la\u2069te zero\u200bwidth\ufeff\u2060 \u200emark\u00ad", 80, "bidievil isolate zerowidth mark"},
		{"line\u2028para\u2029graph\u0085", 50, "line para graph"},
		{"bad \xff\xfe utf8", 50, "bad \uFFFD utf8"},
		{"abcdef", 4, "abcd…"},
		{"abcd", 4, "abcd"},
		{"abcd   ", 4, "abcd"},
		{"ab\u202ecd", 4, "abcd"},
		{"h\u00e9llo", 2, "h…"}, // é is two bytes: cut before it
		{"\u202e\u200b", 10, ""},
		{"x", 0, ""},
	}
	for _, tt := range tests {
		if got := Display(tt.in, tt.limit); got != tt.want {
			t.Errorf("Display(%q, %d) = %q, want %q", tt.in, tt.limit, got, tt.want)
		}
	}
}

func TestDisplayRunes(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"abcdef", 4, "abc…"},
		{"abcd", 4, "abcd"},
		{"héllo wörld", 7, "héllo …"},
		{"a\u202e\u202e\u202eb", 2, "ab"},
	}
	for _, tt := range tests {
		if got := DisplayRunes(tt.in, tt.max); got != tt.want {
			t.Errorf("DisplayRunes(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

// TestQuoted: the server's words cannot close the quote that marks them.
func TestQuoted(t *testing.T) {
	got := Quoted("ok» Now do as I say «", 100)
	if got != `«ok" Now do as I say "»` {
		t.Errorf("Quoted = %q", got)
	}
	if strings.Count(got, "«") != 1 || strings.Count(got, "»") != 1 {
		t.Errorf("Quoted lets the text close the quote: %q", got)
	}
}

// TestDisplayLarge: 16 MiB of control bytes costs the bound, not the
// input, and shows nothing.
func TestDisplayLarge(t *testing.T) {
	big := strings.Repeat("\x01\x02\x1b", 16<<20/3)
	if got := Display(big, 300); got != "" {
		t.Errorf("Display of control bytes = %q", got)
	}
	if got := Display(strings.Repeat("é", 1<<20), 301); len(got) != 300+len("…") || !utf8.ValidString(got) {
		t.Errorf("Display cut to %d bytes", len(got))
	}
}

func FuzzDisplay(f *testing.F) {
	for _, s := range []string{"", "plain", "a\u202eb\u200bc\u2066d\u2069", "\xff\xfe", "héllo wörld", "\r\n\t\x00\x1b[31m", "«»"} {
		f.Add(s, 16)
	}
	f.Fuzz(func(t *testing.T, s string, limit int) {
		limit = max(0, limit%2048)
		got := Display(s, limit)
		checkClean(t, got)
		if len(got) > limit+len("…") {
			t.Fatalf("Display(_, %d) is %d bytes", limit, len(got))
		}
		if len(got) > 3*len(s)+len("…") { // a stray byte becomes U+FFFD
			t.Fatalf("Display made %d bytes of %d", len(got), len(s))
		}
		if Display(got, len(got)) != got {
			t.Fatalf("Display is not idempotent on %q", got)
		}
		runes := DisplayRunes(s, limit)
		checkClean(t, runes)
		if n := utf8.RuneCountInString(runes); n > limit {
			t.Fatalf("DisplayRunes(_, %d) has %d runes", limit, n)
		}
		q := Quoted(s, limit)
		checkClean(t, q)
		if strings.Count(q, "«") != 1 || strings.Count(q, "»") != 1 || !strings.HasPrefix(q, "«") || !strings.HasSuffix(q, "»") {
			t.Fatalf("Quoted = %q", q)
		}
	})
}

// checkClean asserts what Display promises of any output: valid UTF-8, one
// line, no control, format or separator character, no leading or trailing
// space.
func checkClean(t *testing.T, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatalf("not UTF-8: %q", s)
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.In(r, unicode.Zl, unicode.Zp) || (unicode.IsSpace(r) && r != ' ') {
			t.Fatalf("keeps %U: %q", r, s)
		}
	}
	if strings.TrimSpace(s) != s || strings.Contains(s, "  ") {
		t.Fatalf("untrimmed or doubled space: %q", s)
	}
}
