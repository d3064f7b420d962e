package catalog

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// sourceResult is what one facilitator answered. Once cached it is shared
// by every Search that reads it and must not be modified.
type sourceResult struct {
	source   string // "facilitator <url>"
	entries  []Entry
	skipped  int
	problems []string
	// serverMatched: the entries are the facilitator's own search results,
	// matched by its rules rather than ours.
	serverMatched bool
	// noSearch: the facilitator has no /discovery/search.
	noSearch bool
	// searchErr: the search failed otherwise; the listing is used instead.
	searchErr string
	// cut says why the entries stop short of the listing's or search's
	// end ("" when they do not); cutByTime when the budget cut them.
	cut       string
	cutByTime bool
	// bytes is how many response bytes were read: about what the entries
	// hold, and what the cache counts against maxCacheBytes.
	bytes int
}

// maxCacheEntries and maxCacheBytes bound the cache: one listing per
// facilitator plus the recent search queries, which an agent can vary
// without end. Bytes are those read for each answer (see sourceResult).
const (
	maxCacheEntries = 256
	maxCacheBytes   = 128 << 20
)

// cache keeps facilitator answers for a TTL and lets one fetch per key be
// in flight: concurrent searches wait for the same answer instead of each
// asking the facilitator (singleflight, without the dependency).
type cache struct {
	now func() time.Time

	mu       sync.Mutex
	bytes    int // the sum of entries' res.bytes
	entries  map[string]cacheEntry
	flights  map[string]*flight
	noSearch map[string]time.Time // facilitator base -> until when it is known to lack search
}

type cacheEntry struct {
	res     *sourceResult
	expires time.Time
}

// flight is a fetch in progress; res is written before done is closed, and
// read only after.
type flight struct {
	done chan struct{}
	res  *sourceResult
}

func newCache(now func() time.Time) *cache {
	return &cache{
		now:      now,
		entries:  make(map[string]cacheEntry),
		flights:  make(map[string]*flight),
		noSearch: make(map[string]time.Time),
	}
}

// get returns the fresh cached answer for key, or waits for the fetch in
// flight, or starts one. The fetch runs detached from ctx, bounded by
// fetchTimeout: other callers may be waiting on it, and the one who
// started it giving up should not fail them all. The error is ctx's, when
// it ends before the answer arrives.
func (c *cache) get(ctx context.Context, source, key string, ttl func(*sourceResult) time.Duration,
	fetch func(context.Context) *sourceResult) (*sourceResult, error) {
	c.mu.Lock()
	if e, ok := c.entries[key]; ok && c.now().Before(e.expires) {
		c.mu.Unlock()
		return e.res, nil
	}
	f, ok := c.flights[key]
	if !ok {
		f = &flight{done: make(chan struct{})}
		c.flights[key] = f
		go c.run(ctx, source, key, f, ttl, fetch)
	}
	c.mu.Unlock()

	select {
	case <-f.done:
		return f.res, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *cache) run(ctx context.Context, source, key string, f *flight, ttl func(*sourceResult) time.Duration,
	fetch func(context.Context) *sourceResult) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	defer cancel()
	var res *sourceResult
	func() {
		// A panic here would run on a goroutine of its own and take the
		// whole server down on a hostile listing; report it as the
		// source's problem instead. The parser is fuzzed so this should
		// never fire.
		defer func() {
			if r := recover(); r != nil {
				res = &sourceResult{source: source,
					problems: []string{fmt.Sprintf("%s: internal error reading the listing: %v", source, r)}}
			}
		}()
		res = fetch(fctx)
	}()

	c.mu.Lock()
	c.store(key, res, ttl(res))
	delete(c.flights, key)
	c.mu.Unlock()
	f.res = res
	close(f.done)
}

// store caches res; c.mu is held. When the cache is full (in entries or
// bytes), expired entries go first, then those expiring soonest; the new
// answer is kept even when it alone passes the byte bound, since a caller
// is waiting for it.
func (c *cache) store(key string, res *sourceResult, ttl time.Duration) {
	now := c.now()
	c.drop(key)
	full := func() bool { return len(c.entries) >= maxCacheEntries || c.bytes+res.bytes > maxCacheBytes }
	if full() {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				c.drop(k)
			}
		}
		for len(c.entries) > 0 && full() {
			var oldest string
			var when time.Time
			for k, e := range c.entries {
				if oldest == "" || e.expires.Before(when) {
					oldest, when = k, e.expires
				}
			}
			c.drop(oldest)
		}
	}
	c.entries[key] = cacheEntry{res: res, expires: now.Add(ttl)}
	c.bytes += res.bytes
}

// drop removes key's entry, if any; c.mu is held.
func (c *cache) drop(key string) {
	if e, ok := c.entries[key]; ok {
		c.bytes -= e.res.bytes
		delete(c.entries, key)
	}
}

// markNoSearch remembers for ttl that base has no search endpoint, so each
// new query does not ask again.
func (c *cache) markNoSearch(base string, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.noSearch[base] = c.now().Add(ttl)
}

func (c *cache) lacksSearch(base string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.noSearch[base]
	return ok && c.now().Before(until)
}
