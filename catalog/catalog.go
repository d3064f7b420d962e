package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/x402-mcp/x402-mcp/x402"
)

// Offer is one payment option of a listed endpoint, for display and
// ranking only: a payment always re-reads the live 402.
type Offer struct {
	Scheme string
	// Network is the CAIP-2 id (v1 names normalised with x402.CAIP2); ""
	// when the network is not one x402.CAIP2 knows (e.g. Solana).
	Network string
	// Asset is the token contract in EIP-55 form; a non-EVM asset is shown
	// as listed, cleaned.
	Asset string
	PayTo string
	// Amount is in the asset's atomic units, from `amount` (v2) or
	// `maxAmountRequired` (v1); always positive.
	Amount *big.Int
	// Raw is the option as listed.
	Raw json.RawMessage
}

// Entry is one priced endpoint, merged from every source that lists it.
type Entry struct {
	URL, Method, Description string
	Tags                     []string
	// X402Version is 1 or 2 as listed, or as the options' shape implies; 0
	// when unknown (catalog-file entries).
	X402Version int
	// Offers are the listed payment options; empty for an endpoint known
	// only from a catalog file.
	Offers []Offer
	// Input is the bazaar "input" object (type http, method, queryParams or
	// bodyType+body): how to call the endpoint. At most 8 KiB, else nil.
	Input json.RawMessage
	// Output is the bazaar "output" object (type, example). At most 4 KiB,
	// else nil.
	Output json.RawMessage
	// LastUpdated is when a listing last saw the endpoint; zero if unknown.
	LastUpdated time.Time
	// Sources says where the entry was found: "facilitator <url>",
	// "catalog <path>", or what the caller put on an Extra entry ("probe").
	Sources []string
	// PriceHint is a catalog file's display price in USD ("0.01"), never
	// used for payment; "" from listings.
	PriceHint string
	// NetworkHint is a catalog file's network (CAIP-2), used by the
	// network filter when the entry has no offers; "" from listings.
	NetworkHint string
}

// Config configures a Catalog. The zero value searches nothing: name
// facilitators, catalog files, or pass entries in Query.Extra.
type Config struct {
	// Facilitators are base URLs. Discovery is read at
	// {base}/discovery/resources?type=http&limit=&offset=, and
	// {base}/discovery/search?query=&cursor= when the facilitator has it (a
	// 404 falls back to the listing).
	Facilitators []string
	// CatalogFiles are operator catalog files (TOML; see the package
	// documentation), read and checked by New.
	CatalogFiles []string
	// TTL is how long a facilitator's answer is reused; 0 means 5 minutes.
	// An answer with a problem is kept at most 30 seconds.
	TTL time.Duration
	// Transport makes the HTTP requests; nil means http.DefaultTransport.
	Transport http.RoundTripper
	// Budget bounds the time one Search spends reading a facilitator, all
	// its pages (a search and the listing it falls back to) together; what
	// was read by then is used, and Results.Incomplete says the rest is
	// missing. 0 means 5 seconds.
	Budget time.Duration
	// MaxItems bounds the entries kept from one facilitator's listing; 0
	// means 10,000. A listing is also cut at 8 MiB of responses.
	MaxItems int
	// PageSize is the limit asked for per page; 0 means 100.
	PageSize int
	// Now is the clock for the cache and for disbelieving future dates; nil
	// means time.Now.
	Now func() time.Time
}

const (
	defaultTTL      = 5 * time.Minute
	failureTTL      = 30 * time.Second
	defaultBudget   = 5 * time.Second
	maxBudget       = 10 * time.Minute
	defaultPageSize = 100
	maxPageSize     = 1000
	maxMaxItems     = 100_000
	maxFacilitators = 32
	// fetchTimeout bounds reading one facilitator (every page), beyond the
	// budget, which bounds it first. It is detached from the caller's
	// context: others may be waiting on it.
	fetchTimeout = maxBudget
	// requestTimeout bounds one HTTP request.
	requestTimeout = 20 * time.Second
	// maxRedirects bounds redirects per request; nothing secret is sent, so
	// following a few is harmless, and a loop is not.
	maxRedirects = 3
)

// Catalog finds priced endpoints. It is safe for concurrent use.
type Catalog struct {
	facilitators []string
	fileEntries  []Entry
	client       *http.Client
	ttl          time.Duration
	budget       time.Duration
	maxItems     int
	pageSize     int
	now          func() time.Time
	cache        *cache
}

