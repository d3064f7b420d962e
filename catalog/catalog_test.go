package catalog

import (
	"encoding/json"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/x402-mcp/x402-mcp/localnet"
)

// startNetwork runs a local x402 network: a chain, a facilitator with a
// discovery listing and the paid API whose priced routes it lists.
func startNetwork(t *testing.T, routes []localnet.Route) *localnet.Network {
	t.Helper()
	n, err := localnet.Start(t.Context(), localnet.NetworkConfig{Routes: routes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
	})
	return n
}

// priced are the priced DefaultRoutes, cheapest first.
func priced() []localnet.Route {
	var out []localnet.Route
	for _, rt := range localnet.DefaultRoutes() {
		if rt.Price != nil && rt.Price.Sign() > 0 {
			out = append(out, rt)
		}
	}
	slices.SortFunc(out, func(a, b localnet.Route) int { return a.Price.Cmp(b.Price) })
	return out
}

func TestLocalFacilitatorListing(t *testing.T) {
	n := startNetwork(t, nil)
	tr := &countingTransport{}
	// Two per page: the five priced routes take three pages.
	c := mustNew(t, Config{Facilitators: []string{n.FacilitatorURL}, PageSize: 2, Transport: tr})

	res := mustSearch(t, c, Query{})
	if len(res.Problems) != 0 || res.Skipped != 0 {
		t.Fatalf("problems %q, skipped %d", res.Problems, res.Skipped)
	}
	if tr.count() != 3 {
		t.Errorf("%d requests, want 3 pages of 2", tr.count())
	}
	routes := priced()
	if len(res.Entries) != len(routes) {
		t.Fatalf("%d entries, want %d: %q", len(res.Entries), len(routes), urls(res.Entries))
	}
	token := n.Chain.TokenAddress().Hex()
	for i, rt := range routes {
		e := res.Entries[i] // one asset, so cheapest first
		if e.URL != n.APIURL+rt.Path || e.Method != rt.Method || e.Description != rt.Description || e.X402Version != rt.Version {
			t.Errorf("entry %d = %s %s %q v%d; want %s %s %q v%d", i, e.Method, e.URL, e.Description, e.X402Version,
				rt.Method, n.APIURL+rt.Path, rt.Description, rt.Version)
		}
		if len(e.Offers) != 1 {
			t.Errorf("%s: %d offers", rt.Path, len(e.Offers))
			continue
		}
		o := e.Offers[0]
		if o.Scheme != "exact" || o.Network != n.Chain.Network() || o.Asset != token || o.PayTo != n.PayTo.Hex() || o.Amount.Cmp(rt.Price) != 0 {
			t.Errorf("%s: offer %+v", rt.Path, o)
		}
		// The bazaar input says how to call it, exactly as the route
		// declared it.
		var bz struct{ Input json.RawMessage }
		if err := json.Unmarshal(rt.Bazaar, &bz); err != nil {
			t.Fatal(err)
		}
		if !jsonEq(t, e.Input, bz.Input) || e.Output == nil {
			t.Errorf("%s: input %s, want %s; output %s", rt.Path, e.Input, bz.Input, e.Output)
		}
		if e.LastUpdated.IsZero() || !slices.Equal(e.Sources, []string{"facilitator " + n.FacilitatorURL}) {
			t.Errorf("%s: updated %v, sources %q", rt.Path, e.LastUpdated, e.Sources)
		}
	}

	// MaxItems bounds the listing, and the result says so; the entries read
	// are good, so it is not a problem.
	short := mustNew(t, Config{Facilitators: []string{n.FacilitatorURL}, PageSize: 2, MaxItems: 4})
	res = mustSearch(t, short, Query{})
	want := "facilitator " + n.FacilitatorURL + ": kept the first 4 resources, the most taken from one listing; the listing has 5; the rest were not searched"
	if len(res.Entries) != 4 || len(res.Problems) != 0 || !slices.Equal(res.Incomplete, []string{want}) {
		t.Errorf("MaxItems 4: %d entries, problems %q, incomplete %q", len(res.Entries), res.Problems, res.Incomplete)
	}
}

// TestLocalListingPagedToItsEnd: a listing of 2,500 routes, past the 1,000
// that used to be the ceiling, is read to its end, page by page, and so is
// a search matching all of them.
func TestLocalListingPagedToItsEnd(t *testing.T) {
	const routes = 2500
	n := startNetwork(t, manyRoutes(routes))
	tr := &countingTransport{}
	c := mustNew(t, Config{Facilitators: []string{n.FacilitatorURL}, Transport: tr})
	res := mustSearch(t, c, Query{Limit: 100})
	if res.Total != routes || len(res.Problems) != 0 || len(res.Incomplete) != 0 || res.Skipped != 0 {
		t.Fatalf("%d entries, problems %q, incomplete %q, skipped %d", res.Total, res.Problems, res.Incomplete, res.Skipped)
	}
	// The local facilitator gives at most 100 a page.
	if got := tr.path("/discovery/resources"); got != routes/100 {
		t.Errorf("%d listing pages, want %d", got, routes/100)
	}
	// "number" is in every description: the search pages by cursor to its
	// bound, 1,000 results, and says it stopped there.
	res = mustSearch(t, c, Query{Text: "number"})
	if res.Total != maxSearchItems || len(res.Incomplete) != 1 || !strings.Contains(res.Incomplete[0], "search: read the first 1000 results") {
		t.Errorf("search: %d entries, incomplete %q", res.Total, res.Incomplete)
	}
	if got := len(n.Facilitator.Searches()); got != maxSearchItems/100 {
		t.Errorf("%d search pages, want %d", got, maxSearchItems/100)
	}
}

