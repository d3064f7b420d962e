package catalog

import (
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

func TestTextScore(t *testing.T) {
	e := Entry{URL: "https://api.example/wx/v2", Method: "GET", Description: "Current weather for a city", Tags: []string{"forecast"}}
	tests := []struct {
		text string
		want int
	}{
		{"weather", scoreWord},
		{"Forecast", scoreWord},
		{"weath", scoreSubstring},
		{"cast", scoreSubstring},
		{"wx", scoreURL},           // a short word, whole in the URL
		{"exam", scoreURL},         // part of the URL
		{"ur", 0},                  // short: not as part of "current"
		{"get", scoreMethod},       // the method
		{"the weather", scoreWord}, // "the" is dropped
		{"the", scoreSubstring},    // unless it is all there is
		{"weather city", 2 * scoreWord},
		{"rain", 0},
	}
	for _, tt := range tests {
		q, err := checkQuery(Query{Text: tt.text})
		if err != nil {
			t.Fatal(err)
		}
		if got := textScore(e, q.words); got != tt.want {
			t.Errorf("%q: score %d, want %d (words %q)", tt.text, got, tt.want, q.words)
		}
	}
}

func TestRankOrder(t *testing.T) {
	day := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	offer := func(network, asset string, amount int64) Offer {
		return Offer{Scheme: "exact", Network: network, Asset: asset, Amount: big.NewInt(amount)}
	}
	const usdc, other = "0xUSDC", "0xOTHER"
	mk := func(url string, score int, sources []string, updated time.Time, offers ...Offer) *candidate {
		return &candidate{Entry: Entry{URL: url, Method: "GET", Sources: sources, LastUpdated: updated, Offers: offers}, score: score}
	}
	ok, bad := []string{"facilitator ok"}, []string{"facilitator bad"}
	cands := []*candidate{
		mk("https://z.example/no-offers", 1, ok, day),
		mk("https://y.example/expensive", 1, ok, day, offer("eip155:8453", usdc, 300)),
		mk("https://x.example/cheap", 1, ok, day, offer("eip155:8453", usdc, 100)),
		mk("https://w.example/mid", 1, ok, day, offer("eip155:8453", usdc, 200)),
		// Alone on its asset: nothing to compare with, so as good as the
		// cheapest; a smaller number in another token means nothing.
		mk("https://v.example/other-token", 1, ok, day, offer("eip155:8453", other, 1)),
		// Same price as cheap, updated later.
		mk("https://u.example/cheap-newer", 1, ok, day.Add(time.Hour), offer("eip155:8453", usdc, 100)),
		// Cheapest of all but only from a failing source.
		mk("https://t.example/failing", 1, bad, day, offer("eip155:8453", usdc, 1)),
		// A better text match beats every price.
		mk("https://s.example/best-match", 5, ok, time.Time{}, offer("eip155:8453", usdc, 1000)),
		// An unsupported network is not compared: ranked as unpriced.
		mk("https://r.example/solana", 1, ok, day, offer("", "EPjF", 1)),
	}
	got := urls(func() []Entry {
		var es []Entry
		for _, c := range rank(cands, map[string]bool{"facilitator bad": true}) {
			es = append(es, c.Entry)
		}
		return es
	}())
	want := []string{
		"https://s.example/best-match",
		// The failing entry is the cheapest in USDC, so cheap is not (1 of
		// 6 is cheaper); other-token is the cheapest in its token.
		"https://v.example/other-token",
		"https://u.example/cheap-newer",
		"https://x.example/cheap",
		"https://w.example/mid",
		"https://y.example/expensive",
		"https://r.example/solana",
		"https://z.example/no-offers",
		"https://t.example/failing",
	}
	if !slices.Equal(got, want) {
		t.Errorf("order:\n got %q\nwant %q", got, want)
	}
}

func TestCleanText(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"  plain  text ", 50, "plain text"},
		{"tab\tnew\nline\x1b[0m", 50, "tab new line [0m"},
		{"bidi\u202eevil\u202c zero\u200bwidth", 50, "bidievil zerowidth"},
		{"bad \xff utf8", 50, "bad \uFFFD utf8"},
		{"abcdef", 4, "abc…"},
		{"abcd", 4, "abcd"},
		{"héllo wörld", 7, "héllo …"},
	}
	for _, tt := range tests {
		if got := cleanText(tt.in, tt.max); got != tt.want {
			t.Errorf("cleanText(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

func TestDedupKey(t *testing.T) {
	same := []string{
		"https://api.example/weather",
		"HTTPS://API.Example:443/weather?city=Paris",
		"https://api.example/weather#top",
	}
	for _, u := range same {
		if dedupKey("GET", u) != dedupKey("GET", same[0]) {
			t.Errorf("%s and %s should be one endpoint", u, same[0])
		}
	}
	differ := []string{
		"http://api.example/weather",
		"https://api.example:8443/weather",
		"https://api.example/Weather",
		"https://api.example/weather/",
	}
	for _, u := range differ {
		if dedupKey("GET", u) == dedupKey("GET", same[0]) {
			t.Errorf("%s and %s should be different endpoints", u, same[0])
		}
	}
	if dedupKey("POST", same[0]) == dedupKey("GET", same[0]) {
		t.Error("methods should make different endpoints")
	}
	if dedupKey("GET", "http://[::1]:80/x") != dedupKey("GET", "http://[::1]/x") {
		t.Error("IPv6 literal with default port")
	}
}

func TestReadTime(t *testing.T) {
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	sec := time.Unix(1735689600, 0).UTC()
	tests := []struct {
		raw  string
		want time.Time
	}{
		{`1735689600`, sec},
		{`1735689600000`, sec},
		{`1735689600.9`, sec},
		{`"1735689600"`, sec},
		{`"2025-01-01T00:00:00Z"`, sec},
		{`"2025-01-01T01:00:00+01:00"`, sec},
		{`"2025-01-01T00:00:00"`, sec},
		{`"2025-01-01"`, sec},
		{`"2025-06-01T23:00:00Z"`, time.Date(2025, 6, 1, 23, 0, 0, 0, time.UTC)}, // within a day ahead
		{`"2025-06-03T00:00:00Z"`, time.Time{}},                                  // further ahead: disbelieved
		{`"yesterday"`, time.Time{}},
		{`-5`, time.Time{}},
		{`1e300`, time.Time{}},
		{`{"t":1}`, time.Time{}},
		{`null`, time.Time{}},
		{``, time.Time{}},
	}
	for _, tt := range tests {
		if got := readTime(gjson.Parse(tt.raw), now); !got.Equal(tt.want) {
			t.Errorf("readTime(%s) = %v, want %v", tt.raw, got, tt.want)
		}
	}
}
