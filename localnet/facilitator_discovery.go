package localnet

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/tidwall/gjson"
)

const (
	discoveryDefaultLimit = 20
	discoveryMaxLimit     = 100
)

// DiscoveryItem is one resource in the facilitator's bazaar listing.
type DiscoveryItem struct {
	// Resource is the absolute URL of the paid resource.
	Resource string
	// Type is the resource kind; "http" when empty.
	Type string
	// X402Version is the protocol version the resource speaks (1 or 2).
	X402Version int
	// Accepts are the payment options exactly as the resource offers them.
	Accepts []json.RawMessage
	// LastUpdated is when the listing was last refreshed; the time of
	// Register when zero.
	LastUpdated time.Time
	// Metadata describes how to call the resource (bazaar input/output).
	Metadata json.RawMessage
}

// Register adds resources to the discovery listing. An item whose Resource is
// already listed replaces the old entry in place, the way a re-crawled
// resource is refreshed rather than duplicated.
func (f *Facilitator) Register(items ...DiscoveryItem) {
	now := time.Now().UTC()
	f.discoveryMu.Lock()
	defer f.discoveryMu.Unlock()
	for _, it := range items {
		if it.Type == "" {
			it.Type = "http"
		}
		if it.LastUpdated.IsZero() {
			it.LastUpdated = now
		}
		it.Accepts = append([]json.RawMessage(nil), it.Accepts...)
		if f.discoveryAt == nil {
			f.discoveryAt = make(map[string]int)
		}
		if i, ok := f.discoveryAt[it.Resource]; ok {
			f.discovery[i] = it
			continue
		}
		f.discoveryAt[it.Resource] = len(f.discovery)
		f.discovery = append(f.discovery, it)
	}
}

// SetSearch turns /discovery/search on (the default) or off; off, it
// answers 404 as a facilitator without search does.
func (f *Facilitator) SetSearch(on bool) {
	f.discoveryMu.Lock()
	defer f.discoveryMu.Unlock()
	f.noSearch = !on
}

// Searches returns the query of every /discovery/search request so far, in
// order, the continuation pages' included.
func (f *Facilitator) Searches() []string {
	f.discoveryMu.Lock()
	defer f.discoveryMu.Unlock()
	return slices.Clone(f.searches)
}

type discoveryItemWire struct {
	Resource    string            `json:"resource"`
	Type        string            `json:"type"`
	X402Version int               `json:"x402Version"`
	Accepts     []json.RawMessage `json:"accepts"`
	LastUpdated string            `json:"lastUpdated"`
	Metadata    json.RawMessage   `json:"metadata"`
}

type discoveryResponse struct {
	X402Version int                 `json:"x402Version"`
	Items       []discoveryItemWire `json:"items"`
	Pagination  struct {
		Limit  int `json:"limit"`
		Offset int `json:"offset"`
		Total  int `json:"total"`
	} `json:"pagination"`
}

func (f *Facilitator) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := queryInt(q.Get("limit"), discoveryDefaultLimit)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: "limit: " + err.Error()})
		return
	}
	offset, err := queryInt(q.Get("offset"), 0)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: "offset: " + err.Error()})
		return
	}
	if limit == 0 {
		limit = discoveryDefaultLimit
	}
	limit = min(limit, discoveryMaxLimit)

	filter, err := discoveryFilters(q)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: err.Error()})
		return
	}
	f.discoveryMu.Lock()
	var matched []DiscoveryItem
	for _, it := range f.discovery {
		if filter(it) {
			matched = append(matched, it)
		}
	}
	f.discoveryMu.Unlock()

	resp := discoveryResponse{X402Version: 2, Items: []discoveryItemWire{}}
	resp.Pagination.Limit, resp.Pagination.Offset, resp.Pagination.Total = limit, offset, len(matched)
	if offset < len(matched) {
		for _, it := range matched[offset:min(len(matched), offset+limit)] {
			resp.Items = append(resp.Items, it.wire())
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

func (it DiscoveryItem) wire() discoveryItemWire {
	meta := it.Metadata
	if len(meta) == 0 {
		meta = json.RawMessage(`{}`)
	}
	return discoveryItemWire{
		Resource:    it.Resource,
		Type:        it.Type,
		X402Version: it.X402Version,
		Accepts:     it.Accepts,
		LastUpdated: it.LastUpdated.UTC().Format(time.RFC3339),
		Metadata:    meta,
	}
}

// discoveryFilters reads the filters both discovery endpoints take (type,
// network, scheme, payTo): an item passes when it matches each one given,
// a payment filter by any of its options.
func discoveryFilters(q map[string][]string) (func(DiscoveryItem) bool, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	typ, network, scheme, payTo := get("type"), get("network"), get("scheme"), get("payTo")
	for k, v := range map[string]string{"network": network, "scheme": scheme, "payTo": payTo} {
		if len(v) > 128 || strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r > '~' }) {
			return nil, fmt.Errorf("%s: %q is not a valid value", k, v)
		}
	}
	option := func(it DiscoveryItem, key, want string) bool {
		if want == "" {
			return true
		}
		for _, o := range it.Accepts {
			if strings.EqualFold(gjson.GetBytes(o, key).String(), want) {
				return true
			}
		}
		return false
	}
	return func(it DiscoveryItem) bool {
		return (typ == "" || it.Type == typ) && option(it, "network", network) &&
			option(it, "scheme", scheme) && option(it, "payTo", payTo)
	}, nil
}