// TestLocalFacilitatorQueries runs the same queries against the local
// facilitator with its /discovery/search and without it: the answers are
// the same, found by its search when it has one, and by its listing, read
// once for all queries, when it has none.
func TestLocalFacilitatorQueries(t *testing.T) {
	n := startNetwork(t, nil)
	api := n.APIURL
	tests := []struct {
		name string
		q    Query
		want []string
	}{
		{"text", Query{Text: "weather"}, []string{api + "/v2/weather"}},
		{"text by method", Query{Text: "post"}, []string{api + "/v2/summarize"}},
		{"text ranks whole words first", Query{Text: "report summarize"}, []string{api + "/v2/summarize", api + "/v2/report"}},
		{"network", Query{Network: n.Chain.Network()}, []string{api + "/v1/fx", api + "/v2/weather", api + "/v1/joke",
			api + "/v2/summarize", api + "/v2/report"}},
		{"other network", Query{Network: "base"}, nil},
		{"max price", Query{MaxPrice: func(o Offer) bool { return o.Amount.Cmp(big.NewInt(20_000)) <= 0 }},
			[]string{api + "/v1/fx", api + "/v2/weather", api + "/v1/joke"}},
		{"limit", Query{Limit: 2}, []string{api + "/v1/fx", api + "/v2/weather"}},
		{"all together", Query{Text: "weather in a city", Network: "eip155:1337", Limit: 1,
			MaxPrice: func(o Offer) bool { return o.Amount.Cmp(big.NewInt(100_000)) < 0 }}, []string{api + "/v2/weather"}},
	}
	for _, search := range []bool{true, false} {
		t.Run(map[bool]string{true: "search", false: "listing"}[search], func(t *testing.T) {
			n.Facilitator.SetSearch(search)
			before := len(n.Facilitator.Searches())
			tr := &countingTransport{}
			c := mustNew(t, Config{Facilitators: []string{n.FacilitatorURL}, PageSize: 2, Transport: tr})
			for _, tt := range tests {
				res := mustSearch(t, c, tt.q)
				if got := urls(res.Entries); !slices.Equal(got, tt.want) {
					t.Errorf("%s: got %q\nwant %q", tt.name, got, tt.want)
				}
			}
			switch {
			case search:
				// Each text query was the facilitator's to answer (a
				// query with more matches than a page in several pages);
				// the listing was read once, for the queries without text.
				want := []string{"weather", "post", "report summarize", "weather in a city"}
				if got := slices.Compact(n.Facilitator.Searches()[before:]); !slices.Equal(got, want) {
					t.Errorf("the facilitator saw searches %q, want %q", got, want)
				}
				if tr.path("/discovery/resources") != 3 {
					t.Errorf("%d listing pages read, want 3", tr.path("/discovery/resources"))
				}
			case tr.count() != 4:
				// No search: one 404, remembered, then the listing (3
				// pages), read once for all these queries.
				t.Errorf("%d requests, want 1 search and 3 listing pages", tr.count())
			}
		})
	}
}

