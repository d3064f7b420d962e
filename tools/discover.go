package tools

import (
	"context"
	"encoding/json"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/x402-mcp/x402-mcp/catalog"
	"github.com/x402-mcp/x402-mcp/pay"
	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/x402"
)

// maxProbes bounds the URLs one discovery call may probe.
const maxProbes = 5

// DiscoverInput is what x402_discover takes.
type DiscoverInput struct {
	Query    string   `json:"query,omitempty" jsonschema:"Free text matched against URL, description and tags, e.g. weather."`
	MaxPrice Decimal  `json:"max_price,omitempty" jsonschema:"Only endpoints whose price is at most this many USD, as a decimal string such as \"0.05\"."`
	Network  string   `json:"network,omitempty" jsonschema:"Only endpoints payable on this CAIP-2 network, e.g. eip155:8453."`
	Probe    []string `json:"probe,omitempty" jsonschema:"URLs to ask directly (an unpaid GET each, at most 5), merged into the results."`
	Limit    int      `json:"limit,omitempty" jsonschema:"How many results (default 20, at most 100)."`
}

// DiscoverOutput is what x402_discover returns.
type DiscoverOutput struct {
	Results  []DiscoverResult `json:"results"`
	Skipped  int              `json:"skipped" jsonschema:"Listing entries skipped as malformed or oversized."`
	Problems []string         `json:"problems,omitempty" jsonschema:"Sources that could not be read."`
	// Incomplete is the catalog's Results.Incomplete: the agent should
	// know that an endpoint it does not see may still exist.
	Incomplete []string `json:"incomplete,omitempty" jsonschema:"Listings read only in part (cut by the time or size budget, or the facilitator said its search returned only part of the matches): endpoints past the cut were not searched. A more specific query or a network filter may find them."`
	Note       string   `json:"note" jsonschema:"How to use these results."`
}

// DiscoverResult is one priced endpoint.
type DiscoverResult struct {
	URL         string     `json:"url"`
	Method      string     `json:"method"`
	Tool        string     `json:"tool,omitempty" jsonschema:"For an upstream MCP tool: the tool to call (<upstream>__<tool>); url and method then say how x402-mcp records it."`
	Description string     `json:"description,omitempty"`
	Tags        []string   `json:"tags,omitempty"`
	Price       string     `json:"price,omitempty" jsonschema:"Listed price in whole tokens of the option x402_fetch would pay; the live 402 decides."`
	PriceAtomic string     `json:"price_atomic,omitempty"`
	PriceHint   string     `json:"price_hint_usd,omitempty" jsonschema:"A catalog file's display price in USD, when it gives no payment terms."`
	Token       string     `json:"token,omitempty"`
	Network     string     `json:"network,omitempty"`
	PayTo       string     `json:"pay_to,omitempty"`
	HowToCall   *InputsOut `json:"how_to_call,omitempty" jsonschema:"How to call the endpoint, as its listing or 402 declares: method, query parameters, body type and fields, which are required."`
	Verdict     string     `json:"verdict" jsonschema:"What x402-mcp would do about paying on the listed terms now: free, allowed, needs_approval, denied or unpayable."`
	Reasons     []string   `json:"reasons,omitempty" jsonschema:"Why the payment is denied or unpayable, or why it needs the user's approval."`
	Sources     []string   `json:"sources"`
}

const discoverNote = "Listed prices are hints: x402_fetch re-reads the live price and pays only what the policy allows. Use x402_quote on a URL to see its current price and required inputs."

