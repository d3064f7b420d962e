package tools

import (
	"context"
	"encoding/json"
	"math/big"
	"net/url"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/x402-mcp/x402-mcp/catalog"
	"github.com/x402-mcp/x402-mcp/pay"
	"github.com/x402-mcp/x402-mcp/policy"
	"github.com/x402-mcp/x402-mcp/tokens"
)

// maxProbes bounds the URLs one discovery call may probe.
const maxProbes = 5

// DiscoverInput is what x402_discover takes.
type DiscoverInput struct {
	Query    string   `json:"query,omitempty" jsonschema:"Free text matched against URL, description and tags, e.g. weather."`
	MaxPrice string   `json:"max_price,omitempty" jsonschema:"Only endpoints whose price is at most this many USD, e.g. 0.05."`
	Network  string   `json:"network,omitempty" jsonschema:"Only endpoints payable on this CAIP-2 network, e.g. eip155:8453."`
	Probe    []string `json:"probe,omitempty" jsonschema:"URLs to ask directly (an unpaid request each, at most 5), merged into the results."`
	Limit    int      `json:"limit,omitempty" jsonschema:"How many results (default 20, at most 100)."`
}

// DiscoverOutput is what x402_discover returns.
type DiscoverOutput struct {
	Results  []DiscoverResult `json:"results"`
	Skipped  int              `json:"skipped" jsonschema:"Listing entries skipped as malformed or oversized."`
	Problems []string         `json:"problems,omitempty" jsonschema:"Sources that could not be read."`
	Note     string           `json:"note" jsonschema:"How to use these results."`
}

// DiscoverResult is one priced endpoint.
type DiscoverResult struct {
	URL         string          `json:"url"`
	Method      string          `json:"method"`
	Description string          `json:"description,omitempty"`
	Tags        []string        `json:"tags,omitempty"`
	Price       string          `json:"price,omitempty" jsonschema:"Listed price in whole tokens (cheapest payable offer); the live 402 decides."`
	PriceAtomic string          `json:"price_atomic,omitempty"`
	Token       string          `json:"token,omitempty"`
	Network     string          `json:"network,omitempty"`
	HowToCall   json.RawMessage `json:"how_to_call,omitempty" jsonschema:"The listing's description of the input: method, query parameters or body example."`
	Verdict     string          `json:"verdict" jsonschema:"Policy pre-verdict: allowed, needs_approval, denied or unpayable."`
	Reason      string          `json:"reason,omitempty"`
	Sources     []string        `json:"sources"`
}

const discoverNote = "Listed prices are hints: x402_fetch re-reads the live price and pays only what the policy allows. Use x402_quote on a URL to see its current price."

func discoverTool(d Deps) server.ServerTool {
	tool := mcp.NewTool("x402_discover",
		mcp.WithDescription("Find priced HTTP endpoints: searches the configured facilitators' discovery listings and the operator's catalog files, and can probe URLs you name. Filters by text, maximum price (USD) and network. Each result has the URL, method, description, the listed price, how to call it, and whether the operator's policy would allow paying (allowed, needs_approval, denied, unpayable). Signs nothing."),
		mcp.WithTitleAnnotation("Discover priced endpoints"),
		mcp.WithInputSchema[DiscoverInput](),
		mcp.WithOutputSchema[DiscoverOutput](),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(true),
	)
	return server.ServerTool{Tool: tool, Handler: typed(func(ctx context.Context, in DiscoverInput) (*mcp.CallToolResult, error) {
		if d.Catalog == nil && len(in.Probe) == 0 {
			return mcp.NewToolResultError("No discovery source is configured (no facilitators or catalog files in the x402-mcp config). Pass probe URLs to ask them directly, or ask the user to configure [discovery]."), nil
		}
		if len(in.Probe) > maxProbes {
			return mcp.NewToolResultError("probe: at most 5 URLs per call."), nil
		}
		q := catalog.Query{Text: in.Query, Network: in.Network, Limit: in.Limit}
		if in.MaxPrice != "" {
			limit, err := policy.ParseUSD(in.MaxPrice)
			if err != nil {
				return mcp.NewToolResultError("max_price: " + err.Error() + `. Give a decimal USD amount such as "0.05".`), nil
			}
			q.MaxPrice = func(o catalog.Offer) bool { return withinUSD(d.Pay.Registry(), o, limit) }
		}
		var problems []string
		for _, u := range in.Probe {
			e, err := probe(ctx, d.Pay, u)
			if err != nil {
				problems = append(problems, "probe "+clipText(u, 200)+": "+err.Error())
				continue
			}
			q.Extra = append(q.Extra, e)
		}
		res := &catalog.Results{}
		if d.Catalog != nil {
			var err error
			if res, err = d.Catalog.Search(ctx, q); err != nil {
				return nil, err
			}
		} else {
			res.Entries = q.Extra
		}
		out := DiscoverOutput{Results: []DiscoverResult{}, Skipped: res.Skipped, Problems: append(problems, res.Problems...), Note: discoverNote}
		for _, e := range res.Entries {
			out.Results = append(out.Results, discoverResult(d.Pay, e))
		}
		return structured(out), nil
	})}
}

