package catalog

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeFacilitator is an httptest facilitator serving crafted discovery
// answers, counting requests per path. It plays the faults the local
// facilitator cannot: odd shapes, garbage, errors, a search endpoint.
type fakeFacilitator struct {
	URL string

	mu   sync.Mutex
	hits map[string]int
}

func newFakeFacilitator(t *testing.T, mux *http.ServeMux) *fakeFacilitator {
	t.Helper()
	f := &fakeFacilitator{hits: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.hits[r.URL.Path]++
		f.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

func (f *fakeFacilitator) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[path]
}

// listing serves items as one page of /discovery/resources.
func listing(items ...string) http.HandlerFunc {
	body := `{"x402Version":2,"items":[` + strings.Join(items, ",") + `],"pagination":{"limit":100,"offset":0,"total":` +
		itoa(len(items)) + `}}`
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// countingTransport counts the requests that leave the Catalog, in all and
// by path.
type countingTransport struct {
	mu     sync.Mutex
	n      int
	byPath map[string]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n++
	if c.byPath == nil {
		c.byPath = map[string]int{}
	}
	c.byPath[r.URL.Path]++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (c *countingTransport) path(p string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byPath[p]
}

func (c *countingTransport) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// clock is a settable Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func urls(entries []Entry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.URL
	}
	return out
}

func mustNew(t *testing.T, cfg Config) *Catalog {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustSearch(t *testing.T, c *Catalog, q Query) *Results {
	t.Helper()
	res, err := c.Search(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	return res
}
