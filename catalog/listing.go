package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/tidwall/gjson"

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
	// maxExtra bounds the entries a caller may pass in Query.Extra.
	maxExtra = 2000
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
	if !gjson.ValidBytes(raw) {
		return Entry{}, badItem("item is not valid JSON")
	}
	return parseItemJSON(gjson.ParseBytes(raw), now, nil)
}

// The members of each kind of object the parser reads, by index into a
// fixed array: one pass over the object, nothing allocated.
const (
	iType = iota
	iResource
	iURL
	iAccepts
	iVersion
	iMetadata
	iDescription
	iTags
	iLastUpdated
	iExtensions
	iDiscoveryInfo
	nItem
)

var itemKeys = []string{iType: "type", iResource: "resource", iURL: "url", iAccepts: "accepts", iVersion: "x402Version",
	iMetadata: "metadata", iDescription: "description", iTags: "tags", iLastUpdated: "lastUpdated",
	iExtensions: "extensions", iDiscoveryInfo: "discoveryInfo"}

const (
	oScheme = iota
	oNetwork
	oAmount
	oMaxAmount
	oAsset
	oPayTo
	oDescription
	oOutputSchema
	nOffer
)

var offerKeys = []string{oScheme: "scheme", oNetwork: "network", oAmount: "amount", oMaxAmount: "maxAmountRequired",
	oAsset: "asset", oPayTo: "payTo", oDescription: "description", oOutputSchema: "outputSchema"}

// Metadata, a v2 resource object and a bazaar info object share one set:
// each reads the members it needs of it.
const (
	mInput = iota
	mOutput
	mDescription
	mTags
	mCategory
	mBazaar
	mInfo
	mURL
	nMeta
)

var metaKeys = []string{mInput: "input", mOutput: "output", mDescription: "description", mTags: "tags",
	mCategory: "category", mBazaar: "bazaar", mInfo: "info", mURL: "url"}

type (
	itemFields  [nItem]gjson.Result
	offerFields [nOffer]gjson.Result
	metaFields  [nMeta]gjson.Result
)

// pick reads the members of object v named in keys into out, matching
// keys exactly and taking the last of a repeated key, as encoding/json
// does (listings are shown, never paid from, so the ambiguity that the
// wire format refuses costs nothing here). It reports whether v is an
// object.
func pick(v gjson.Result, keys []string, out []gjson.Result) bool {
	if !v.IsObject() {
		return false
	}
	v.ForEach(func(k, val gjson.Result) bool {
		for i, key := range keys {
			if k.Str == key {
				out[i] = val
				break
			}
		}
		return true
	})
	return true
}

// member is the last member of object v named key; a Result that does not
// exist when there is none or v is not an object.
func member(v gjson.Result, key string) gjson.Result {
	var out [1]gjson.Result
	pick(v, []string{key}, out[:])
	return out[0]
}