// TestLocalOddListing plays servers whose options are odd, through the
// routes' Accepts hook and bazaar metadata: the listing carries exactly what
// the route offers.
func TestLocalOddListing(t *testing.T) {
	free := func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("{}")) }
	routes := []localnet.Route{
		{
			Method: http.MethodGet, Path: "/maps", Version: 2, Price: big.NewInt(7_000), Handler: free,
			Description: "Map tiles",
			Bazaar:      json.RawMessage(`{"input":{"type":"http","method":"GET","queryParams":{"z":"3"}},"tags":["maps","geo"]}`),
			// A second option on a network we cannot pay on.
			Accepts: func(opts []map[string]any) []map[string]any {
				sol := map[string]any{"scheme": "exact", "network": "solana", "amount": "7000",
					"asset": "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", "payTo": "So1ana", "maxTimeoutSeconds": 60}
				return append(opts, sol)
			},
		},
		{
			Method: http.MethodGet, Path: "/v1name", Version: 1, Price: big.NewInt(8_000), Handler: free,
			Description: "Listed under a v1 network name",
			Accepts: func(opts []map[string]any) []map[string]any {
				opts[0]["network"] = "base-sepolia"
				return opts
			},
		},
		{
			Method: http.MethodGet, Path: "/fraction", Version: 2, Price: big.NewInt(9_000), Handler: free,
			Description: "Priced in a fraction of a unit",
			Accepts: func(opts []map[string]any) []map[string]any {
				opts[0]["amount"] = "0.5"
				return opts
			},
		},
		{
			Method: http.MethodGet, Path: "/free", Handler: free, Description: "Free, so not listed",
		},
	}
	n := startNetwork(t, routes)
	c := mustNew(t, Config{Facilitators: []string{n.FacilitatorURL}})
	res := mustSearch(t, c, Query{})
	if res.Skipped != 1 {
		t.Errorf("Skipped = %d, want 1 (the fractional amount)", res.Skipped)
	}
	if got, want := urls(res.Entries), []string{n.APIURL + "/maps", n.APIURL + "/v1name"}; !slices.Equal(got, want) {
		t.Fatalf("entries %q, want %q", got, want)
	}
	m := res.Entries[0]
	if !slices.Equal(m.Tags, []string{"maps", "geo"}) || len(m.Offers) != 2 || m.Offers[1].Network != "" ||
		m.Offers[1].Amount.Int64() != 7000 || string(m.Input) != `{"type":"http","method":"GET","queryParams":{"z":"3"}}` {
		t.Errorf("maps = %+v", m)
	}
	if o := res.Entries[1].Offers[0]; o.Network != "eip155:84532" || o.Amount.Int64() != 8000 {
		t.Errorf("v1 name offer = %+v", o)
	}
	// Tags are searched; the Solana option does not make the entry pass a
	// Base filter or fail an EVM one.
	if got := urls(mustSearch(t, c, Query{Text: "geo"}).Entries); !slices.Equal(got, []string{n.APIURL + "/maps"}) {
		t.Errorf("tag search: %q", got)
	}
	if got := urls(mustSearch(t, c, Query{Network: n.Chain.Network()}).Entries); !slices.Equal(got, []string{n.APIURL + "/maps"}) {
		t.Errorf("network filter: %q", got)
	}
}

func TestLocalListingMergedWithCatalogFile(t *testing.T) {
	n := startNetwork(t, nil)
	path := filepath.Join(t.TempDir(), "catalog.toml")
	file := `
[[endpoint]]
url = "` + n.APIURL + `/v2/weather?city=Lyon"
description = "Weather now"
tags = ["weather", "local"]
query_params = { city = "Lyon" }
price = "0.01"
network = "eip155:1337"

[[endpoint]]
url = "https://translate.example/v1"
method = "POST"
description = "Translate a text"
body = '{"text": "bonjour", "to": "en"}'
price = "0.02"
network = "base"
`
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	c := mustNew(t, Config{Facilitators: []string{n.FacilitatorURL}, CatalogFiles: []string{path}})

	res := mustSearch(t, c, Query{})
	if len(res.Entries) != 6 {
		t.Fatalf("%d entries, want the 5 listed and 1 from the file: %q", len(res.Entries), urls(res.Entries))
	}
	var weather, translate *Entry
	for i := range res.Entries {
		switch e := &res.Entries[i]; {
		case strings.Contains(e.URL, "/v2/weather"):
			if weather != nil {
				t.Fatal("weather listed twice")
			}
			weather = e
		case strings.HasPrefix(e.URL, "https://translate.example"):
			translate = e
		}
	}
	if weather == nil || translate == nil {
		t.Fatalf("entries %q", urls(res.Entries))
	}
	// The file comes first, so its URL is kept; the listing brings the
	// offer, and its longer description wins.
	if weather.URL != n.APIURL+"/v2/weather?city=Lyon" ||
		!slices.Equal(weather.Sources, []string{"catalog " + path, "facilitator " + n.FacilitatorURL}) ||
		len(weather.Offers) != 1 || weather.PriceHint != "0.01" || weather.Description != "Current weather for a city" ||
		!slices.Equal(weather.Tags, []string{"weather", "local"}) || weather.X402Version != 2 {
		t.Errorf("merged weather = %+v", *weather)
	}
	if translate.Method != "POST" || len(translate.Offers) != 0 || translate.PriceHint != "0.02" || translate.NetworkHint != "eip155:8453" ||
		!slices.Equal(translate.Sources, []string{"catalog " + path}) ||
		string(translate.Input) != `{"type":"http","method":"POST","bodyType":"json","body":{"text":"bonjour","to":"en"}}` {
		t.Errorf("file-only entry = %+v", *translate)
	}
	// File entries are searched and filtered like any other: by the network
	// they name, and dropped by a price limit, having no offer to judge.
	if got := urls(mustSearch(t, c, Query{Text: "translate"}).Entries); !slices.Equal(got, []string{"https://translate.example/v1"}) {
		t.Errorf("text: %q", got)
	}
	if got := urls(mustSearch(t, c, Query{Network: "eip155:8453"}).Entries); !slices.Equal(got, []string{"https://translate.example/v1"}) {
		t.Errorf("network: %q", got)
	}
	if got := urls(mustSearch(t, c, Query{Text: "translate", MaxPrice: func(Offer) bool { return true }}).Entries); len(got) != 0 {
		t.Errorf("max price kept %q", got)
	}
}

func jsonEq(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return string(ja) == string(jb)
}
