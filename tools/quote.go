package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/x402-mcp/x402-mcp/catalog"
	"github.com/x402-mcp/x402-mcp/pay"
	"github.com/x402-mcp/x402-mcp/policy"
	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/x402"
)

// verdictHelp is the one description of the verdict words, shared by every
// tool that shows one.
const verdictHelp = "What x402-mcp would do about paying now: free (no payment asked), allowed (x402_fetch pays without asking), needs_approval (x402_fetch pays once the user approves), denied (the operator's policy or a budget refuses) or unpayable (nothing offered can be paid: unknown token, unsupported network, malformed 402, no wallet)."

// QuoteOutput is what x402_quote returns.
type QuoteOutput struct {
	URL         string      `json:"url" jsonschema:"The URL that answered (after redirects)."`
	Status      int         `json:"status" jsonschema:"HTTP status of the unpaid request; 0 when nothing was sent (listed is true)."`
	Free        bool        `json:"free" jsonschema:"True when the resource needs no payment."`
	Description string      `json:"description,omitempty" jsonschema:"The server's description of the resource."`
	Options     []OptionOut `json:"options,omitempty" jsonschema:"Every payment option the server offered."`
	Chosen      *int        `json:"chosen,omitempty" jsonschema:"Index in options of the option x402_fetch would pay."`
	Verdict     string      `json:"verdict" jsonschema:"What x402-mcp would do about paying now: free, allowed, needs_approval, denied or unpayable."`
	Reasons     []string    `json:"reasons,omitempty" jsonschema:"Why the payment is denied or unpayable, or why it needs the user's approval."`
	Limit       string      `json:"limit_usd,omitempty" jsonschema:"The per-payment cap in USD that applies to this call."`
	Payer       string      `json:"payer,omitempty" jsonschema:"The wallet address that would pay."`
	Inputs      *InputsOut  `json:"inputs,omitempty" jsonschema:"What the server declares the request needs: method, query parameters, body type and fields, and which are required."`
	Missing     []string    `json:"missing_inputs,omitempty" jsonschema:"Required inputs this request lacks: x402_fetch would refuse to pay for it as it is."`
	Listed      bool        `json:"listed,omitempty" jsonschema:"True when nothing was sent (a method other than GET or HEAD): the terms come from a discovery listing and the live price may differ; see note."`
	Note        string      `json:"note,omitempty" jsonschema:"Where the terms come from, when nothing was sent."`
}

// OptionOut is one payment option of a 402.
type OptionOut struct {
	Index        int    `json:"index"`
	Scheme       string `json:"scheme"`
	Network      string `json:"network"`
	Amount       string `json:"amount,omitempty" jsonschema:"Price in whole tokens (e.g. 0.01), using the registry's decimals; empty when the token is unknown."`
	AmountAtomic string `json:"amount_atomic,omitempty" jsonschema:"Price in the token's atomic units."`
	Token        string `json:"token,omitempty" jsonschema:"Token symbol from the registry."`
	Asset        string `json:"asset,omitempty" jsonschema:"Token contract address."`
	PayTo        string `json:"pay_to,omitempty" jsonschema:"Payee address."`
	Payable      bool   `json:"payable"`
	Reason       string `json:"reason,omitempty" jsonschema:"Why this option cannot be paid."`
}

// QuoteInput is what x402_quote takes: an HTTP request, or a re-exported
// upstream tool with its arguments.
type QuoteInput struct {
	URL       string            `json:"url,omitempty" jsonschema:"The http or https URL to request. Give either url or tool."`
	Method    string            `json:"method,omitempty" jsonschema:"HTTP method: GET (default), HEAD, POST, PUT, PATCH or DELETE."`
	Headers   map[string]string `json:"headers,omitempty" jsonschema:"Extra request headers. Payment headers are set by x402-mcp and cannot be supplied."`
	Body      string            `json:"body,omitempty" jsonschema:"Request body as text (for POST, PUT, PATCH), e.g. a JSON document; set a Content-Type header to match."`
	Tool      string            `json:"tool,omitempty" jsonschema:"A re-exported upstream MCP tool (<upstream>__<tool>) to quote instead of a URL. Only tools the upstream declares priced are quoted: an unpaid call of any other tool might run it."`
	Arguments map[string]any    `json:"arguments,omitempty" jsonschema:"The tool's arguments, as a JSON object, with tool."`
}