// parseItemJSON is parseItem of an item already known to be valid JSON (a
// page is validated whole). m, when not nil, remembers what was computed of
// the addresses and networks seen, which repeat across a listing.
func parseItemJSON(it gjson.Result, now time.Time, m *pageMemo) (Entry, error) {
	if len(it.Raw) > maxItemBytes {
		return Entry{}, badItem("item is %d bytes; at most %d are read", len(it.Raw), maxItemBytes)
	}
	if tooDeep(it.Raw, maxDepth) {
		return Entry{}, badItem("item nests deeper than %d levels", maxDepth)
	}
	var f itemFields
	if !pick(it, itemKeys, f[:]) {
		return Entry{}, badItem("item is not a JSON object")
	}
	if t := f[iType]; !isNull(t) {
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
	var res metaFields
	pick(f[iResource], metaKeys, res[:])
	rawURL, ok := jsonString(f[iResource])
	if !ok {
		rawURL, ok = jsonString(res[mURL])
	}
	if !ok {
		rawURL, ok = jsonString(f[iURL])
	}
	if !ok {
		return Entry{}, badItem("the resource URL is missing")
	}
	u, err := checkURL(rawURL)
	if err != nil {
		return Entry{}, badItem("resource: %v", err)
	}
	// A copy, not a slice of the page: the entry outlives it in the cache.
	e.URL = strings.Clone(u)

	var opts []offerFields
	if a := f[iAccepts]; !isNull(a) {
		if !a.IsArray() {
			return Entry{}, badItem("accepts is not an array")
		}
		// Collected without Array's allocation; one past the bound is
		// enough to refuse the item.
		var buf [maxOffers + 1]gjson.Result
		n := 0
		a.ForEach(func(_, v gjson.Result) bool {
			buf[n] = v
			n++
			return n <= maxOffers
		})
		if n > maxOffers {
			return Entry{}, badItem("accepts has more than %d options", maxOffers)
		}
		accepts := buf[:n]
		opts = make([]offerFields, len(accepts))
		e.Offers = make([]Offer, len(accepts))
		for i, v := range accepts {
			if e.Offers[i], err = parseOffer(v, &opts[i], m); err != nil {
				return Entry{}, badItem("accepts[%d]: %v", i, err)
			}
		}
	}
	e.X402Version = itemVersion(f[iVersion], opts)

	var meta metaFields
	pick(f[iMetadata], metaKeys, meta[:])
	if info, ok := bazaarInfo(&f, &meta, opts); ok {
		e.Input = boundedObject(info[mInput], maxInputBytes)
		e.Output = boundedObject(info[mOutput], maxOutputBytes)
		// The method is read from the input only when the input is kept.
		if e.Input != nil {
			if m, ok := jsonString(member(info[mInput], "method")); ok {
				if e.Method, err = checkMethod(m); err != nil {
					return Entry{}, badItem("input: %v", err)
				}
			}
		}
	}
	if e.Method == "" {
		e.Method = "GET"
	}

	descs := [...]gjson.Result{f[iDescription], res[mDescription], meta[mDescription]}
	for _, d := range descs {
		if s, ok := jsonString(d); ok {
			if e.Description = cleanText(s, maxDescriptionRunes); e.Description != "" {
				break
			}
		}
	}
	for i := 0; e.Description == "" && i < len(opts); i++ {
		if s, ok := jsonString(opts[i][oDescription]); ok { // v1 options carry it
			e.Description = cleanText(s, maxDescriptionRunes)
		}
	}
	e.Tags = readTags(f[iTags], res[mTags], meta[mTags], meta[mCategory])
	e.LastUpdated = readTime(f[iLastUpdated], now)
	return e, nil
}

// parseOffer reads one accepts entry into of and an Offer. Only what
// identifies and prices the offer is required (scheme, network, amount):
// the offer is shown, never paid, so fields a payment needs are the live
// 402's business.
func parseOffer(raw gjson.Result, of *offerFields, m *pageMemo) (Offer, error) {
	if !pick(raw, offerKeys, of[:]) {
		return Offer{}, errors.New("not a JSON object")
	}
	scheme, ok := jsonString(of[oScheme])
	if !ok || scheme == "" {
		return Offer{}, errors.New("scheme is missing")
	}
	network, ok := jsonString(of[oNetwork])
	if !ok || network == "" {
		return Offer{}, errors.New("network is missing")
	}
	amount, err := readAmount(of)
	if err != nil {
		return Offer{}, err
	}
	o := Offer{
		Scheme: cleanText(scheme, maxSchemeRunes),
		Amount: amount,
		Asset:  readAddress(of[oAsset], m),
		PayTo:  readAddress(of[oPayTo], m),
		Raw:    json.RawMessage(raw.Raw),
		// "" for a network x402.CAIP2 does not know.
		Network: m.remember(m.networks(), network, func() string {
			caip2, _, err := x402.CAIP2(network)
			if err != nil {
				return ""
			}
			return strings.Clone(caip2) // not a slice of the page
		}),
	}
	return o, nil
}

// readAmount reads amount (v2) or maxAmountRequired (v1); a listing may mix
// both shapes, so either is accepted, but not both with different values.
func readAmount(of *offerFields) (*big.Int, error) {
	a, m := of[oAmount], of[oMaxAmount]
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
func parseAmount(key string, raw gjson.Result) (*big.Int, error) {
	s, ok := jsonString(raw)
	if !ok {
		s = raw.Raw
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
func readAddress(raw gjson.Result, m *pageMemo) string {
	s, ok := jsonString(raw)
	if !ok {
		return ""
	}
	return m.remember(m.addresses(), s, func() string {
		if strings.HasPrefix(s, "0x") && common.IsHexAddress(s) {
			return common.HexToAddress(s).Hex()
		}
		return cleanText(s, maxAddressRunes)
	})
}

// pageMemo keeps what was computed of the values a listing repeats: the
// EIP-55 form of its few assets and payees (a checksum costs a Keccak hash)
// and the CAIP-2 id of its networks, once per page rather than once per
// item. A nil *pageMemo remembers nothing.
type pageMemo struct {
	addrs, nets map[string]string
}

func newPageMemo() *pageMemo {
	return &pageMemo{addrs: map[string]string{}, nets: map[string]string{}}
}

func (m *pageMemo) addresses() map[string]string {
	if m == nil {
		return nil
	}
	return m.addrs
}

func (m *pageMemo) networks() map[string]string {
	if m == nil {
		return nil
	}
	return m.nets
}

// remember returns table[key], computing and keeping it while the table
// has room; a nil table remembers nothing. Keys are copied, as key may be
// a slice of a page.
func (m *pageMemo) remember(table map[string]string, key string, compute func() string) string {
	if v, ok := table[key]; ok {
		return v
	}
	v := compute()
	if table != nil && len(table) < maxMemo {
		table[strings.Clone(key)] = v
	}
	return v
}

// maxMemo bounds each table of a pageMemo: a page names a few assets,
// payees and networks many times, a hostile one many of each once.
const maxMemo = 256

// itemVersion is the item's x402Version when it is 1 or 2, otherwise the
// version its options' shape implies, otherwise 0.
func itemVersion(raw gjson.Result, opts []offerFields) int {
	switch raw.Raw {
	case "1":
		return 1
	case "2":
		return 2
	}
	for i := range opts {
		if !isNull(opts[i][oMaxAmount]) {
			return 1
		}
		if !isNull(opts[i][oAmount]) {
			return 2
		}
	}
	return 0
}

// bazaarInfo finds the bazaar "info" object ({input, output}) wherever this
// item's facilitator put it: the metadata itself (the reference listing),
// metadata.bazaar(.info), extensions.bazaar.info (newer v2 listings),
// discoveryInfo, or a v1 option's outputSchema. Only its input and output
// are read.
func bazaarInfo(f *itemFields, meta *metaFields, opts []offerFields) (metaFields, bool) {
	hasInfo := func(m *metaFields) bool { return !isNull(m[mInput]) || !isNull(m[mOutput]) }
	if hasInfo(meta) {
		return *meta, true
	}
	var bz, m metaFields
	pick(meta[mBazaar], metaKeys, bz[:])
	cands := [...]func() gjson.Result{
		func() gjson.Result { return bz[mInfo] },
		func() gjson.Result { return meta[mBazaar] },
		func() gjson.Result { return member(member(f[iExtensions], "bazaar"), "info") },
		func() gjson.Result { return f[iDiscoveryInfo] },
	}
	for _, c := range cands {
		if m = (metaFields{}); pick(c(), metaKeys, m[:]) && hasInfo(&m) {
			return m, true
		}
	}
	for i := range opts {
		if m = (metaFields{}); pick(opts[i][oOutputSchema], metaKeys, m[:]) && hasInfo(&m) {
			return m, true
		}
	}
	return m, false
}

// boundedObject returns raw compacted when it is a JSON object of at most
// max bytes, and nil otherwise: a schema cut in half is worse than none.
func boundedObject(raw gjson.Result, max int) json.RawMessage {
	if !raw.IsObject() {
		return nil
	}
	if b := compactJSON(raw.Raw, max); b != nil {
		return b
	}
	return nil
}

// boundedRaw is boundedObject of JSON text that may not be valid.
func boundedRaw(raw json.RawMessage, max int) json.RawMessage {
	if !gjson.ValidBytes(raw) {
		return nil
	}
	return boundedObject(gjson.ParseBytes(raw), max)
}

// compactJSON drops the white space outside strings from valid JSON, as
// json.Compact does, in a new slice; nil when the result passes max bytes.
func compactJSON(s string, max int) []byte {
	out := make([]byte, 0, min(len(s), max))
	inString, escaped := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			continue
		}
		if len(out) == max {
			return nil
		}
		out = append(out, c)
	}
	return out
}

// readTags collects tags from every place listings put them: arrays of
// strings, or a single category string. Non-string entries are dropped one
// by one (as the bazaar specification's soft-drop rule does), duplicates
// are folded case-insensitively, and the list is bounded.
func readTags(raws ...gjson.Result) []string {
	var out []string
	add := func(s string) {
		if len(out) >= maxTags {
			return
		}
		s = cleanText(s, maxTagRunes)
		if s == "" || slices.ContainsFunc(out, func(t string) bool { return strings.EqualFold(t, s) }) {
			return
		}
		out = append(out, s)
	}
	for _, raw := range raws {
		if s, ok := jsonString(raw); ok {
			add(s)
			continue
		}
		if !raw.IsArray() {
			continue
		}
		raw.ForEach(func(_, a gjson.Result) bool {
			if s, ok := jsonString(a); ok {
				add(s)
			}
			return true
		})
	}
	return out
}

// readTime reads lastUpdated: Unix seconds or milliseconds as a number (or
// a string holding one), or an RFC 3339 string (a date, or a time without
// zone, is read as UTC). Anything unreadable, not positive, or in the future
// beyond futureSlack is the zero time: unknown, ranked last.
func readTime(raw gjson.Result, now time.Time) time.Time {
	var t time.Time
	num := raw.Raw
	if s, ok := jsonString(raw); ok {
		num = s // a number written as a string is read as the number
		// Every layout starts with a four-digit year and a dash.
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", time.DateOnly} {
			if len(s) < len(time.DateOnly) || s[4] != '-' {
				break
			}
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

// jsonString is v's text when v is a JSON string. JSON null reads as "",
// as encoding/json decodes null into a string: a null field is an empty
// one.
func jsonString(v gjson.Result) (string, bool) {
	switch v.Type {
	case gjson.String:
		return v.Str, true
	case gjson.Null:
		return "", v.Exists()
	}
	return "", false
}

func isNull(v gjson.Result) bool { return v.Type == gjson.Null }
