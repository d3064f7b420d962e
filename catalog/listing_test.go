package catalog

import (
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/x402-mcp/x402-mcp/x402"
)

const (
	payTo = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
	// Lower-case spellings of Base Sepolia and Base USDC, as some listings
	// write them; Offer.Asset must come out in EIP-55 form.
	usdcBaseSepolia = "0x036cbd53842c5426634e7929541ec2318f3dcf7e"
	usdcBase        = "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913"
)

// Items of one crafted listing: v1 and v2 shapes mixed, as a facilitator
// that has seen both kinds of server lists them.
var (
	itemV1Joke = `{"resource":"https://v1.example/joke","type":"http","x402Version":1,"accepts":[` +
		`{"scheme":"exact","network":"base-sepolia","maxAmountRequired":"20000","resource":"https://v1.example/joke",` +
		`"description":"A programming joke","mimeType":"application/json","payTo":"` + strings.ToLower(payTo) + `",` +
		`"maxTimeoutSeconds":60,"asset":"` + usdcBaseSepolia + `",` +
		`"outputSchema":{"input":{"type":"http","method":"GET"},"output":{"type":"json","example":{"setup":"…","punchline":"…"}}},` +
		`"extra":{"name":"USDC","version":"2"}}],"lastUpdated":1735689600,"metadata":{}}`
	// v1 shape with a CAIP-2 network and lastUpdated in milliseconds.
	itemV1FX = `{"resource":"https://v1.example/fx","x402Version":1,"accepts":[` +
		`{"scheme":"exact","network":"eip155:8453","maxAmountRequired":"5000","resource":"https://v1.example/fx",` +
		`"description":"Foreign exchange rate","payTo":"` + payTo + `","maxTimeoutSeconds":60,"asset":"` + usdcBase + `"}],` +
		`"lastUpdated":1735689600000}`
	// v2 shape, ISO lastUpdated, bazaar info in metadata, a second option
	// on a network x402.CAIP2 does not know.
	itemV2Weather = `{"resource":"https://v2.example/weather?city=Paris","type":"http","x402Version":2,"accepts":[` +
		`{"scheme":"exact","network":"eip155:8453","amount":"10000","asset":"` + usdcBase + `","payTo":"` + payTo + `",` +
		`"maxTimeoutSeconds":300,"extra":{"name":"USD Coin","version":"2"}},` +
		`{"scheme":"exact","network":"solana","amount":"10000","asset":"EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v","payTo":"So1ana"}],` +
		`"lastUpdated":"2025-01-02T03:04:05Z","metadata":{"input":{"type":"http","method":"GET","queryParams":{"city":"Paris"}},` +
		`"output":{"type":"json","example":{"temperatureC":18}},"description":"Current weather for a city","tags":["weather","forecast"]}}`
	// v2 with a resource object and the bazaar info under extensions; an
	// unreadable lastUpdated is unknown, not an error.
	itemV2Search = `{"resource":{"url":"https://v2.example/search","description":"Search the web","tags":["search"]},` +
		`"x402Version":2,"accepts":[{"scheme":"exact","network":"eip155:8453","amount":"30000","asset":"` + usdcBase + `","payTo":"` + payTo + `"}],` +
		`"extensions":{"bazaar":{"info":{"input":{"type":"http","method":"POST","bodyType":"json","body":{"q":"x402"}}}}},` +
		`"lastUpdated":"yesterday"}`
	// A long description (cut, not skipped), no offers, and a date in 2100
	// (disbelieved).
	itemLong = `{"resource":"https://long.example/","accepts":[],"description":"` + strings.Repeat("long words ", 200) + `",` +
		`"lastUpdated":4102444800}`
	// Another kind of resource: ignored, not counted.
	itemMCP = `{"resource":"mcp://tool/x","type":"mcp","accepts":[]}`
)