func quoteTool(d Deps) server.ServerTool {
	tool := mcp.NewTool("x402_quote",
		mcp.WithDescription("Check what an HTTP resource costs without paying: makes the request unpaid and reports whether it is free or priced, every payment option (amount in whole tokens and atomic units, token, network, payee), the option that would be paid, and the verdict x402_fetch would act on. "+verdictHelp+" Signs nothing, and sends only GET or HEAD (a free GET resource is fetched in the process). For POST, PUT, PATCH or DELETE it sends nothing: it answers from the discovery listings when they list that endpoint with that method (listed: true; the live price may differ), and otherwise says so; the price of such a request is learned by x402_fetch, which pays only within the operator's policy. Given tool (a re-exported upstream MCP tool, <upstream>__<tool>) and its arguments instead of url, it quotes that tool by calling it unpaid, which only returns its price; it does so only for tools the upstream declares priced, since an unpaid call of any other tool might run it."),
		mcp.WithTitleAnnotation("Quote an x402 price"),
		schemas(mcp.WithInputSchema[QuoteInput](), mcp.WithOutputSchema[QuoteOutput]()),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(true),
	)
	return server.ServerTool{Tool: tool, Handler: typed(func(ctx context.Context, in QuoteInput) (*mcp.CallToolResult, error) {
		switch {
		case in.Tool != "" && in.URL != "":
			return mcp.NewToolResultError("give either url or tool, not both"), nil
		case in.Tool != "":
			args, err := json.Marshal(in.Arguments)
			if err != nil {
				return mcp.NewToolResultError("arguments must be a JSON object"), nil
			}
			return upstreamToolQuote(ctx, d, in.Tool, args)
		case in.URL == "":
			return mcp.NewToolResultError("give url (an HTTP resource) or tool (an upstream MCP tool) to quote"), nil
		}
		r := RequestInput{URL: in.URL, Method: in.Method, Headers: in.Headers, Body: in.Body}.request(policy.USD{})
		q, err := d.Pay.Quote(ctx, r)
		var write *pay.WriteMethodError
		if errors.As(err, &write) {
			return listedQuote(ctx, d, r, write)
		}
		if err != nil {
			return agentError(err)
		}
		return structured(quoteOutput(q, d.Pay)), nil
	})}
}

// listedQuote answers a quote for a method that x402_quote does not send,
// from a discovery listing of the same endpoint and method, or says why
// there is no answer. Nothing is sent to the endpoint either way.
func listedQuote(ctx context.Context, d Deps, r pay.Request, write *pay.WriteMethodError) (*mcp.CallToolResult, error) {
	if d.Catalog != nil {
		res, err := d.Catalog.Search(ctx, catalog.Query{URL: r.URL, Method: write.Method, Limit: 100})
		if err != nil {
			return nil, err
		}
		for _, e := range res.Entries {
			if len(e.Offers) == 0 {
				continue
			}
			q, err := d.Pay.QuoteListed(ctx, r, e.URL, e.X402Version, offerTerms(e.Offers), e.Input)
			if err != nil {
				return agentError(err)
			}
			out := quoteOutput(q, d.Pay)
			out.Note = fmt.Sprintf("Nothing was sent: x402_quote sends only GET and HEAD, and a %s may change something on the server even unpaid. These terms are listed for %s %s by %s and may be out of date; x402_fetch reads the live price and pays only within the operator's policy.",
				write.Method, write.Method, x402.Display(e.URL, 300), strings.Join(e.Sources, ", "))
			return structured(out), nil
		}
	}
	return mcp.NewToolResultError(fmt.Sprintf("Nothing was sent: x402_quote sends only GET and HEAD, and a %s may change something on the server even unpaid. No discovery listing gives the price of %s at this URL. Its price is learned by x402_fetch, which makes the request, reads the price the server asks and pays only within the operator's policy (asking the user where the policy says so). Nothing was signed or paid.",
		write.Method, write.Method)), nil
}

func quoteOutput(q *pay.Quote, client *pay.Client) QuoteOutput {
	out := QuoteOutput{URL: pay.WireURL(q.URL), Status: q.Status, Free: q.Free, Verdict: q.Judgement.Verdict, Reasons: q.Judgement.Reasons, Listed: q.Listed}
	if q.Judgement.Limit.IsSet() {
		out.Limit = q.Judgement.Limit.String()
	}
	if q.Free {
		return out
	}
	if p := client.Payer(); p != ([20]byte{}) {
		out.Payer = p.Hex()
	}
	if q.Required != nil {
		out.Description = q.Required.Description
	}
	out.Options, out.Chosen = optionsOut(q)
	if q.Inputs != nil {
		out.Inputs = inputsOut(*q.Inputs)
	}
	out.Missing = q.Missing
	return out
}

// optionsOut shows every option of a quote and which one would be paid.
func optionsOut(q *pay.Quote) ([]OptionOut, *int) {
	var out []OptionOut
	var chosen *int
	for i, o := range q.Options {
		oo := OptionOut{Index: o.Wire.Index, Scheme: o.Wire.Scheme, Network: o.Wire.Network, Payable: o.Payable, Reason: o.Reason}
		if o.Wire.CAIP2 != "" {
			oo.Network = o.Wire.CAIP2
		}
		if o.Wire.Amount != nil {
			oo.AmountAtomic = o.Wire.Amount.String()
		}
		if o.Wire.Asset != ([20]byte{}) {
			oo.Asset = o.Wire.Asset.Hex()
		}
		if o.Wire.PayTo != ([20]byte{}) {
			oo.PayTo = o.Wire.PayTo.Hex()
		}
		if o.Token != nil && o.Wire.Amount != nil {
			oo.Amount = tokens.FormatUnits(o.Wire.Amount, o.Token.Decimals)
			oo.Token = o.Token.Symbol
		}
		out = append(out, oo)
		if q.Chosen == &q.Options[i] {
			idx := i
			chosen = &idx
		}
	}
	return out, chosen
}
