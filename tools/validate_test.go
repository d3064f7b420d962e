package tools

import (
	"strings"
	"testing"
)

// TestArgumentErrorsInWords: what the agent reads about a malformed call
// names the argument and says what was expected, with no Go values.
func TestArgumentErrorsInWords(t *testing.T) {
	f := start(t)
	weather := f.net.APIURL + "/v2/weather?city=Oslo"
	for _, tc := range []struct {
		tool string
		args map[string]any
		want string
	}{
		{"x402_quote", map[string]any{"url": 5}, "url: got number, want string"},
		{"x402_quote", map[string]any{}, "url"},
		{"x402_quote", map[string]any{"url": weather, "bogus": 1}, "bogus"},
		{"x402_fetch", map[string]any{"url": weather, "max_price": true}, `max_price must be a decimal string such as "0.05"`},
		{"x402_fetch", map[string]any{"url": weather, "max_price": map[string]any{"usd": 1}}, `max_price must be a decimal string such as "0.05"`},
		{"x402_fetch", map[string]any{"url": weather, "max_price": "lots"}, `max_price must be a decimal string such as "0.05"`},
		{"x402_discover", map[string]any{"max_price": []any{1}}, `max_price must be a decimal string such as "0.05"`},
		{"x402_spending", map[string]any{"recent": "ten"}, "recent: got string, want integer"},
	} {
		r, out := f.call(t, tc.tool, tc.args)
		if !r.IsError || !strings.Contains(out, tc.want) || strings.Contains(out, "&{") || strings.Contains(out, "map[") {
			t.Errorf("%s %v: %v %q, want an error saying %q", tc.tool, tc.args, r.IsError, out, tc.want)
		}
	}
	// A price given as a JSON number is read from its text.
	r, out := f.call(t, "x402_fetch", map[string]any{"url": weather, "max_price": 0.005})
	if !r.IsError || !strings.Contains(out, "max_price of 0.005 USD") {
		t.Errorf("max_price 0.005 as a number: %s", out)
	}
	if n := f.payeeBalance(t); n.Sign() != 0 {
		t.Errorf("payee received %s from refused calls", n)
	}
}

// TestInputSchemasCompile: the input schemas are compiled at a tool's
// first call; a broken one must fail here, not in front of an agent.
func TestInputSchemasCompile(t *testing.T) {
	for _, st := range Tools(Deps{}) {
		if _, err := compileInput(st.Tool); err != nil {
			t.Errorf("%s: %v", st.Tool.Name, err)
		}
	}
}