// Malformed or oversized items: each is skipped and counted.
var badItems = map[string]string{
	"not an object":             `"garbage"`,
	"a number":                  `42`,
	"missing resource":          `{"type":"http","accepts":[]}`,
	"ftp URL":                   `{"resource":"ftp://files.example/x","accepts":[]}`,
	"javascript URL":            `{"resource":"javascript:alert(1)","accepts":[]}`,
	"oversized description":     `{"resource":"https://big.example/","description":"` + strings.Repeat("x", 100<<10) + `"}`,
	"too deep":                  `{"resource":"https://deep.example/","metadata":` + strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40) + `}`,
	"non-integer amount":        `{"resource":"https://frac.example/","accepts":[{"scheme":"exact","network":"base","amount":"1.5"}]}`,
	"negative amount":           `{"resource":"https://neg.example/","accepts":[{"scheme":"exact","network":"base","amount":"-5"}]}`,
	"unparseable accepts":       `{"resource":"https://acc.example/","accepts":"exact on base"}`,
	"amounts differ":            `{"resource":"https://two.example/","accepts":[{"scheme":"exact","network":"base","amount":"1","maxAmountRequired":"2"}]}`,
	"option without network":    `{"resource":"https://nonet.example/","accepts":[{"scheme":"exact","amount":"1"}]}`,
	"method that is not a verb": `{"resource":"https://verb.example/","metadata":{"input":{"type":"http","method":"GET /admin"}}}`,
}

func craftedListing() http.HandlerFunc {
	items := []string{itemV1Joke, itemV1FX, itemV2Weather, itemMCP, itemV2Search, itemLong}
	for _, b := range badItems {
		items = append(items, b)
	}
	return listing(items...)
}

func TestListingShapes(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /discovery/resources", craftedListing())
	fac := newFakeFacilitator(t, mux)
	clk := newClock()
	c := mustNew(t, Config{Facilitators: []string{fac.URL + "/"}, Now: clk.Now})

	res := mustSearch(t, c, Query{})
	if res.Skipped != len(badItems) {
		t.Errorf("Skipped = %d, want %d", res.Skipped, len(badItems))
	}
	if len(res.Problems) != 0 {
		t.Errorf("Problems = %q", res.Problems)
	}
	// No text: ranked by price standing within each asset (fx is cheapest
	// on Base, joke alone on Base Sepolia), then date, then URL; the entry
	// without offers last.
	want := []string{"https://v1.example/fx", "https://v1.example/joke", "https://v2.example/weather?city=Paris",
		"https://v2.example/search", "https://long.example/"}
	if got := urls(res.Entries); !slices.Equal(got, want) {
		t.Fatalf("entries = %q\nwant %q", got, want)
	}
	byURL := map[string]Entry{}
	for _, e := range res.Entries {
		byURL[e.URL] = e
		if len(e.Sources) != 1 || e.Sources[0] != "facilitator "+fac.URL {
			t.Errorf("%s: Sources = %q", e.URL, e.Sources)
		}
	}

	joke := byURL["https://v1.example/joke"]
	if joke.Method != "GET" || joke.Description != "A programming joke" || joke.X402Version != 1 ||
		!joke.LastUpdated.Equal(time.Unix(1735689600, 0)) || string(joke.Input) != `{"type":"http","method":"GET"}` ||
		!strings.Contains(string(joke.Output), `"punchline"`) {
		t.Errorf("joke = %+v", joke)
	}
	if o := joke.Offers[0]; o.Network != "eip155:84532" || o.Amount.Int64() != 20000 || o.Scheme != "exact" ||
		o.Asset != "0x036CbD53842c5426634e7929541eC2318f3dCF7e" || o.PayTo != payTo || !strings.Contains(string(o.Raw), `"maxAmountRequired":"20000"`) {
		t.Errorf("joke offer = %+v", o)
	}

	fx := byURL["https://v1.example/fx"]
	if !fx.LastUpdated.Equal(time.Unix(1735689600, 0)) || fx.Offers[0].Network != "eip155:8453" || fx.Offers[0].Amount.Int64() != 5000 ||
		fx.Description != "Foreign exchange rate" || fx.Input != nil {
		t.Errorf("fx = %+v", fx)
	}

	w := byURL["https://v2.example/weather?city=Paris"]
	if w.X402Version != 2 || w.Description != "Current weather for a city" || !slices.Equal(w.Tags, []string{"weather", "forecast"}) ||
		!w.LastUpdated.Equal(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)) || len(w.Offers) != 2 ||
		string(w.Input) != `{"type":"http","method":"GET","queryParams":{"city":"Paris"}}` {
		t.Errorf("weather = %+v", w)
	}
	if o := w.Offers[1]; o.Network != "" || o.Asset != "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v" || o.Amount.Int64() != 10000 {
		t.Errorf("solana offer = %+v", o)
	}

	s := byURL["https://v2.example/search"]
	if s.Method != "POST" || s.Description != "Search the web" || !slices.Equal(s.Tags, []string{"search"}) ||
		!s.LastUpdated.IsZero() || !strings.Contains(string(s.Input), `"bodyType":"json"`) {
		t.Errorf("search = %+v", s)
	}

	long := byURL["https://long.example/"]
	if n := len([]rune(long.Description)); n != maxDescriptionRunes || !strings.HasSuffix(long.Description, "…") {
		t.Errorf("long description: %d runes, ends %q", n, long.Description[len(long.Description)-8:])
	}
	if !long.LastUpdated.IsZero() || len(long.Offers) != 0 || long.X402Version != 0 {
		t.Errorf("long = %+v", long)
	}
}