// New checks cfg and reads the catalog files; a file problem is a
// *FileError naming the file, line and key.
func New(cfg Config) (*Catalog, error) {
	c := &Catalog{ttl: cfg.TTL, budget: cfg.Budget, maxItems: cfg.MaxItems, pageSize: cfg.PageSize, now: cfg.Now}
	switch {
	case cfg.TTL < 0:
		return nil, errors.New("catalog: TTL is negative")
	case cfg.Budget < 0 || cfg.Budget > maxBudget:
		return nil, fmt.Errorf("catalog: Budget %v is out of range (at most %v)", cfg.Budget, maxBudget)
	case cfg.MaxItems < 0 || cfg.MaxItems > maxMaxItems:
		return nil, fmt.Errorf("catalog: MaxItems %d is out of range 1..%d", cfg.MaxItems, maxMaxItems)
	case cfg.PageSize < 0 || cfg.PageSize > maxPageSize:
		return nil, fmt.Errorf("catalog: PageSize %d is out of range 1..%d", cfg.PageSize, maxPageSize)
	case len(cfg.Facilitators) > maxFacilitators:
		return nil, fmt.Errorf("catalog: %d facilitators; at most %d", len(cfg.Facilitators), maxFacilitators)
	}
	if c.ttl == 0 {
		c.ttl = defaultTTL
	}
	if c.pageSize == 0 {
		c.pageSize = defaultPageSize
	}
	if c.budget == 0 {
		c.budget = defaultBudget
	}
	if c.maxItems == 0 {
		c.maxItems = defaultMaxItems
	}
	if c.now == nil {
		c.now = time.Now
	}
	seen := map[string]bool{}
	for _, f := range cfg.Facilitators {
		base, err := facilitatorBase(f)
		if err != nil {
			return nil, err
		}
		if !seen[base] {
			seen[base] = true
			c.facilitators = append(c.facilitators, base)
		}
	}
	for _, path := range cfg.CatalogFiles {
		// The same endpoint in two files merges like any two sources do: a
		// shared catalog and a local one may both name it.
		entries, err := LoadFile(path)
		if err != nil {
			return nil, err
		}
		c.fileEntries = append(c.fileEntries, entries...)
	}
	transport := cfg.Transport
	if transport == nil {
		transport = http.DefaultTransport
	}
	c.client = &http.Client{
		Transport: transport,
		Timeout:   requestTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxRedirects {
				return fmt.Errorf("more than %d redirects", maxRedirects)
			}
			return nil
		},
	}
	c.cache = newCache(c.now)
	return c, nil
}

// facilitatorBase checks a facilitator base URL and drops a trailing slash.
func facilitatorBase(s string) (string, error) {
	if _, err := checkURL(s); err != nil {
		return "", fmt.Errorf("catalog: facilitator: %w", err)
	}
	u, _ := url.Parse(s)
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("catalog: facilitator %s: a base URL has no query or fragment", quote(s))
	}
	return strings.TrimRight(s, "/"), nil
}

// Query selects and orders entries.
type Query struct {
	// Text is free text, matched case-insensitively word by word against
	// URL, description, tags and method; "" matches everything.
	Text string
	// Network keeps entries with an offer on this network (CAIP-2 or a v1
	// name); "" means any.
	Network string
	// MaxPrice, when set, decides whether an offer is within the caller's
	// price limit (the caller knows decimals and USD values); an entry with
	// no offer passing, which includes one with no offers, is dropped.
	MaxPrice func(o Offer) bool
	// URL, when set, keeps only the entries for the endpoint of this URL,
	// the way sources are merged: its query is ignored (listings differ in
	// showing example parameters), scheme and host case and a default
	// port too. Method, when set with it, keeps only that method's entry.
	URL    string
	Method string
	// Extra are entries found another way (e.g. probed by the caller),
	// merged in like any source. An entry without Sources gets "caller".
	Extra []Entry
	// Limit bounds the entries returned; 0 means 20, at most 100.
	Limit int
}

const (
	defaultLimit = 20
	maxLimit     = 100
	maxTextRunes = 200
	maxTextWords = 16
)

// Results are the entries found, best first.
type Results struct {
	Entries []Entry
	// Total is how many entries matched before Limit.
	Total int
	// Skipped counts malformed or oversized listing items (and Extra
	// entries) that were left out.
	Skipped int
	// Problems describe sources that failed in whole or part, e.g.
	// "facilitator http://…: HTTP 500". A failing source is not fatal.
	Problems []string
	// Incomplete describes listings and searches read only in part: cut
	// by the time budget or a size bound, or marked partial by the
	// facilitator. Their entries are good; the ones past the cut were not
	// searched.
	Incomplete []string
}