// discoverResult shows an entry with its cheapest payable offer and the
// policy's pre-verdict on it.
func discoverResult(c *pay.Client, e catalog.Entry) DiscoverResult {
	r := DiscoverResult{URL: e.URL, Method: e.Method, Description: e.Description, Tags: e.Tags, HowToCall: e.Input, Sources: e.Sources}
	var best *pay.Preview
	var bestOffer catalog.Offer
	for _, o := range e.Offers {
		p := c.Preview(e.URL, pay.Offer{Network: o.Network, Asset: o.Asset, PayTo: o.PayTo, Amount: o.Amount})
		if !p.Payable {
			if best == nil && r.Reason == "" {
				r.Reason = p.Reason
			}
			continue
		}
		if best == nil || cheaperOffer(o, *p.Token, bestOffer, *best.Token) {
			best, bestOffer = &p, o
		}
	}
	switch {
	case best == nil && len(e.Offers) == 0:
		r.Verdict = "unpayable"
		if r.Reason = "the listing gives no payment terms"; e.PriceHint != "" {
			r.Price, r.Reason = e.PriceHint+" USD (hint)", "the catalog gives only a price hint: use x402_quote for the live price"
		}
	case best == nil:
		r.Verdict = "unpayable"
	default:
		r.Price, r.PriceAtomic = tokens.FormatUnits(bestOffer.Amount, best.Token.Decimals), bestOffer.Amount.String()
		r.Token, r.Network, r.Reason = best.Token.Symbol, best.Token.Network, ""
		switch v := best.Verdict; {
		case !v.Allowed:
			r.Verdict, r.Reason = "denied", strings.Join(v.Reasons, "; ")
		case v.NeedsApproval:
			r.Verdict, r.Reason = "needs_approval", v.ApprovalReason
		default:
			r.Verdict = "allowed"
		}
	}
	return r
}

func cheaperOffer(a catalog.Offer, at tokens.Token, b catalog.Offer, bt tokens.Token) bool {
	l := new(big.Int).Mul(a.Amount, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(bt.Decimals)), nil))
	r := new(big.Int).Mul(b.Amount, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(at.Decimals)), nil))
	return l.Cmp(r) < 0
}

// withinUSD reports whether an offer costs at most limit USD, by the
// registry's decimals. Unknown and non-USD tokens are never within.
func withinUSD(reg *tokens.Registry, o catalog.Offer, limit policy.USD) bool {
	t, ok := reg.Lookup(o.Network, common.HexToAddress(o.Asset))
	if !ok || t.Currency != "USD" || o.Amount == nil {
		return false
	}
	return o.Amount.Cmp(limit.Atomic(t.Decimals)) <= 0
}

// probe asks a URL for its price with an unpaid GET (pay.Quote) and turns
// the answer into a catalog entry.
func probe(ctx context.Context, c *pay.Client, raw string) (catalog.Entry, error) {
	if _, err := url.Parse(raw); err != nil {
		return catalog.Entry{}, err
	}
	q, err := c.Quote(ctx, pay.Request{URL: raw})
	if err != nil {
		return catalog.Entry{}, err
	}
	e := catalog.Entry{URL: q.URL, Method: "GET", Sources: []string{"probe"}}
	if q.Free {
		e.Description = "free (no payment asked)"
		return e, nil
	}
	e.Description = q.Required.Description
	e.X402Version = q.Required.Version
	for _, o := range q.Options {
		if o.Wire.Err != nil || o.Wire.Amount == nil {
			continue
		}
		e.Offers = append(e.Offers, catalog.Offer{Scheme: o.Wire.Scheme, Network: o.Wire.CAIP2, Asset: o.Wire.Asset.Hex(),
			PayTo: o.Wire.PayTo.Hex(), Amount: o.Wire.Amount, Raw: o.Wire.Raw})
	}
	return e, nil
}

func clipText(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