func TestListingFilters(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /discovery/resources", craftedListing())
	fac := newFakeFacilitator(t, mux)
	c := mustNew(t, Config{Facilitators: []string{fac.URL}})

	tests := []struct {
		name string
		q    Query
		want []string
	}{
		{"word in description", Query{Text: "WEATHER"}, []string{"https://v2.example/weather?city=Paris"}},
		{"word in tag", Query{Text: "forecast"}, []string{"https://v2.example/weather?city=Paris"}},
		{"method", Query{Text: "post"}, []string{"https://v2.example/search"}},
		{"URL only", Query{Text: "v1"}, []string{"https://v1.example/fx", "https://v1.example/joke"}},
		// "joke" is a whole word of one description and only in the URL of
		// nothing else; "exchange" matches fx's description. Both words
		// score the same, so price decides.
		{"two words", Query{Text: "joke exchange"}, []string{"https://v1.example/fx", "https://v1.example/joke"}},
		{"part of a tag", Query{Text: "cast"}, []string{"https://v2.example/weather?city=Paris"}},
		{"v1 network name", Query{Network: "base-sepolia"}, []string{"https://v1.example/joke"}},
		{"CAIP-2 network", Query{Network: "eip155:8453"}, []string{"https://v1.example/fx",
			"https://v2.example/weather?city=Paris", "https://v2.example/search"}},
		{"max price", Query{MaxPrice: func(o Offer) bool { return o.Amount.Cmp(big.NewInt(10000)) <= 0 }},
			[]string{"https://v1.example/fx", "https://v2.example/weather?city=Paris"}},
		{"limit", Query{Limit: 2}, []string{"https://v1.example/fx", "https://v1.example/joke"}},
		{"nothing", Query{Text: "zzz"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mustSearch(t, c, tt.q)
			if got := urls(res.Entries); !slices.Equal(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}

	// MaxPrice sees copies: changing one changes nothing returned.
	res := mustSearch(t, c, Query{MaxPrice: func(o Offer) bool { o.Amount.SetInt64(1); return true }})
	if res.Entries[0].Offers[0].Amount.Int64() != 5000 {
		t.Errorf("MaxPrice changed an offer: %v", res.Entries[0].Offers[0].Amount)
	}
	if res.Total != 4 {
		t.Errorf("Total = %d, want 4 (the entry without offers is dropped by MaxPrice)", res.Total)
	}
}

func TestQueryErrors(t *testing.T) {
	c := mustNew(t, Config{})
	for _, q := range []Query{
		{Network: "solana"},
		{Network: "eip155:01"},
		{Text: strings.Repeat("a ", 201)},
		{Text: "!!!"},
		{Limit: -1},
	} {
		_, err := c.Search(t.Context(), q)
		var qe *QueryError
		if !errors.As(err, &qe) {
			t.Errorf("%+v: error %v, want a *QueryError", q, err)
		}
	}
	_, err := c.Search(t.Context(), Query{Network: "solana"})
	if !errors.Is(err, x402.ErrUnsupportedNetwork) {
		t.Errorf("unsupported network error does not match x402.ErrUnsupportedNetwork: %v", err)
	}
	if res := mustSearch(t, c, Query{Limit: 1000}); res.Total != 0 {
		t.Errorf("empty catalog found %d", res.Total)
	}
}

func TestFailingSources(t *testing.T) {
	good := http.NewServeMux()
	good.HandleFunc("GET /discovery/resources", listing(itemV1FX, itemV2Weather))
	goodFac := newFakeFacilitator(t, good)

	broken := http.NewServeMux()
	broken.HandleFunc("GET /discovery/resources", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	brokenFac := newFakeFacilitator(t, broken)

	garbage := http.NewServeMux()
	garbage.HandleFunc("GET /discovery/resources", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("<html>not json</html>"))
	})
	garbageFac := newFakeFacilitator(t, garbage)

	// A facilitator whose first page is fine and whose second fails: its
	// one entry is kept, cheapest of all, but ranks after the entries of
	// sources that answered fully.
	partial := http.NewServeMux()
	partial.HandleFunc("GET /discovery/resources", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("offset") != "0" {
			http.Error(w, "boom", http.StatusBadGateway)
			return
		}
		_, _ = w.Write([]byte(`{"items":[{"resource":"https://cheap.example/","accepts":[{"scheme":"exact","network":"base",` +
			`"amount":"1","asset":"` + usdcBase + `"}]}],"pagination":{"total":9}}`))
	})
	partialFac := newFakeFacilitator(t, partial)

	// Nothing listens on a closed server's port.
	gone := httptest.NewServer(http.NotFoundHandler())
	closedURL := gone.URL
	gone.Close()

	c := mustNew(t, Config{Facilitators: []string{brokenFac.URL, garbageFac.URL, partialFac.URL, closedURL, goodFac.URL}})
	res := mustSearch(t, c, Query{})
	want := []string{"https://v1.example/fx", "https://v2.example/weather?city=Paris", "https://cheap.example/"}
	if got := urls(res.Entries); !slices.Equal(got, want) {
		t.Errorf("entries = %q\nwant %q", got, want)
	}
	if len(res.Problems) != 4 {
		t.Fatalf("Problems = %q", res.Problems)
	}
	for i, wantProblem := range []string{
		"facilitator " + brokenFac.URL + ": HTTP 500",
		"facilitator " + garbageFac.URL + ": not a JSON listing: invalid JSON at byte 1",
		"facilitator " + partialFac.URL + ": HTTP 502 (page at offset 1; kept the resources before the problem)",
		"facilitator " + closedURL + ": ",
	} {
		if !strings.HasPrefix(res.Problems[i], wantProblem) {
			t.Errorf("problem %d = %q\nwant prefix %q", i, res.Problems[i], wantProblem)
		}
	}
}

func TestOversizedPage(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /discovery/resources", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"items":[` + itemV1FX + `,{"resource":"https://huge.example/","description":"`))
		chunk := []byte(strings.Repeat("x", 64<<10))
		for range 10 << 10 >> 6 { // 10 MiB of description
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		_, _ = w.Write([]byte(`"}]}`))
	})
	fac := newFakeFacilitator(t, mux)
	c := mustNew(t, Config{Facilitators: []string{fac.URL}})
	res := mustSearch(t, c, Query{})
	if got := urls(res.Entries); !slices.Equal(got, []string{"https://v1.example/fx"}) {
		t.Errorf("entries = %q", got)
	}
	if res.Skipped != 1 || len(res.Problems) != 1 || !strings.Contains(res.Problems[0], "exceeds 1048576 bytes") {
		t.Errorf("Skipped %d, Problems %q", res.Skipped, res.Problems)
	}
}

