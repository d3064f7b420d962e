package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// statusError is a facilitator answering something other than 200.
type statusError struct{ code int }

func (e *statusError) Error() string { return "HTTP " + strconv.Itoa(e.code) }

// getPage GETs one listing or search page. The page may hold items even
// with an error: those read before the problem.
func (c *Catalog) getPage(ctx context.Context, u string) (*page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return &page{total: -1}, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return &page{total: -1}, err
	}
	defer func() {
		// Drain a little so the connection can be reused, not a hostile
		// server's endless body.
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
		resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		return &page{total: -1}, &statusError{code: resp.StatusCode}
	}
	return decodePage(&capReader{r: resp.Body, left: maxPageBytes}, resp.ContentLength)
}

// Bounds on reading one facilitator, chosen so that a listing is read to
// its end however large an honest one grows, while a hostile or runaway
// one cannot hold the server: what a listing can make us hold is about the
// bytes it sent (entries are cleaned, bounded copies of items).
const (
	// defaultMaxItems bounds the entries read from one listing: 10,000 is
	// ten times the busiest facilitator's listing today.
	defaultMaxItems = 10_000
	// maxListingBytes bounds the response bytes read from one listing, all
	// pages together; 10,000 realistic items take 5-10 MiB.
	maxListingBytes = 8 << 20
	// maxSearchItems and maxSearchBytes bound one search's results: they
	// come best first, and an agent reads at most maxLimit of them.
	maxSearchItems = 1000
	maxSearchBytes = 2 << 20
	// maxCursorPages bounds the pages of one search: a facilitator handing
	// out cursors to empty pages must not keep us paging until the budget.
	maxCursorPages = 100
)

// fetchListing reads a facilitator's /discovery/resources page by page to
// its end: pagination.total, an empty page, or a short page when there is
// no total. Offsets advance by the number of items each page actually
// held, so a facilitator that caps the page size below ours is still read
// in full. Reading stops early at the time budget (the deadline), at
// maxItems entries or at maxListingBytes; the entries read are kept, and
// sr.cut says what is missing. A failing page keeps what came before and
// is a problem.
func (c *Catalog) fetchListing(ctx context.Context, base string, deadline time.Time) *sourceResult {
	sr := &sourceResult{source: "facilitator " + base}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	offset, total := 0, -1
	more := func() string {
		if total > offset {
			return fmt.Sprintf("; the listing has %d", total)
		}
		return ""
	}
	// The next page is asked for while this one's items are parsed: the
	// facilitator's time and ours overlap. It is asked only when this page
	// says another follows and no bound is near, so the pages read are the
	// same as one by one.
	type fetched struct {
		p   *page
		err error
	}
	get := func(offset int) <-chan fetched {
		ch := make(chan fetched, 1)
		go func() {
			q := url.Values{"type": {"http"}, "limit": {strconv.Itoa(c.pageSize)}, "offset": {strconv.Itoa(offset)}}
			p, err := c.getPage(ctx, base+"/discovery/resources?"+q.Encode())
			ch <- fetched{p, err}
		}()
		return ch
	}
	pending := get(0)
	for {
		f := <-pending
		p, err := f.p, f.err
		pending = nil
		last := err != nil || p.count == 0 || (p.total >= 0 && offset+p.count >= p.total) || (p.total < 0 && p.count < c.pageSize)
		if !last && len(sr.entries)+len(p.items) < c.maxItems && sr.bytes+p.bytes < maxListingBytes && time.Now().Before(deadline) {
			pending = get(offset + p.count)
		}
		c.addItems(sr, p, c.maxItems)
		sr.bytes += p.bytes
		if err != nil {
			if offset+p.count > 0 && ctx.Err() != nil {
				sr.cut = fmt.Sprintf("%s: read %d resources before the %v budget ran out%s; the rest were not searched",
					sr.source, offset+p.count, c.budget, more())
				sr.cutByTime = true
				return sr
			}
			where := ""
			if offset > 0 || p.count > 0 {
				where = fmt.Sprintf(" (page at offset %d; kept the resources before the problem)", offset)
			}
			sr.problems = append(sr.problems, fmt.Sprintf("%s: %s%s", sr.source, c.fetchErrText(ctx, err), where))
			return sr
		}
		offset, total = offset+p.count, p.total
		switch {
		case p.count == 0,
			p.total >= 0 && offset >= p.total,
			p.total < 0 && p.count < c.pageSize:
			return sr
		case len(sr.entries) >= c.maxItems:
			sr.cut = fmt.Sprintf("%s: kept the first %d resources, the most taken from one listing%s; the rest were not searched",
				sr.source, len(sr.entries), more())
			return sr
		case sr.bytes >= maxListingBytes:
			sr.cut = fmt.Sprintf("%s: read the first %d resources (%d MiB, the most read from one listing)%s; the rest were not searched",
				sr.source, offset, maxListingBytes>>20, more())
			return sr
		case time.Now().After(deadline):
			sr.cut = fmt.Sprintf("%s: read %d resources before the %v budget ran out%s; the rest were not searched",
				sr.source, offset, c.budget, more())
			sr.cutByTime = true
			return sr
		}
		if pending == nil {
			pending = get(offset)
		}
	}
}