// QueryError is a query the caller should correct, such as an unknown
// network or an over-long text.
type QueryError struct {
	Field string
	Msg   string
	Err   error
}

func (e *QueryError) Error() string { return "catalog: " + e.Field + ": " + e.Msg }
func (e *QueryError) Unwrap() error { return e.Err }

// stopWords are left out of a text query that has other words.
var stopWords = map[string]bool{
	"a": true, "an": true, "and": true, "any": true, "at": true, "by": true, "for": true, "from": true,
	"i": true, "in": true, "is": true, "it": true, "me": true, "my": true, "of": true, "on": true,
	"or": true, "some": true, "that": true, "the": true, "this": true, "to": true, "with": true,
}

// query is a checked Query.
type query struct {
	endpoint string // dedupKey of URL, without the method
	method   string
	text     string   // trimmed, for the facilitator search
	words    []string // lower-case words of text
	network  string
	maxPrice func(Offer) bool
	limit    int
}

func checkQuery(q Query) (query, error) {
	out := query{maxPrice: q.MaxPrice, limit: q.Limit}
	if q.URL != "" {
		out.endpoint = dedupKey("", q.URL)
		out.method = strings.ToUpper(q.Method)
	}
	text := strings.Join(strings.Fields(q.Text), " ")
	if n := len([]rune(text)); n > maxTextRunes {
		return out, &QueryError{Field: "text", Msg: fmt.Sprintf("%d characters; at most %d", n, maxTextRunes)}
	}
	out.text = text
	all := words(text)
	// Words like "the" or "for" match nearly everything as a substring;
	// an agent writes them, but they say nothing about what it wants.
	// They count only when the query has nothing else.
	keep := slices.ContainsFunc(all, func(w string) bool { return !stopWords[w] })
	seen := map[string]bool{}
	for _, w := range all {
		if !seen[w] && len(out.words) < maxTextWords && !(keep && stopWords[w]) {
			seen[w] = true
			out.words = append(out.words, w)
		}
	}
	if text != "" && len(out.words) == 0 {
		return out, &QueryError{Field: "text", Msg: "has no letters or digits to match"}
	}
	if q.Network != "" {
		n, _, err := x402.CAIP2(q.Network)
		if err != nil {
			return out, &QueryError{Field: "network", Msg: err.Error(), Err: err}
		}
		out.network = n
	}
	switch {
	case q.Limit < 0:
		return out, &QueryError{Field: "limit", Msg: "is negative"}
	case q.Limit == 0:
		out.limit = defaultLimit
	case q.Limit > maxLimit:
		out.limit = maxLimit
	}
	return out, nil
}