func TestDiscoverySearch(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /discovery/resources", craftedListing())
	var queries []string
	mux.HandleFunc("GET /discovery/search", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		queries = append(queries, q.Get("query")+"|"+q.Get("cursor"))
		if q.Get("cursor") == "" {
			// The facilitator matches by meaning: "Meteorological
			// observations" has none of the query's words.
			_, _ = w.Write([]byte(`{"x402Version":2,"resources":[` +
				`{"resource":"https://met.example/obs","accepts":[],"metadata":{"description":"Meteorological observations"}}],` +
				`"partialResults":false,"pagination":{"limit":1,"cursor":"page2"}}`))
			return
		}
		_, _ = w.Write([]byte(`{"resources":[` + itemV2Weather + `],"pagination":{"limit":1,"cursor":null}}`))
	})
	fac := newFakeFacilitator(t, mux)
	c := mustNew(t, Config{Facilitators: []string{fac.URL}})

	res := mustSearch(t, c, Query{Text: "weather  today"})
	want := []string{"https://v2.example/weather?city=Paris", "https://met.example/obs"}
	if got := urls(res.Entries); !slices.Equal(got, want) {
		t.Errorf("entries = %q\nwant %q", got, want)
	}
	if !slices.Equal(queries, []string{"weather today|", "weather today|page2"}) {
		t.Errorf("search requests = %q", queries)
	}
	if n := fac.count("/discovery/resources"); n != 0 {
		t.Errorf("the listing was read %d times although search answered", n)
	}
	// Without text the listing is read.
	if res := mustSearch(t, c, Query{}); res.Total != 5 || fac.count("/discovery/resources") != 1 {
		t.Errorf("listing: %d entries, %d requests", res.Total, fac.count("/discovery/resources"))
	}
}