func discoverTool(d Deps) server.ServerTool {
	tool := mcp.NewTool("x402_discover",
		mcp.WithDescription("Find priced HTTP endpoints: searches the configured facilitators' discovery listings and the operator's catalog files, and can probe URLs you name. Filters by text, maximum price (USD) and network. Each result has the URL, method, description, the listed price, how to call it, and the verdict x402_fetch would act on for those terms. "+verdictHelp+" Signs nothing."),
		mcp.WithTitleAnnotation("Discover priced endpoints"),
		schemas(mcp.WithInputSchema[DiscoverInput](), acceptNumber("max_price"), mcp.WithOutputSchema[DiscoverOutput]()),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(true),
	)
	return server.ServerTool{Tool: tool, Handler: typed(func(ctx context.Context, in DiscoverInput) (*mcp.CallToolResult, error) {
		if d.Catalog == nil && len(in.Probe) == 0 && len(d.Upstreams) == 0 {
			return mcp.NewToolResultError("No discovery source is configured (no facilitators or catalog files in the x402-mcp config). Pass probe URLs to ask them directly, or ask the user to configure [discovery]."), nil
		}
		if len(in.Probe) > maxProbes {
			return mcp.NewToolResultError("probe: at most 5 URLs per call."), nil
		}
		limit, err := in.MaxPrice.USD()
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		q := catalog.Query{Text: in.Query, Network: in.Network, Limit: in.Limit}
		if limit.IsSet() {
			q.MaxPrice = func(o catalog.Offer) bool { return d.Pay.WithinUSD(o.Network, o.Asset, o.Amount, limit) }
		}
		var problems []string
		probed := map[string]*pay.Quote{}
		for _, u := range in.Probe {
			pq, err := d.Pay.Quote(ctx, pay.Request{URL: u})
			if err != nil {
				problems = append(problems, "probe "+x402.Display(pay.WireURL(u), 200)+": "+x402.Display(err.Error(), maxErrorText))
				continue
			}
			probed[pq.URL] = pq
			q.Extra = append(q.Extra, probeEntry(pq))
		}
		res := &catalog.Results{Entries: q.Extra}
		if d.Catalog != nil {
			if res, err = d.Catalog.Search(ctx, q); err != nil {
				return nil, err
			}
		}
		out := DiscoverOutput{Results: []DiscoverResult{}, Skipped: res.Skipped, Problems: append(problems, res.Problems...),
			Incomplete: res.Incomplete, Note: discoverNote}
		if len(d.Upstreams) > 0 {
			tools, tp := upstreamDiscover(ctx, d, in.Query, in.Network, limit)
			out.Results = append(out.Results, tools...)
			out.Problems = append(out.Problems, tp...)
		}
		for _, e := range res.Entries {
			jq := probed[e.URL]
			if jq == nil {
				if jq, err = d.Pay.JudgeListing(ctx, e.URL, e.X402Version, offerTerms(e.Offers)); err != nil {
					return nil, err
				}
			}
			out.Results = append(out.Results, discoverResult(e, jq))
		}
		return structured(out), nil
	})}
}

// discoverResult shows an entry with the option a fetch would pay and the
// verdict on it, both from pay.
func discoverResult(e catalog.Entry, q *pay.Quote) DiscoverResult {
	r := DiscoverResult{URL: pay.WireURL(e.URL), Method: e.Method, Description: e.Description, Tags: e.Tags, Sources: e.Sources,
		Verdict: q.Judgement.Verdict, Reasons: q.Judgement.Reasons}
	// A live 402 (a probe) or a v1 listing's outputSchema can say which
	// inputs are required; a bazaar listing shows only examples.
	if in, ok := x402.ParseInputs(e.Input, nil); ok {
		r.HowToCall = inputsOut(in)
	}
	if q.Inputs != nil {
		r.HowToCall = inputsOut(*q.Inputs)
	}
	if e.PriceHint != "" && len(e.Offers) == 0 {
		r.PriceHint = e.PriceHint
		r.Reasons = append(r.Reasons, "the catalog gives only a price hint: use x402_quote for the live price")
	}
	if o := q.Chosen; o != nil {
		r.Price, r.PriceAtomic = tokens.FormatUnits(o.Wire.Amount, o.Token.Decimals), o.Wire.Amount.String()
		r.Token, r.Network, r.PayTo = o.Token.Symbol, o.Token.Network, o.Wire.PayTo.Hex()
	}
	return r
}

// offerTerms are the listed options as written, for pay to judge.
func offerTerms(offers []catalog.Offer) []json.RawMessage {
	out := make([]json.RawMessage, 0, len(offers))
	for _, o := range offers {
		out = append(out, o.Raw)
	}
	return out
}

// probeEntry turns a live quote into a catalog entry, so a probed URL is
// merged with what listings say about it.
func probeEntry(q *pay.Quote) catalog.Entry {
	e := catalog.Entry{URL: q.URL, Method: "GET", Sources: []string{"probe"}}
	if q.Free {
		e.Description = "free (no payment asked)"
		return e
	}
	if q.Required == nil {
		return e
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
	return e
}
