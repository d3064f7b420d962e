package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/x402-mcp/x402-mcp/x402"
)

// Bounds on what one facilitator can make us read and hold. Real listings
// are far inside them: a bazaar item with a few options and a bazaar
// example is 1-3 KiB.
const (
	// maxPageBytes bounds one listing or search response body.
	maxPageBytes = 1 << 20
	// maxItemBytes bounds one listing item; an item is at most a 402's worth
	// of options plus its bazaar description, so it gets a 402 body's bound.
	maxItemBytes = x402.MaxBodyBytes
	// maxItemsPerPage bounds the items taken from one page, whatever limit
	// the facilitator chose to honour.
	maxItemsPerPage = 1000
	// maxItemsPerSource bounds the items read from one facilitator over all
	// its pages, and the entries a caller may pass in Query.Extra.
	maxItemsPerSource = 2000
	// maxDepth bounds JSON nesting in an item, as the wire format does for
	// a 402: bazaar examples and schemas nest, but not 32 levels.
	maxDepth = x402.MaxDepth
	// maxOffers bounds accepts in one item, as in a 402.
	maxOffers = x402.MaxOptions

	// Display bounds: what an agent is shown must fit its context.
	maxDescriptionRunes = 500
	maxTags             = 10
	maxTagRunes         = 50
	maxSchemeRunes      = 32
	maxAddressRunes     = 64 // a non-EVM address (Solana, Stellar) shown as is
	maxInputBytes       = 8 << 10
	maxOutputBytes      = 4 << 10
	// maxAmountDigits is the length of 2^256-1 in decimal.
	maxAmountDigits = 78
	// futureSlack is how far in the future a lastUpdated may lie before it
	// is disbelieved: clocks drift, but a listing dated next year is lying
	// to rank first.
	futureSlack = 24 * time.Hour
)

var maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

// errNotHTTP marks an item for another kind of resource (an MCP tool, a
// facilitator listing itself): well formed, just not what this package
// finds, so it is neither kept nor counted as skipped.
var errNotHTTP = errors.New("not an http resource")

// errPageTooLarge is what capReader returns past maxPageBytes.
var errPageTooLarge = fmt.Errorf("the page exceeds %d bytes", maxPageBytes)

// capReader reads at most left bytes and fails with errPageTooLarge when
// there is more, so that "too large" is told apart from "cut short".
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			return 0, errPageTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// page is one decoded listing or search response.
type page struct {
	items   []json.RawMessage // items within the per-item and per-page bounds
	count   int               // elements seen in the items array, kept or not
	dropped int               // elements over a bound, not kept
	total   int               // pagination.total; -1 when absent
	cursor  string            // search pagination.cursor; "" when absent
}

// decodePage reads a listing ({items, pagination}) or search ({resources,
// pagination}) response item by item, so that items before a problem are
// kept. The page returned is never nil; an error means it is incomplete:
// the JSON broke off, was not a listing, or passed maxPageBytes (the item
// being read then is counted in dropped).
func decodePage(r io.Reader) (*page, error) {
	p := &page{total: -1}
	dec := json.NewDecoder(r)
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return p, pageErr(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return p, errors.New("not a JSON listing: the response is not a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return p, pageErr(err)
		}
		key, _ := tok.(string) // the decoder yields only strings as keys
		switch key {
		case "items", "resources":
			if err := p.readItems(dec); err != nil {
				return p, err
			}
		case "pagination":
			var pg struct {
				Total  json.Number `json:"total"`
				Cursor *string     `json:"cursor"`
			}
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return p, pageErr(err)
			}
			// A malformed pagination is not fatal: the page's items are
			// still good, and pagination then stops on a short page.
			if json.Unmarshal(raw, &pg) == nil {
				if n, err := strconv.Atoi(pg.Total.String()); err == nil && n >= 0 {
					p.total = n
				}
				if pg.Cursor != nil && len(*pg.Cursor) <= 1024 {
					p.cursor = *pg.Cursor
				}
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return p, pageErr(err)
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return p, pageErr(err)
	}
	// Whatever follows the object was not meant for a JSON reader; the
	// items are whole, but the answer is not a listing.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return p, errors.New("not a JSON listing: data follows the JSON object")
	}
	return p, nil
}