func TestDiscoverySearchFallback(t *testing.T) {
	t.Run("404", func(t *testing.T) {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /discovery/resources", craftedListing())
		fac := newFakeFacilitator(t, mux) // /discovery/search is not routed: 404
		c := mustNew(t, Config{Facilitators: []string{fac.URL}})
		res := mustSearch(t, c, Query{Text: "weather"})
		if got := urls(res.Entries); !slices.Equal(got, []string{"https://v2.example/weather?city=Paris"}) || len(res.Problems) != 0 {
			t.Errorf("entries %q, problems %q", got, res.Problems)
		}
		// The missing search is remembered: another query asks nothing.
		mustSearch(t, c, Query{Text: "joke"})
		if s, l := fac.count("/discovery/search"), fac.count("/discovery/resources"); s != 1 || l != 1 {
			t.Errorf("search asked %d times, listing %d; want 1 and 1", s, l)
		}
	})
	t.Run("500", func(t *testing.T) {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /discovery/resources", craftedListing())
		mux.HandleFunc("GET /discovery/search", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "search is down", http.StatusServiceUnavailable)
		})
		fac := newFakeFacilitator(t, mux)
		c := mustNew(t, Config{Facilitators: []string{fac.URL}})
		res := mustSearch(t, c, Query{Text: "weather"})
		if got := urls(res.Entries); !slices.Equal(got, []string{"https://v2.example/weather?city=Paris"}) {
			t.Errorf("entries %q", got)
		}
		want := "facilitator " + fac.URL + ": search: HTTP 503; searched its full listing instead"
		if len(res.Problems) != 1 || res.Problems[0] != want {
			t.Errorf("problems %q\nwant %q", res.Problems, want)
		}
	})
}