// fetchErrText words a failed request; one the budget ended says so.
func (c *Catalog) fetchErrText(ctx context.Context, err error) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within the %v budget", c.budget)
	}
	return errText(err)
}

// fetchSearch asks a facilitator's /discovery/search, with the network
// filter when the query has one, following its cursor to the end within
// the budget and the search bounds. A 404, 405 or 501 on the first page
// means there is no search; another failure of the first page is reported
// in searchErr so the caller falls back to the listing.
func (c *Catalog) fetchSearch(ctx context.Context, base, text, network string, deadline time.Time) *sourceResult {
	sr := &sourceResult{source: "facilitator " + base, serverMatched: true}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	cursor := ""
	read := 0
	for n := 0; ; n++ {
		q := url.Values{"query": {text}, "type": {"http"}, "limit": {strconv.Itoa(c.pageSize)}}
		if network != "" {
			q.Set("network", network)
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		p, err := c.getPage(ctx, base+"/discovery/search?"+q.Encode())
		var se *statusError
		if n == 0 && errors.As(err, &se) && (se.code == http.StatusNotFound ||
			se.code == http.StatusMethodNotAllowed || se.code == http.StatusNotImplemented) {
			return &sourceResult{source: sr.source, noSearch: true}
		}
		c.addItems(sr, p, maxSearchItems)
		sr.bytes += p.bytes
		if p.partial && sr.cut == "" {
			sr.cut = sr.source + ": its search says more resources matched than it returned"
		}
		if err != nil {
			switch {
			case n == 0 && p.count == 0:
				return &sourceResult{source: sr.source, searchErr: c.fetchErrText(ctx, err)}
			case ctx.Err() != nil:
				sr.cut = fmt.Sprintf("%s: search: read %d results before the %v budget ran out; the rest were not searched",
					sr.source, read+p.count, c.budget)
				sr.cutByTime = true
			default:
				sr.problems = append(sr.problems, fmt.Sprintf("%s: search: %s (kept the results before the problem)", sr.source, errText(err)))
			}
			return sr
		}
		read += p.count
		switch {
		case p.cursor == "" || p.cursor == cursor || p.count == 0:
			return sr
		case len(sr.entries) >= maxSearchItems || sr.bytes >= maxSearchBytes || n+1 == maxCursorPages:
			sr.cut = fmt.Sprintf("%s: search: read the first %d results, the most taken from one search", sr.source, read)
			return sr
		case time.Now().After(deadline):
			sr.cut = fmt.Sprintf("%s: search: read %d results before the %v budget ran out; the rest were not searched",
				sr.source, read, c.budget)
			sr.cutByTime = true
			return sr
		}
		cursor = p.cursor
	}
}

// maxErrorRunes bounds an error in a Problem. Transport errors quote URLs,
// and a redirect's URL is the facilitator's to choose.
const maxErrorRunes = 300

func errText(err error) string { return cleanText(err.Error(), maxErrorRunes) }

// addItems parses a page's items into sr, counting those skipped, and
// keeping at most limit entries in all.
func (c *Catalog) addItems(sr *sourceResult, p *page, limit int) {
	sr.skipped += p.dropped
	now := c.now()
	memo := newPageMemo()
	sr.entries = slices.Grow(sr.entries, max(0, min(len(p.items), limit-len(sr.entries))))
	for _, raw := range p.items {
		if len(sr.entries) >= limit {
			break // not skipped as malformed: the caller reports the cut
		}
		e, err := parseItemJSON(raw, now, memo)
		switch {
		case errors.Is(err, errNotHTTP):
			continue
		case err != nil:
			sr.skipped++
			continue
		}
		e.Sources = []string{sr.source}
		sr.entries = append(sr.entries, e)
	}
}
