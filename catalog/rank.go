package catalog

import (
	"cmp"
	"math/big"
	"slices"
	"strings"

	"github.com/tidwall/gjson"
)

// candidate is an entry being merged, filtered and ranked.
type candidate struct {
	Entry
	key string
	// serverMatched: a facilitator's search returned it, so it stays even
	// when our word match finds nothing (the facilitator may match by
	// meaning).
	serverMatched bool
	score         int
	failing       int
	priceStanding float64
}

// merger de-duplicates entries by dedupKey, in the order first seen.
type merger struct {
	byKey map[string]*candidate
	order []*candidate
}

func newMerger() *merger { return &merger{byKey: map[string]*candidate{}} }

// add merges e into the entry with the same method and URL (query string
// ignored), or adds it. The first source's URL is kept; of the rest, each
// field keeps the richest value: the longest description and input, the
// union of tags, offers and sources, the latest update, the highest
// version.
func (m *merger) add(e Entry, serverMatched bool) {
	key := dedupKey(e.Method, e.URL)
	c, ok := m.byKey[key]
	if !ok {
		c = &candidate{Entry: cloneEntry(e), key: key, serverMatched: serverMatched}
		m.byKey[key] = c
		m.order = append(m.order, c)
		return
	}
	c.serverMatched = c.serverMatched || serverMatched
	if len(e.Description) > len(c.Description) {
		c.Description = e.Description
	}
	if len(e.Input) > len(c.Input) {
		c.Input = cloneRaw(e.Input)
	}
	if len(e.Output) > len(c.Output) {
		c.Output = cloneRaw(e.Output)
	}
	for _, t := range e.Tags {
		if len(c.Tags) < maxTags && !slices.ContainsFunc(c.Tags, func(s string) bool { return strings.EqualFold(s, t) }) {
			c.Tags = append(c.Tags, t)
		}
	}
	for _, s := range e.Sources {
		if !slices.Contains(c.Sources, s) {
			c.Sources = append(c.Sources, s)
		}
	}
	for _, o := range cloneEntry(Entry{Offers: e.Offers}).Offers {
		if len(c.Offers) < maxOffers && !slices.ContainsFunc(c.Offers, func(p Offer) bool { return sameOffer(p, o) }) {
			c.Offers = append(c.Offers, o)
		}
	}
	if e.LastUpdated.After(c.LastUpdated) {
		c.LastUpdated = e.LastUpdated
	}
	c.X402Version = max(c.X402Version, e.X402Version)
	if c.PriceHint == "" {
		c.PriceHint = e.PriceHint
	}
	if c.NetworkHint == "" {
		c.NetworkHint = e.NetworkHint
	}
}

func (m *merger) entries() []*candidate { return m.order }

// sameOffer compares what a payment would be: scheme, network, asset,
// payee and amount. An unsupported network is compared as listed.
func sameOffer(a, b Offer) bool {
	return a.Scheme == b.Scheme && a.Network == b.Network &&
		(a.Network != "" || wireNetwork(a) == wireNetwork(b)) &&
		a.Asset == b.Asset && a.PayTo == b.PayTo &&
		(a.Amount == nil) == (b.Amount == nil) && (a.Amount == nil || a.Amount.Cmp(b.Amount) == 0)
}

// wireNetwork is the network as listed, for offers whose Network could not
// be normalised.
func wireNetwork(o Offer) string { return gjson.GetBytes(o.Raw, "network").String() }

// filter keeps the candidates that pass q's network, price and text tests,
// scoring the text match on the way.
func filter(cands []*candidate, q query) []*candidate {
	var out []*candidate
	for _, c := range cands {
		if q.endpoint != "" && (dedupKey("", c.URL) != q.endpoint || (q.method != "" && c.Method != q.method)) {
			continue
		}
		if q.network != "" && !onNetwork(c.Entry, q.network) {
			continue
		}
		if q.maxPrice != nil && !slices.ContainsFunc(c.Offers, func(o Offer) bool {
			// The callback gets a copy: it cannot change what is returned.
			return q.maxPrice(cloneEntry(Entry{Offers: []Offer{o}}).Offers[0])
		}) {
			continue
		}
		if len(q.words) > 0 {
			c.score = textScore(c.Entry, q.words)
			if c.score == 0 && !c.serverMatched {
				continue
			}
		}
		out = append(out, c)
	}
	return out
}