// discoverySearchResponse is a /discovery/search answer, in the bazaar
// specification's shape: resources, partialResults, and a pagination with
// the cursor of the next page (null on the last).
type discoverySearchResponse struct {
	X402Version    int                 `json:"x402Version"`
	Resources      []discoveryItemWire `json:"resources"`
	PartialResults bool                `json:"partialResults"`
	Pagination     struct {
		Limit  int     `json:"limit"`
		Cursor *string `json:"cursor"`
	} `json:"pagination"`
}

// handleSearch answers /discovery/search: the items any word of the query
// matches (a word of the resource URL, description, tags or method equal
// to it or starting with it), most words matched first, then in listing
// order; the filters of /discovery/resources apply. The cursor is opaque
// to clients; here it is "o" and the offset of the next page.
func (f *Facilitator) handleSearch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.discoveryMu.Lock()
	off := f.noSearch
	if !off {
		f.searches = append(f.searches, q.Get("query"))
	}
	f.discoveryMu.Unlock()
	if off {
		http.NotFound(w, r)
		return
	}
	words := searchWords(q.Get("query"))
	if len(words) == 0 {
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: "query: required, with at least one letter or digit"})
		return
	}
	limit, err := queryInt(q.Get("limit"), discoveryDefaultLimit)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: "limit: " + err.Error()})
		return
	}
	if limit == 0 {
		limit = discoveryDefaultLimit
	}
	limit = min(limit, discoveryMaxLimit)
	offset := 0
	if c := q.Get("cursor"); c != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(c, "o"))
		if !strings.HasPrefix(c, "o") || err != nil || n < 0 {
			writeJSON(w, http.StatusBadRequest, errorResponse{Error: "cursor: not one this facilitator gave"})
			return
		}
		offset = n
	}
	filter, err := discoveryFilters(q)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: err.Error()})
		return
	}

	type hit struct {
		it    DiscoveryItem
		score int
	}
	var hits []hit
	f.discoveryMu.Lock()
	for _, it := range f.discovery {
		if !filter(it) {
			continue
		}
		if score := it.matches(words); score > 0 {
			hits = append(hits, hit{it, score})
		}
	}
	f.discoveryMu.Unlock()
	slices.SortStableFunc(hits, func(a, b hit) int { return b.score - a.score })

	resp := discoverySearchResponse{X402Version: 2, Resources: []discoveryItemWire{}}
	resp.Pagination.Limit = limit
	if offset < len(hits) {
		for _, h := range hits[offset:min(len(hits), offset+limit)] {
			resp.Resources = append(resp.Resources, h.it.wire())
		}
	}
	if next := offset + limit; next < len(hits) {
		c := "o" + strconv.Itoa(next)
		resp.Pagination.Cursor = &c
	}
	writeJSON(w, http.StatusOK, resp)
}

// matches counts the query words that match the item.
func (it DiscoveryItem) matches(words []string) int {
	meta := gjson.ParseBytes(it.Metadata)
	text := []string{it.Resource, meta.Get("description").String(), meta.Get("input.method").String()}
	for _, t := range meta.Get("tags").Array() {
		text = append(text, t.String())
	}
	itemWords := searchWords(strings.Join(text, " "))
	n := 0
	for _, w := range words {
		if slices.ContainsFunc(itemWords, func(iw string) bool { return strings.HasPrefix(iw, w) }) {
			n++
		}
	}
	return n
}

// searchWords splits text into lower-case words of letters and digits.
func searchWords(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// queryInt parses a non-negative decimal query parameter; empty means def.
func queryInt(s string, def int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a non-negative integer", s)
	}
	return n, nil
}