// readItems reads the array of a listing's items key.
func (p *page) readItems(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return pageErr(err)
	}
	if tok == nil {
		return nil // "items": null is an empty page
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return errors.New("not a JSON listing: its items are not an array")
	}
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, errPageTooLarge) {
				p.count++
				p.dropped++
			}
			return pageErr(err)
		}
		p.count++
		if len(raw) > maxItemBytes || len(p.items) >= maxItemsPerPage {
			p.dropped++
			continue
		}
		p.items = append(p.items, raw)
	}
	_, err = dec.Token() // ']'
	return pageErr(err)
}

// pageErr words a decoding error for a Problem.
func pageErr(err error) error {
	var syn *json.SyntaxError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errPageTooLarge):
		return err
	case errors.As(err, &syn):
		return fmt.Errorf("not a JSON listing: invalid JSON at byte %d", syn.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("the listing is cut short")
	}
	return fmt.Errorf("reading the listing: %w", err)
}

// itemError says why a listing item was skipped.
type itemError struct{ msg string }

func (e *itemError) Error() string { return e.msg }

func badItem(format string, args ...any) error {
	return &itemError{msg: fmt.Sprintf(format, args...)}
}

// parseItem reads one listing item, v1- or v2-shaped, into an Entry. now
// is used only to disbelieve a lastUpdated in the future. It returns
// errNotHTTP for an item of another type, and an *itemError for an item
// that is malformed or over a bound; it never panics, whatever raw holds.
func parseItem(raw []byte, now time.Time) (Entry, error) {
	if len(raw) > maxItemBytes {
		return Entry{}, badItem("item is %d bytes; at most %d are read", len(raw), maxItemBytes)
	}
	if tooDeep(raw, maxDepth) {
		return Entry{}, badItem("item nests deeper than %d levels", maxDepth)
	}
	f := object(raw)
	if f == nil {
		return Entry{}, badItem("item is not a JSON object")
	}
	if t, ok := f["type"]; ok && !isNull(t) {
		s, ok := jsonString(t)
		if !ok {
			return Entry{}, badItem("type is not a string")
		}
		if !strings.EqualFold(s, "http") {
			return Entry{}, errNotHTTP
		}
	}

	// The URL: "resource" as a string (v1 and the reference v2 listing),
	// a v2 resource object {url, description, tags}, or "url" (some
	// third-party facilitators).
	var e Entry
	resObj := object(f["resource"])
	rawURL, ok := jsonString(f["resource"])
	if !ok {
		rawURL, ok = jsonString(resObj["url"])
	}
	if !ok {
		rawURL, ok = jsonString(f["url"])
	}
	if !ok {
		return Entry{}, badItem("the resource URL is missing")
	}
	u, err := checkURL(rawURL)
	if err != nil {
		return Entry{}, badItem("resource: %v", err)
	}
	e.URL = u

	var accepts []json.RawMessage
	if a := f["accepts"]; !isNull(a) {
		if err := json.Unmarshal(a, &accepts); err != nil {
			return Entry{}, badItem("accepts is not an array")
		}
	}
	if len(accepts) > maxOffers {
		return Entry{}, badItem("accepts has %d options; at most %d are read", len(accepts), maxOffers)
	}
	opts := make([]map[string]json.RawMessage, 0, len(accepts))
	for i, a := range accepts {
		o, of, err := parseOffer(a)
		if err != nil {
			return Entry{}, badItem("accepts[%d]: %v", i, err)
		}
		e.Offers = append(e.Offers, o)
		opts = append(opts, of)
	}
	e.X402Version = itemVersion(f["x402Version"], opts)

	meta := object(f["metadata"])
	if info := bazaarInfo(f, meta, opts); info != nil {
		e.Input = boundedObject(info["input"], maxInputBytes)
		e.Output = boundedObject(info["output"], maxOutputBytes)
	}
	method := ""
	if m, ok := jsonString(object(e.Input)["method"]); ok {
		method = m
	}
	if e.Method, err = checkMethod(method); err != nil {
		return Entry{}, badItem("input: %v", err)
	}

	descs := []json.RawMessage{f["description"], resObj["description"], meta["description"]}
	for _, of := range opts {
		descs = append(descs, of["description"]) // v1 options carry it
	}
	for _, d := range descs {
		if s, ok := jsonString(d); ok {
			if e.Description = cleanText(s, maxDescriptionRunes); e.Description != "" {
				break
			}
		}
	}
	e.Tags = readTags(f["tags"], resObj["tags"], meta["tags"], meta["category"])
	e.LastUpdated = readTime(f["lastUpdated"], now)
	return e, nil
}

