package catalog

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestCache(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /discovery/resources", craftedListing())
	fac := newFakeFacilitator(t, mux)
	broken := http.NewServeMux()
	broken.HandleFunc("GET /discovery/resources", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	brokenFac := newFakeFacilitator(t, broken)

	clk := newClock()
	tr := &countingTransport{}
	c := mustNew(t, Config{Facilitators: []string{fac.URL, brokenFac.URL}, Transport: tr, Now: clk.Now, TTL: 5 * time.Minute})

	first := mustSearch(t, c, Query{})
	if tr.count() != 2 {
		t.Fatalf("first search made %d requests, want 2", tr.count())
	}
	// A caller changing what it got does not change the cache.
	first.Entries[0].Offers[0].Amount.SetInt64(1)
	first.Entries[0].Tags = append(first.Entries[0].Tags, "mine")
	first.Entries[0].Sources[0] = "changed"

	clk.Advance(20 * time.Second)
	second := mustSearch(t, c, Query{Network: "eip155:8453", Limit: 1})
	if tr.count() != 2 {
		t.Errorf("a search within the TTL made %d requests", tr.count()-2)
	}
	if e := second.Entries[0]; e.Offers[0].Amount.Int64() != 5000 || len(e.Tags) != 0 || e.Sources[0] != "facilitator "+fac.URL {
		t.Errorf("cached entry was changed through a result: %+v", e)
	}
	if len(second.Problems) != 1 {
		t.Errorf("a cached failure is still reported: %q", second.Problems)
	}

	// A failed answer is kept 30 seconds, a good one the TTL.
	clk.Advance(11 * time.Second)
	mustSearch(t, c, Query{})
	if fac.count("/discovery/resources") != 1 || brokenFac.count("/discovery/resources") != 2 {
		t.Errorf("after 31s: good listing read %d times, failing one %d; want 1 and 2",
			fac.count("/discovery/resources"), brokenFac.count("/discovery/resources"))
	}
	clk.Advance(5 * time.Minute)
	mustSearch(t, c, Query{})
	if fac.count("/discovery/resources") != 2 {
		t.Errorf("after the TTL the listing was read %d times in all, want 2", fac.count("/discovery/resources"))
	}
}

// TestCacheConfiguredTTL: the TTL the operator configured (discovery.
// cache_seconds) is how long a listing is reused, for every query, and a
// search for its query.
func TestCacheConfiguredTTL(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /discovery/resources", craftedListing())
	mux.HandleFunc("GET /discovery/search", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"resources":[` + itemV2Weather + `]}`))
	})
	fac := newFakeFacilitator(t, mux)
	clk := newClock()
	c := mustNew(t, Config{Facilitators: []string{fac.URL}, TTL: 60 * time.Second, Now: clk.Now})
	for i := range 2 {
		clk.Advance(time.Duration(i) * 59 * time.Second)
		mustSearch(t, c, Query{})
		mustSearch(t, c, Query{Network: "base", Limit: 3})
		mustSearch(t, c, Query{Text: "weather"})
	}
	if l, s := fac.count("/discovery/resources"), fac.count("/discovery/search"); l != 1 || s != 1 {
		t.Errorf("within the TTL: listing read %d times, search asked %d times; want 1 and 1", l, s)
	}
	clk.Advance(2 * time.Second)
	mustSearch(t, c, Query{})
	mustSearch(t, c, Query{Text: "weather"})
	if l, s := fac.count("/discovery/resources"), fac.count("/discovery/search"); l != 2 || s != 2 {
		t.Errorf("after the TTL: listing read %d times, search asked %d times; want 2 and 2", l, s)
	}
}

func TestCacheOneFetchInFlight(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 100)
	mux := http.NewServeMux()
	list := craftedListing()
	mux.HandleFunc("GET /discovery/resources", func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		list(w, r)
	})
	fac := newFakeFacilitator(t, mux)
	c := mustNew(t, Config{Facilitators: []string{fac.URL}})

	const n = 20
	errs := make(chan error, n)
	totals := make(chan int, n)
	for range n {
		go func() {
			res, err := c.Search(context.Background(), Query{})
			errs <- err
			if err == nil {
				totals <- res.Total
			}
		}()
	}
	<-arrived
	// Let the other searches reach the cache while the first fetch waits;
	// any that come later find the answer cached, so the count below holds
	// however the goroutines are scheduled.
	time.Sleep(50 * time.Millisecond)
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if total := <-totals; total != 5 {
			t.Errorf("a search got %d entries", total)
		}
	}
	if got := fac.count("/discovery/resources"); got != 1 {
		t.Errorf("%d concurrent searches made %d listing requests, want 1", n, got)
	}
}

func TestSearchContextEnds(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	list := craftedListing()
	mux.HandleFunc("GET /discovery/resources", func(w http.ResponseWriter, r *http.Request) {
		<-release
		list(w, r)
	})
	fac := newFakeFacilitator(t, mux)
	c := mustNew(t, Config{Facilitators: []string{fac.URL}})

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Search(ctx, Query{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want the context's", err)
	}
	// The fetch went on without the caller who gave up, and its answer is
	// there for the next one.
	close(release)
	res := mustSearch(t, c, Query{})
	if res.Total != 5 || fac.count("/discovery/resources") != 1 {
		t.Errorf("%d entries after %d requests", res.Total, fac.count("/discovery/resources"))
	}
}
