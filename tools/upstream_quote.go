package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/x402-mcp/x402-mcp/pay"
	"github.com/x402-mcp/x402-mcp/policy"
	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/upstream"
	"github.com/x402-mcp/x402-mcp/x402"
)

// Quoting an upstream tool makes its call unpaid, and a quote must change
// nothing (hosts approve x402_quote and x402_discover without asking). An
// unpaid call of a priced tool only returns the payment requirements, but
// an unpaid call of a free tool runs it. So only tools the upstream
// declares priced (the agents-x402/paymentRequired tool metadata) are
// quoted; any other tool's price is learned by calling it, which pays only
// within the operator's policy.

// maxToolQuotes bounds the live quotes one x402_discover makes of upstream
// tools.
const maxToolQuotes = 5

// findUpstreamTool resolves a re-exported tool name.
func findUpstreamTool(d Deps, name string) (*upstream.Server, upstream.Tool, bool) {
	up, tool, ok := strings.Cut(name, UpstreamSeparator)
	if !ok {
		return nil, upstream.Tool{}, false
	}
	for _, u := range d.Upstreams {
		if u.Name() == up {
			t, ok := u.Tool(tool)
			return u, t, ok
		}
	}
	return nil, upstream.Tool{}, false
}

func quoteUpstream(ctx context.Context, d Deps, u *upstream.Server, t upstream.Tool, args json.RawMessage) (*pay.Quote, error) {
	if len(args) == 0 || string(args) == "null" {
		args = json.RawMessage(`{}`)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(args, &obj); err != nil {
		return nil, &pay.RequestError{Msg: "arguments must be a JSON object"}
	}
	delete(obj, maxPriceProperty)
	canon, _ := json.Marshal(obj)
	call := pay.ToolCall{Upstream: u.Name(), URL: u.URL(), Tool: t.Name, Arguments: canon}
	return d.Pay.QuoteTool(ctx, call, func(ctx context.Context, payment json.RawMessage) (*pay.ToolAnswer, error) {
		return u.Call(ctx, t.Name, canon, payment)
	})
}

// upstreamToolQuote is x402_quote for a re-exported tool.
func upstreamToolQuote(ctx context.Context, d Deps, name string, args json.RawMessage) (*mcp.CallToolResult, error) {
	u, t, ok := findUpstreamTool(d, name)
	if !ok {
		return mcp.NewToolResultError(fmt.Sprintf("No upstream tool is called %s. Re-exported tools are named <upstream>__<tool>; see the tool list.", x402.Display(name, 100))), nil
	}
	if !t.Priced {
		return mcp.NewToolResultError(fmt.Sprintf("Not quoted: the upstream %s does not declare %s priced, so an unpaid call might run it, and a quote must change nothing. Nothing was sent. Its price, if any, is learned by calling %s, which pays only within the operator's policy (max_price caps it).", u.Name(), x402.Display(t.Name, 64), x402.Display(name, 100))), nil
	}
	q, err := quoteUpstream(ctx, d, u, t, args)
	if err != nil {
		return agentError(err)
	}
	out := quoteOutput(q, d.Pay)
	if q.Free {
		out.Note = "The upstream declares this tool priced but did not ask for payment: the unpaid call ran it."
	}
	return structured(out), nil
}

// upstreamDiscover lists the upstream tools declared priced that match
// the query, with the live terms of at most maxToolQuotes of them.
func upstreamDiscover(ctx context.Context, d Deps, query, network string, limit policy.USD) ([]DiscoverResult, []string) {
	var out []DiscoverResult
	var problems []string
	quoted := 0
	text := strings.ToLower(strings.TrimSpace(query))
	for _, u := range d.Upstreams {
		for _, t := range u.Tools() {
			name := u.Name() + UpstreamSeparator + t.Name
			if !t.Priced || text != "" && !strings.Contains(strings.ToLower(name+" "+t.Title+" "+t.Description), text) {
				continue
			}
			if quoted == maxToolQuotes {
				problems = append(problems, fmt.Sprintf("more than %d upstream tools match; narrow the query", maxToolQuotes))
				return out, problems
			}
			quoted++
			q, err := quoteUpstream(ctx, d, u, t, nil)
			if err != nil {
				problems = append(problems, "upstream tool "+name+": "+x402.Display(err.Error(), maxErrorText))
				continue
			}
			r := DiscoverResult{URL: pay.WireURL(q.URL), Method: pay.ToolMethod, Tool: name, Description: t.Description,
				PriceHint: t.PriceUSD, Verdict: q.Judgement.Verdict, Reasons: q.Judgement.Reasons, Sources: []string{"upstream " + u.Name()}}
			if o := q.Chosen; o != nil {
				if network != "" && o.Token.Network != network {
					continue
				}
				if limit.IsSet() && !d.Pay.WithinUSD(o.Token.Network, o.Token.Address.Hex(), o.Wire.Amount, limit) {
					continue
				}
				r.Price, r.PriceAtomic = tokens.FormatUnits(o.Wire.Amount, o.Token.Decimals), o.Wire.Amount.String()
				r.Token, r.Network, r.PayTo = o.Token.Symbol, o.Token.Network, o.Wire.PayTo.Hex()
			}
			out = append(out, r)
		}
	}
	return out, problems
}