// onNetwork: an offer on the network, or, for an entry without offers, a
// catalog file's network hint. An entry that says nothing of its network
// does not pass a network filter.
func onNetwork(e Entry, network string) bool {
	if len(e.Offers) == 0 {
		return e.NetworkHint == network
	}
	return slices.ContainsFunc(e.Offers, func(o Offer) bool { return o.Network == network })
}

// Text match weights: a query word that is a whole word of the description
// or a tag says most about what the endpoint does; a part of one says
// less; the URL and method say least, as paths are often opaque.
const (
	scoreWord      = 4
	scoreSubstring = 2
	scoreURL       = 1
	scoreMethod    = 1

	minSubstringRunes = 3
)

// textScore adds, for each query word, the weight of the best place it
// matches. Zero means no word matched.
func textScore(e Entry, qwords []string) int {
	desc := strings.ToLower(e.Description)
	tags := strings.ToLower(strings.Join(e.Tags, " \x00 "))
	whole := map[string]bool{}
	for _, w := range words(desc + " " + tags) {
		whole[w] = true
	}
	u := strings.ToLower(e.URL)
	urlWords := map[string]bool{}
	for _, w := range words(u) {
		urlWords[w] = true
	}
	method := strings.ToLower(e.Method)
	score := 0
	for _, w := range qwords {
		// A word of one or two letters is part of too many others to
		// mean anything as a substring.
		short := len([]rune(w)) < minSubstringRunes
		switch {
		case whole[w]:
			score += scoreWord
		case !short && (strings.Contains(desc, w) || strings.Contains(tags, w)):
			score += scoreSubstring
		case urlWords[w] || (!short && strings.Contains(u, w)):
			score += scoreURL
		}
		if w == method {
			score += scoreMethod
		}
	}
	return score
}

// rank orders candidates best first:
//  1. higher text score;
//  2. fewer of its sources failing in this search;
//  3. better price standing (see priceStandings);
//  4. more recently updated;
//  5. URL, then method, so that equal entries come out in a stable order.
func rank(cands []*candidate, failing map[string]bool) []*candidate {
	for _, c := range cands {
		c.failing = 0
		for _, s := range c.Sources {
			if failing[s] {
				c.failing++
			}
		}
	}
	priceStandings(cands)
	slices.SortStableFunc(cands, func(a, b *candidate) int {
		return cmp.Or(
			cmp.Compare(b.score, a.score),
			cmp.Compare(a.failing, b.failing),
			cmp.Compare(a.priceStanding, b.priceStanding),
			b.LastUpdated.Compare(a.LastUpdated),
			cmp.Compare(a.URL, b.URL),
			cmp.Compare(a.Method, b.Method),
		)
	})
	return cands
}

// noPrice is the standing of an entry with no comparable offer: after
// every priced one.
const noPrice = 2.0

// priceStandings sets each candidate's priceStanding. Amounts are atomic
// units of one token, so they are compared only within one (network,
// asset): an entry's standing in an asset is the share of the entries
// offering that asset that are strictly cheaper there (0 = cheapest), and
// its priceStanding is its best standing in any asset it offers. That is a
// single number per entry, so the order is consistent however the assets
// overlap. Offers on networks x402.CAIP2 does not know are not compared.
func priceStandings(cands []*candidate) {
	type offerer struct {
		c   *candidate
		min *big.Int
	}
	byAsset := map[string][]offerer{}
	for _, c := range cands {
		c.priceStanding = noPrice
		lowest := map[string]*big.Int{}
		for _, o := range c.Offers {
			if o.Network == "" || o.Amount == nil {
				continue
			}
			k := o.Network + " " + strings.ToLower(o.Asset)
			if cur, ok := lowest[k]; !ok || o.Amount.Cmp(cur) < 0 {
				lowest[k] = o.Amount
			}
		}
		for k, amt := range lowest {
			byAsset[k] = append(byAsset[k], offerer{c, amt})
		}
	}
	for _, list := range byAsset {
		slices.SortFunc(list, func(a, b offerer) int { return a.min.Cmp(b.min) })
		cheaper := 0
		for i, of := range list {
			if i > 0 && list[i-1].min.Cmp(of.min) < 0 {
				cheaper = i
			}
			of.c.priceStanding = min(of.c.priceStanding, float64(cheaper)/float64(len(list)))
		}
	}
}