// Search gathers entries from every source, merges and de-duplicates them,
// filters them by q and returns them ranked (see the package
// documentation). A source that fails is reported in Problems; the error is
// for a bad query (*QueryError) or a context that ended.
func (c *Catalog) Search(ctx context.Context, q Query) (*Results, error) {
	qq, err := checkQuery(q)
	if err != nil {
		return nil, err
	}
	fromFacilitators := make([]*sourceResult, len(c.facilitators))
	var wg sync.WaitGroup
	for i, base := range c.facilitators {
		wg.Go(func() { fromFacilitators[i] = c.fromFacilitator(ctx, base, qq) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	m := newMerger()
	res := &Results{}
	for _, e := range c.fileEntries {
		m.add(e, false)
	}
	failing := map[string]bool{}
	for _, sr := range fromFacilitators {
		res.Skipped += sr.skipped
		res.Problems = append(res.Problems, sr.problems...)
		if sr.cut != "" {
			res.Incomplete = append(res.Incomplete, sr.cut)
		}
		if len(sr.problems) > 0 {
			failing[sr.source] = true
		}
		for _, e := range sr.entries {
			m.add(e, sr.serverMatched)
		}
	}
	for i, e := range q.Extra {
		if i >= maxExtra {
			res.Skipped += len(q.Extra) - i
			break
		}
		e, err := checkExtra(e)
		if err != nil {
			res.Skipped++
			continue
		}
		m.add(e, false)
	}

	ranked := rank(filter(m.entries(), qq), failing)
	res.Total = len(ranked)
	for _, cand := range ranked[:min(len(ranked), qq.limit)] {
		res.Entries = append(res.Entries, cand.Entry)
	}
	return res, nil
}

// fromFacilitator answers from one facilitator: its search when there is
// text and it has one, otherwise its whole listing, each from the cache
// when fresh. The budget starts now and is shared: a search that fails
// leaves the listing what remains of it. It never returns nil; a context
// that ends early gives an empty result, which Search then discards.
func (c *Catalog) fromFacilitator(ctx context.Context, base string, qq query) *sourceResult {
	source := "facilitator " + base
	deadline := time.Now().Add(c.budget)
	var searchProblem string
	if qq.text != "" && !c.cache.lacksSearch(base) {
		key := "search\x00" + base + "\x00" + qq.network + "\x00" + strings.ToLower(qq.text)
		sr, err := c.cache.get(ctx, source, key, c.ttlFor, func(ctx context.Context) *sourceResult {
			return c.fetchSearch(ctx, base, qq.text, qq.network, deadline)
		})
		switch {
		case err != nil:
			return &sourceResult{source: source}
		case sr.noSearch:
			c.cache.markNoSearch(base, c.ttl)
		case sr.searchErr != "":
			searchProblem = fmt.Sprintf("%s: search: %s; searched its full listing instead", source, sr.searchErr)
		default:
			return sr
		}
	}
	lr, err := c.cache.get(ctx, source, "list\x00"+base, c.ttlFor, func(ctx context.Context) *sourceResult {
		return c.fetchListing(ctx, base, deadline)
	})
	if err != nil {
		return &sourceResult{source: source}
	}
	if searchProblem == "" {
		return lr
	}
	// The cached listing is shared: add the search's problem to a copy.
	withProblem := *lr
	withProblem.problems = append([]string{searchProblem}, lr.problems...)
	return &withProblem
}

// ttlFor keeps a complete answer for the configured TTL, and one cut by a
// size bound too (reading it again would cut it again). One with a problem
// or cut by the time budget is kept briefly: long enough not to hammer a
// failing or slow facilitator, short enough to see it recover.
func (c *Catalog) ttlFor(sr *sourceResult) time.Duration {
	if len(sr.problems) > 0 || sr.searchErr != "" || sr.cutByTime {
		return min(c.ttl, failureTTL)
	}
	return c.ttl
}

// checkExtra holds a caller's entry to the bounds a listing item meets, so
// that a probed entry cannot carry what a listed one could not.
func checkExtra(e Entry) (Entry, error) {
	if _, err := checkURL(e.URL); err != nil {
		return Entry{}, err
	}
	method, err := checkMethod(e.Method)
	if err != nil {
		return Entry{}, err
	}
	e = cloneEntry(e)
	e.Method = method
	e.Description = cleanText(e.Description, maxDescriptionRunes)
	tags := make([]gjson.Result, 0, len(e.Tags))
	for _, t := range e.Tags {
		tags = append(tags, gjson.Result{Type: gjson.String, Str: t})
	}
	e.Tags = readTags(tags...)
	e.Input = boundedRaw(e.Input, maxInputBytes)
	e.Output = boundedRaw(e.Output, maxOutputBytes)
	e.PriceHint = cleanText(e.PriceHint, 32)
	if len(e.Offers) > maxOffers {
		e.Offers = e.Offers[:maxOffers]
	}
	for i := range e.Offers {
		o := &e.Offers[i]
		if o.Network != "" {
			o.Network, _, _ = x402.CAIP2(o.Network) // "" when unsupported
		}
		if o.Amount != nil && (o.Amount.Sign() <= 0 || o.Amount.Cmp(maxUint256) > 0) {
			o.Amount = nil
		}
		o.Scheme = cleanText(o.Scheme, maxSchemeRunes)
		o.Asset = cleanText(o.Asset, maxAddressRunes)
		o.PayTo = cleanText(o.PayTo, maxAddressRunes)
		if len(o.Raw) > maxItemBytes || !json.Valid(o.Raw) {
			o.Raw = nil
		}
	}
	if len(e.Sources) == 0 {
		e.Sources = []string{"caller"}
	}
	return e, nil
}

// cloneEntry copies everything an Entry refers to, so entries handed out
// cannot change the cache and entries handed in cannot change under us.
func cloneEntry(e Entry) Entry {
	e.Tags = append([]string(nil), e.Tags...)
	e.Sources = append([]string(nil), e.Sources...)
	e.Input = cloneRaw(e.Input)
	e.Output = cloneRaw(e.Output)
	if e.Offers != nil {
		offers := make([]Offer, len(e.Offers))
		for i, o := range e.Offers {
			if o.Amount != nil {
				o.Amount = new(big.Int).Set(o.Amount)
			}
			o.Raw = cloneRaw(o.Raw)
			offers[i] = o
		}
		e.Offers = offers
	}
	return e
}

func cloneRaw(r json.RawMessage) json.RawMessage {
	if r == nil {
		return nil
	}
	return append(json.RawMessage(nil), r...)
}
