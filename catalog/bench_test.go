package catalog

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/x402-mcp/x402-mcp/localnet"
)

// benchItems is how many items the discovery benchmarks list: the size of
// a busy facilitator's first thousand, where issue 10 measured 87 ms.
const benchItems = 1000

// realisticPage is one listing page of n items in the shapes real
// facilitators send (v1 and v2 mixed, bazaar metadata, two networks), each
// at its own URL.
func realisticPage(n int) []byte {
	templates := []struct{ item, url string }{
		{itemV2Weather, "https://v2.example/weather"},
		{itemV1Joke, "https://v1.example/joke"},
		{itemV2Search, "https://v2.example/search"},
		{itemV1FX, "https://v1.example/fx"},
	}
	var b bytes.Buffer
	b.WriteString(`{"x402Version":2,"items":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		t := templates[i%len(templates)]
		b.WriteString(strings.ReplaceAll(t.item, t.url, fmt.Sprintf("https://api%d.example/r/%d", i%37, i)))
	}
	fmt.Fprintf(&b, `],"pagination":{"limit":%d,"offset":0,"total":%d}}`, n, n)
	return b.Bytes()
}

// BenchmarkParseListing is the parse of one 1,000-item listing page: the
// page read and every item checked, cleaned and turned into an Entry.
func BenchmarkParseListing(b *testing.B) {
	body := realisticPage(benchItems)
	c := mustNewB(b, Config{})
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		sr := &sourceResult{source: "facilitator bench"}
		p, err := decodePage(bytes.NewReader(body), int64(len(body)))
		if err != nil {
			b.Fatal(err)
		}
		c.addItems(sr, p, defaultMaxItems)
		if len(sr.entries) != benchItems || sr.skipped != 0 {
			b.Fatalf("%d entries, %d skipped", len(sr.entries), sr.skipped)
		}
	}
}

// manyRoutes are n priced routes of the local paid API, the default ones
// repeated at numbered paths.
func manyRoutes(n int) []localnet.Route {
	base := priced()
	out := make([]localnet.Route, 0, n)
	for i := range n {
		rt := base[i%len(base)]
		rt.Path = fmt.Sprintf("%s/%d", rt.Path, i)
		rt.Description = fmt.Sprintf("%s, number %d", rt.Description, i)
		out = append(out, rt)
	}
	return out
}

// BenchmarkDiscoverFirstCall is a first discovery (nothing cached) of the
// local facilitator listing 1,000 routes: every page requested, read and
// parsed, then merged and ranked.
func BenchmarkDiscoverFirstCall(b *testing.B) {
	n, err := localnet.Start(b.Context(), localnet.NetworkConfig{Routes: manyRoutes(benchItems)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = n.Close() })
	b.ReportAllocs()
	for b.Loop() {
		c := mustNewB(b, Config{Facilitators: []string{n.FacilitatorURL}})
		res, err := c.Search(b.Context(), Query{})
		if err != nil {
			b.Fatal(err)
		}
		if res.Total != benchItems || len(res.Problems) != 0 {
			b.Fatalf("%d entries, problems %q", res.Total, res.Problems)
		}
	}
}

func mustNewB(b *testing.B, cfg Config) *Catalog {
	b.Helper()
	c, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return c
}