// parseOffer reads one accepts entry. Only what identifies and prices the
// offer is required (scheme, network, amount): the offer is shown, never
// paid, so fields a payment needs are the live 402's business.
func parseOffer(raw json.RawMessage) (Offer, map[string]json.RawMessage, error) {
	f := object(raw)
	if f == nil {
		return Offer{}, nil, errors.New("not a JSON object")
	}
	scheme, ok := jsonString(f["scheme"])
	if !ok || scheme == "" {
		return Offer{}, nil, errors.New("scheme is missing")
	}
	network, ok := jsonString(f["network"])
	if !ok || network == "" {
		return Offer{}, nil, errors.New("network is missing")
	}
	amount, err := readAmount(f)
	if err != nil {
		return Offer{}, nil, err
	}
	o := Offer{
		Scheme: cleanText(scheme, maxSchemeRunes),
		Amount: amount,
		Asset:  readAddress(f["asset"]),
		PayTo:  readAddress(f["payTo"]),
		Raw:    append(json.RawMessage(nil), raw...),
	}
	if caip2, _, err := x402.CAIP2(network); err == nil {
		o.Network = caip2
	}
	return o, f, nil
}

// readAmount reads amount (v2) or maxAmountRequired (v1); a listing may mix
// both shapes, so either is accepted, but not both with different values.
func readAmount(f map[string]json.RawMessage) (*big.Int, error) {
	a, m := f["amount"], f["maxAmountRequired"]
	switch {
	case isNull(a) && isNull(m):
		return nil, errors.New("amount is missing")
	case isNull(a):
		return parseAmount("maxAmountRequired", m)
	case isNull(m):
		return parseAmount("amount", a)
	}
	av, err := parseAmount("amount", a)
	if err != nil {
		return nil, err
	}
	mv, err := parseAmount("maxAmountRequired", m)
	if err != nil {
		return nil, err
	}
	if av.Cmp(mv) != 0 {
		return nil, errors.New("amount and maxAmountRequired differ")
	}
	return av, nil
}

// parseAmount accepts a positive integer of atomic units below 2^256, as a
// decimal string (the protocol's form) or, since some listings re-encode
// numbers, a JSON integer literal. Anything with a sign, fraction or
// exponent is refused: an amount with two readings is not one to rank by.
func parseAmount(key string, raw json.RawMessage) (*big.Int, error) {
	s, ok := jsonString(raw)
	if !ok {
		s = string(bytes.TrimSpace(raw))
	}
	switch {
	case s == "" || len(s) > maxAmountDigits || strings.ContainsFunc(s, func(r rune) bool { return r < '0' || r > '9' }):
		return nil, fmt.Errorf("%s %s is not a whole number of atomic units", key, quote(s))
	case len(s) > 1 && s[0] == '0':
		return nil, fmt.Errorf("%s %s has leading zeros", key, quote(s))
	}
	n, _ := new(big.Int).SetString(s, 10)
	if n.Sign() == 0 || n.Cmp(maxUint256) > 0 {
		return nil, fmt.Errorf("%s %s is not between 1 and 2^256-1", key, quote(s))
	}
	return n, nil
}

// readAddress shows an EVM address in EIP-55 form; anything else (a
// Solana mint, a symbol a careless server put there) is shown cleaned.
func readAddress(raw json.RawMessage) string {
	s, ok := jsonString(raw)
	if !ok {
		return ""
	}
	if strings.HasPrefix(s, "0x") && common.IsHexAddress(s) {
		return common.HexToAddress(s).Hex()
	}
	return cleanText(s, maxAddressRunes)
}

