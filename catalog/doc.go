// Package catalog finds priced HTTP endpoints for an agent to buy: it reads
// the discovery ("bazaar") listings of x402 facilitators and the operator's
// catalog files, merges what they say about each endpoint, and returns the
// entries that match a query, best first. An agent cannot buy what it
// cannot find; this package is how it finds.
//
// It decides nothing about paying. The policy pre-verdict shown next to a
// result is computed by the caller (package tools), and a payment is made
// by package pay from the live 402.
//
// # Invariants
//
//   - Listings are untrusted input, and nothing read from one is ever used
//     to pay. Offer amounts, assets and payees are for display and ranking
//     only: a payment re-reads the endpoint's live 402 and pays what that
//     says, under the policy. A listing can lie about a price; it cannot
//     make anyone pay it. A catalog file's price is a display hint (USD),
//     never an offer.
//   - Everything read from outside is bounded before it is held: 1 MiB per
//     response page, 64 KiB and 32 levels of JSON nesting per listing
//     item, 32 offers per item, 1000 items per page; per facilitator
//     listing 10,000 entries (Config.MaxItems) and 8 MiB of responses, per
//     search 1,000 results, 2 MiB and 100 cursor pages; the cache 256
//     answers and 128 MiB of responses; redirects and request times. What
//     the cache holds is about the bytes read: entries are cleaned, bounded
//     copies of items.
//   - Time is bounded too: reading one facilitator for one Search (its
//     search, the listing it falls back to, every page) stops at
//     Config.Budget (5 seconds). A listing or search cut by the budget or a
//     size bound keeps what was read, is not a problem, and is reported in
//     Results.Incomplete, as is a search the facilitator marks
//     partialResults.
//     Descriptions are cut to 500 characters, tags to 10 of 50 characters,
//     a bazaar input to 8 KiB and output to 4 KiB (a larger one is dropped,
//     not cut: half a JSON example is worse than none).
//   - A malformed or oversized item (no resource URL, a URL that is not
//     http or https, unreadable accepts, an amount that is not a positive
//     whole number, nesting too deep, too many bytes) is skipped and
//     counted in Results.Skipped; it never fails the search. A page that
//     breaks off or passes its bound keeps the items read before the
//     problem, and the source says so in Results.Problems.
//   - Facilitators are only sent GET requests for their discovery
//     endpoints, carrying no credential and no payment header.
//   - A failing source (an error status, garbage, a timeout) is reported in
//     Results.Problems and the other sources are still returned. Search
//     returns an error only for a query the caller must correct
//     (*QueryError) or a context that ended.
//   - Text that reaches an agent is cleaned: no control characters, no
//     invisible format characters, bounded length. Quoted untrusted values
//     in messages are truncated and escaped.
//   - Amounts are compared only within one (network, asset), in atomic
//     units; the package never converts between tokens or guesses
//     decimals.
//   - At most one request per cache key (a facilitator's listing, or one
//     search query at one facilitator) is in flight; concurrent searches
//     share it. Cached answers are never modified, and Search returns
//     copies, so a caller cannot change what another caller sees.
//
// # Sources
//
// A facilitator's listing is read from
// {base}/discovery/resources?type=http&limit=&offset=, page by page to its
// end within the budget and bounds, and kept for Config.TTL (an answer with
// a problem, or cut by the time budget, for at most 30 seconds; one cut by
// a size bound for the TTL, as reading it again would cut it again). With
// query text, {base}/discovery/search?query=&type=http (and &network= when
// the query names one; the filter is advisory, and applied here too) is
// asked first, following pagination.cursor to the last page, and kept for
// the TTL per query and network; a 404, 405 or 501 means the facilitator
// has none (remembered for the TTL) and its listing is searched here
// instead; another failure is a problem, and the listing is searched too,
// in what remains of the budget. Search results are kept even when our
// word match finds nothing in them, since a facilitator may match by
// meaning.
//
// A valid page is read in one pass with gjson; a broken or oversized one
// with encoding/json's streaming decoder, which keeps the items before the
// problem. Both apply the same checks.
//
// Items may be v1- or v2-shaped in one list: the URL is "resource" (a
// string, or a v2 resource object with url), or "url"; options carry
// "amount" or "maxAmountRequired"; networks are v1 names or CAIP-2 ids,
// normalised with x402.CAIP2 (Offer.Network is "" for one it does not
// know); "lastUpdated" is Unix seconds or milliseconds (a number, or a
// string holding one) or an RFC 3339 string (a time more than a day ahead
// is disbelieved, so a listing cannot date itself first). The bazaar input
// and output are read from the item's metadata, metadata.bazaar.info,
// extensions.bazaar.info, discoveryInfo, or a v1 option's outputSchema,
// whichever comes first. Items of a type other than http are ignored
// without being counted. Repeated JSON keys resolve as encoding/json does
// (the last wins): unlike a 402, a listing is never paid from.
//
// Query.Extra lets the caller add entries found another way (a probe of a
// URL the agent named); they are held to the same bounds, an invalid one is
// counted in Skipped, and one without Sources gets "caller".
//
// # Merging
//
// Entries from every source are merged by method and URL, the URL compared
// without query string or fragment, with scheme and host case and a
// default port ignored. The first source's URL is kept (catalog files
// come first, then facilitators in configured order, then Extra); the
// merged entry has the longest description, input and output, the union of
// tags, offers and sources, the latest update time and the highest
// version.
//
// # Ranking
//
// After the filters (network, MaxPrice, text), entries are ordered by:
//
//  1. Text score, highest first. The query is split into lower-case words
//     of letters and digits; common English words ("the", "for", "in") are
//     dropped when there are others. Each word adds the weight of the best
//     place it matches: a whole word of the description or a tag (4), part
//     of one (2), a word or part of the URL (1); a word equal to the method
//     adds 1. Words of one or two letters match only whole words: as parts
//     of words they match nearly everything. An entry no word matches is
//     dropped, unless a facilitator's search returned it.
//  2. Sources failing, fewest first: an entry known only from a source
//     that reported a problem in this search comes after one whose sources
//     all answered fully.
//  3. Price standing, cheapest first. Amounts are compared only among
//     entries offering the same asset on the same network; an entry's
//     standing is the share of those that are strictly cheaper, taking its
//     best standing over the assets it offers. Offers on networks
//     x402.CAIP2 does not know are not compared; entries with no
//     comparable offer come last.
//  4. Last updated, most recent first (unknown last).
//  5. URL, then method, so the order is stable.
//
// # Catalog files
//
// An operator lists endpoints the facilitators do not, or describes them
// better, in TOML files read by New. Reading is strict: an unknown key, a
// key set twice, a wrong type, a bad URL, method, price or network, or the
// same endpoint twice in one file is an error naming the file, the line and
// the key. At most 1 MiB and 1000 endpoints per file.
//
//	[[endpoint]]
//	url = "https://api.example.com/weather"   # required, http or https
//	method = "GET"                            # default GET; GET HEAD DELETE POST PUT PATCH
//	description = "Current weather for a city" # at most 500 characters
//	tags = ["weather", "forecast"]            # at most 10, each at most 50 characters
//	query_params = { city = "Paris" }         # example query parameters (strings)
//	# body = '{"text": "..."}'                # example body, for POST, PUT, PATCH
//	# body_type = "json"                      # json (default; body must be JSON), text or form-data
//	price = "0.01"                            # display hint in USD; never used for payment
//	network = "eip155:8453"                   # CAIP-2 id or v1 name; used by the network filter
//
// A file entry has no offers (the live 402 supplies them); its
// query_params, body and body_type become Entry.Input in the bazaar's
// shape, its price Entry.PriceHint and its network Entry.NetworkHint. A
// network filter keeps an entry without offers only if its network hint
// matches, and a MaxPrice filter drops every entry without offers: its
// price is not known until the endpoint is asked.
package catalog
