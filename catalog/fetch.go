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

// fetchListing reads a facilitator's /discovery/resources page by page.
// Offsets advance by the number of items each page actually held, so a
// facilitator that caps the page size below ours is still read in full.
// Reading stops at the end of the listing (pagination.total, an empty page,
// or a short page when there is no total), at MaxPages, at
// maxItemsPerSource, or at the first failing page, keeping what came
// before.
func (c *Catalog) fetchListing(ctx context.Context, base string) *sourceResult {
	sr := &sourceResult{source: "facilitator " + base}
	offset, total := 0, -1
	more := func() string {
		if total > offset {
			return fmt.Sprintf("the listing has %d", total)
		}
		return "the listing has more"
	}
	for n := 0; ; n++ {
		if n == c.maxPages {
			sr.problems = append(sr.problems, fmt.Sprintf("%s: read the first %d resources (%d pages); %s",
				sr.source, offset, c.maxPages, more()))
			return sr
		}
		q := url.Values{"type": {"http"}, "limit": {strconv.Itoa(c.pageSize)}, "offset": {strconv.Itoa(offset)}}
		p, err := c.getPage(ctx, base+"/discovery/resources?"+q.Encode())
		c.addItems(sr, p)
		if err != nil {
			where := ""
			if offset > 0 || p.count > 0 {
				where = fmt.Sprintf(" (page at offset %d; kept the resources before the problem)", offset)
			}
			sr.problems = append(sr.problems, fmt.Sprintf("%s: %s%s", sr.source, errText(err), where))
			return sr
		}
		offset, total = offset+p.count, p.total
		switch {
		case p.count == 0,
			p.total >= 0 && offset >= p.total,
			p.total < 0 && p.count < c.pageSize:
			return sr
		case offset >= maxItemsPerSource:
			sr.problems = append(sr.problems, fmt.Sprintf("%s: read the first %d resources; %s", sr.source, offset, more()))
			return sr
		}
	}
}

// fetchSearch asks a facilitator's /discovery/search, following its
// cursor for at most MaxPages pages. A 404, 405 or 501 on the first page
// means there is no search; another failure is reported in searchErr so
// the caller falls back to the listing.
func (c *Catalog) fetchSearch(ctx context.Context, base, text string) *sourceResult {
	sr := &sourceResult{source: "facilitator " + base, serverMatched: true}
	cursor := ""
	read := 0
	for n := 0; n < c.maxPages; n++ {
		q := url.Values{"query": {text}, "type": {"http"}, "limit": {strconv.Itoa(c.pageSize)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		p, err := c.getPage(ctx, base+"/discovery/search?"+q.Encode())
		var se *statusError
		if n == 0 && errors.As(err, &se) && (se.code == http.StatusNotFound ||
			se.code == http.StatusMethodNotAllowed || se.code == http.StatusNotImplemented) {
			return &sourceResult{source: sr.source, noSearch: true}
		}
		c.addItems(sr, p)
		if err != nil {
			if n == 0 {
				return &sourceResult{source: sr.source, searchErr: errText(err)}
			}
			sr.problems = append(sr.problems, fmt.Sprintf("%s: search: %s (kept the results before the problem)", sr.source, errText(err)))
			return sr
		}
		read += p.count
		if p.cursor == "" || p.cursor == cursor || p.count == 0 || read >= maxItemsPerSource {
			return sr
		}
		cursor = p.cursor
	}
	return sr
}

// maxErrorRunes bounds an error in a Problem. Transport errors quote URLs,
// and a redirect's URL is the facilitator's to choose.
const maxErrorRunes = 300

func errText(err error) string { return cleanText(err.Error(), maxErrorRunes) }

// addItems parses a page's items into sr, counting those skipped.
func (c *Catalog) addItems(sr *sourceResult, p *page) {
	sr.skipped += p.dropped
	now := c.now()
	addrs := map[string]string{}
	sr.entries = slices.Grow(sr.entries, min(len(p.items), maxItemsPerSource-len(sr.entries)))
	for _, raw := range p.items {
		if len(sr.entries) >= maxItemsPerSource {
			sr.skipped++
			continue
		}
		e, err := parseItemJSON(raw, now, addrs)
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