// itemVersion is the item's x402Version when it is 1 or 2, otherwise the
// version its options' shape implies, otherwise 0.
func itemVersion(raw json.RawMessage, opts []map[string]json.RawMessage) int {
	switch strings.TrimSpace(string(raw)) {
	case "1":
		return 1
	case "2":
		return 2
	}
	for _, of := range opts {
		if !isNull(of["maxAmountRequired"]) {
			return 1
		}
		if !isNull(of["amount"]) {
			return 2
		}
	}
	return 0
}

// bazaarInfo finds the bazaar "info" object ({input, output}) wherever this
// item's facilitator put it: the metadata itself (the reference listing),
// metadata.bazaar(.info), extensions.bazaar.info (newer v2 listings),
// discoveryInfo, or a v1 option's outputSchema.
func bazaarInfo(f, meta map[string]json.RawMessage, opts []map[string]json.RawMessage) map[string]json.RawMessage {
	hasInfo := func(m map[string]json.RawMessage) bool {
		return m != nil && (!isNull(m["input"]) || !isNull(m["output"]))
	}
	bz := object(meta["bazaar"])
	cands := []map[string]json.RawMessage{
		meta,
		object(bz["info"]),
		bz,
		object(object(object(f["extensions"])["bazaar"])["info"]),
		object(f["discoveryInfo"]),
	}
	for _, of := range opts {
		cands = append(cands, object(of["outputSchema"]))
	}
	for _, c := range cands {
		if hasInfo(c) {
			return c
		}
	}
	return nil
}

// boundedObject returns raw compacted when it is a JSON object of at most
// max bytes, and nil otherwise: a schema cut in half is worse than none.
func boundedObject(raw json.RawMessage, max int) json.RawMessage {
	if object(raw) == nil {
		return nil
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil || b.Len() > max {
		return nil
	}
	return json.RawMessage(b.Bytes())
}

// readTags collects tags from every place listings put them: arrays of
// strings, or a single category string. Non-string entries are dropped one
// by one (as the bazaar specification's soft-drop rule does), duplicates
// are folded case-insensitively, and the list is bounded.
func readTags(raws ...json.RawMessage) []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		s = cleanText(s, maxTagRunes)
		if s == "" || seen[strings.ToLower(s)] || len(out) >= maxTags {
			return
		}
		seen[strings.ToLower(s)] = true
		out = append(out, s)
	}
	for _, raw := range raws {
		if s, ok := jsonString(raw); ok {
			add(s)
			continue
		}
		var arr []json.RawMessage
		if json.Unmarshal(raw, &arr) != nil {
			continue
		}
		for _, a := range arr {
			if s, ok := jsonString(a); ok {
				add(s)
			}
		}
	}
	return out
}

// readTime reads lastUpdated: Unix seconds or milliseconds as a number (or
// a string holding one), or an RFC 3339 string (a date, or a time without
// zone, is read as UTC). Anything unreadable, not positive, or in the future
// beyond futureSlack is the zero time: unknown, ranked last.
func readTime(raw json.RawMessage, now time.Time) time.Time {
	var t time.Time
	num := strings.TrimSpace(string(raw))
	if s, ok := jsonString(raw); ok {
		num = s // a number written as a string is read as the number
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", time.DateOnly} {
			if parsed, err := time.Parse(layout, s); err == nil {
				t = parsed.UTC()
				break
			}
		}
	}
	if t.IsZero() {
		v, err := strconv.ParseFloat(num, 64)
		// 1e12 seconds is the year 33658, so larger values are milliseconds;
		// 1e15 milliseconds is the same year again, beyond which nothing is
		// a date.
		if err != nil || v <= 0 || v >= 1e15 {
			return time.Time{}
		}
		if v >= 1e12 {
			t = time.UnixMilli(int64(v)).UTC()
		} else {
			t = time.Unix(int64(v), 0).UTC()
		}
	}
	if t.After(now.Add(futureSlack)) || t.Year() < 1970 {
		return time.Time{}
	}
	return t
}

// object decodes raw as a JSON object with exact key matching; nil if raw
// is anything else. Duplicate keys resolve as encoding/json does (the last
// wins): listings are shown, never paid from, so the ambiguity that the
// wire format refuses costs nothing here.
func object(raw json.RawMessage) map[string]json.RawMessage {
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}