func TestExtraMerged(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /discovery/resources", craftedListing())
	fac := newFakeFacilitator(t, mux)
	c := mustNew(t, Config{Facilitators: []string{fac.URL}})

	probed := Entry{
		// The listing has it with ?city=Paris: the query string does not
		// make another endpoint, nor do the host's case or a default port.
		URL: "https://V2.example:443/weather", Method: "get",
		Description: "Weather",
		Offers:      []Offer{{Scheme: "exact", Network: "base", Amount: big.NewInt(9000), Asset: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"}},
		Sources:     []string{"probe"},
	}
	res := mustSearch(t, c, Query{Text: "weather", Extra: []Entry{
		probed,
		{URL: "ftp://bad.example/"},
		{URL: "https://new.example/weather", Description: "Weather\x1b[31m in red"},
	}})
	if res.Skipped != len(badItems)+1 {
		t.Errorf("Skipped = %d, want the listing's %d and the bad extra", res.Skipped, len(badItems))
	}
	if len(res.Entries) != 2 {
		t.Fatalf("entries = %q", urls(res.Entries))
	}
	w := res.Entries[0]
	if w.URL != "https://v2.example/weather?city=Paris" || !slices.Equal(w.Sources, []string{"facilitator " + fac.URL, "probe"}) ||
		len(w.Offers) != 3 || w.Offers[2].Network != "eip155:8453" || w.Description != "Current weather for a city" {
		t.Errorf("merged = %+v", w)
	}
	if n := res.Entries[1]; n.Sources[0] != "caller" || n.Description != "Weather [31m in red" || n.Method != "GET" {
		t.Errorf("extra = %+v", n)
	}
	if probed.Method != "get" || probed.Offers[0].Network != "base" {
		t.Errorf("Search changed the caller's entry: %+v", probed)
	}
}

func TestListingBounds(t *testing.T) {
	// A facilitator that ignores limit and sends 1200 items a page.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /discovery/resources", func(w http.ResponseWriter, r *http.Request) {
		off := r.URL.Query().Get("offset")
		var b strings.Builder
		b.WriteString(`{"items":[`)
		for i := range 1200 {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"resource":"https://bulk.example/` + off + `/` + itoa(i) + `","accepts":[]}`)
		}
		b.WriteString(`],"pagination":{"total":1000000}}`)
		_, _ = w.Write([]byte(b.String()))
	})
	fac := newFakeFacilitator(t, mux)
	c := mustNew(t, Config{Facilitators: []string{fac.URL}, PageSize: 1000, MaxItems: 2000})
	res := mustSearch(t, c, Query{Limit: 1000})
	if res.Total != 2000 || len(res.Entries) != maxLimit {
		t.Errorf("Total %d, %d entries", res.Total, len(res.Entries))
	}
	if res.Skipped != 2*(1200-maxItemsPerPage) {
		t.Errorf("Skipped = %d", res.Skipped)
	}
	want := "facilitator " + fac.URL + ": kept the first 2000 resources, the most taken from one listing; the listing has 1000000; the rest were not searched"
	if fac.count("/discovery/resources") != 2 || len(res.Problems) != 0 || !slices.Equal(res.Incomplete, []string{want}) {
		t.Errorf("%d pages read, problems %q, incomplete %q", fac.count("/discovery/resources"), res.Problems, res.Incomplete)
	}
}

// TestListingBudget: a listing too slow to read within the budget is cut
// there; the result keeps what was read and says the rest is missing, and
// the cut answer is kept only briefly, since the facilitator may be faster
// next time.
func TestListingBudget(t *testing.T) {
	const total = 2500
	mux := http.NewServeMux()
	mux.HandleFunc("GET /discovery/resources", func(w http.ResponseWriter, r *http.Request) {
		off, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		time.Sleep(60 * time.Millisecond)
		var b strings.Builder
		b.WriteString(`{"items":[`)
		for i := off; i < min(total, off+100); i++ {
			if i > off {
				b.WriteByte(',')
			}
			b.WriteString(`{"resource":"https://slow.example/` + itoa(i) + `","accepts":[]}`)
		}
		b.WriteString(`],"pagination":{"total":` + itoa(total) + `}}`)
		_, _ = w.Write([]byte(b.String()))
	})
	fac := newFakeFacilitator(t, mux)
	clk := newClock()
	c := mustNew(t, Config{Facilitators: []string{fac.URL}, Budget: 300 * time.Millisecond, Now: clk.Now})

	start := time.Now()
	res := mustSearch(t, c, Query{})
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the search took %v with a 300ms budget", took)
	}
	if res.Total == 0 || res.Total >= total || res.Total%100 != 0 || len(res.Problems) != 0 {
		t.Fatalf("%d entries, problems %q", res.Total, res.Problems)
	}
	want := "facilitator " + fac.URL + ": read " + itoa(res.Total) + " resources before the 300ms budget ran out; the listing has 2500; the rest were not searched"
	if !slices.Equal(res.Incomplete, []string{want}) {
		t.Errorf("incomplete %q\nwant %q", res.Incomplete, want)
	}
	pages := fac.count("/discovery/resources")
	clk.Advance(10 * time.Second)
	mustSearch(t, c, Query{})
	if fac.count("/discovery/resources") != pages {
		t.Errorf("the cut listing was read again within 30s")
	}
	clk.Advance(21 * time.Second)
	mustSearch(t, c, Query{})
	if fac.count("/discovery/resources") == pages {
		t.Errorf("the cut listing was not read again after 30s")
	}
}

// TestSearchBudget: the budget is shared by a failing search and the
// listing read instead, and a search answering partialResults is reported
// incomplete.
func TestSearchBudget(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /discovery/resources", craftedListing())
	mux.HandleFunc("GET /discovery/search", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("query") == "slow" {
			time.Sleep(time.Second)
		}
		_, _ = w.Write([]byte(`{"resources":[` + itemV2Weather + `],"partialResults":true,"pagination":{"limit":1,"cursor":null}}`))
	})
	fac := newFakeFacilitator(t, mux)
	c := mustNew(t, Config{Facilitators: []string{fac.URL}, Budget: 200 * time.Millisecond})

	res := mustSearch(t, c, Query{Text: "weather"})
	if len(res.Entries) != 1 || !slices.Equal(res.Incomplete, []string{"facilitator " + fac.URL + ": its search says more resources matched than it returned"}) {
		t.Errorf("partial: %d entries, incomplete %q", len(res.Entries), res.Incomplete)
	}
	start := time.Now()
	res = mustSearch(t, c, Query{Text: "slow"})
	if took := time.Since(start); took > 900*time.Millisecond {
		t.Errorf("took %v with a 200ms budget", took)
	}
	want := "facilitator " + fac.URL + ": search: no answer within the 200ms budget; searched its full listing instead"
	if len(res.Problems) != 2 || res.Problems[0] != want || !strings.HasSuffix(res.Problems[1], "no answer within the 200ms budget") {
		t.Errorf("problems %q", res.Problems)
	}
}

// TestQueryByEndpoint: URL and Method select one endpoint's entries the
// way sources merge them, whatever the query string, host case or default
// port; a text query is not needed.
func TestQueryByEndpoint(t *testing.T) {
	c := mustNew(t, Config{})
	extra := []Entry{
		{URL: "https://api.example/items?page=1", Method: "POST", Description: "create"},
		{URL: "https://api.example/items", Method: "GET", Description: "list"},
		{URL: "https://api.example/items/1", Method: "POST", Description: "other path"},
		{URL: "https://other.example/items", Method: "POST", Description: "other host"},
	}
	for _, tc := range []struct{ url, method, want string }{
		{"https://API.example:443/items?name=x", "post", "create"},
		{"https://api.example/items", "GET", "list"},
		{"https://api.example/items", "", "create list"},
		{"https://api.example/items", "DELETE", ""},
	} {
		res := mustSearch(t, c, Query{URL: tc.url, Method: tc.method, Extra: extra})
		var got []string
		for _, e := range res.Entries {
			got = append(got, e.Description)
		}
		slices.Sort(got)
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.method, tc.url, got, tc.want)
		}
	}
}
