package tools

import (
	"context"
	"errors"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/x402-mcp/x402-mcp/pay"
	"github.com/x402-mcp/x402-mcp/policy"
	"github.com/x402-mcp/x402-mcp/tokens"
)

// QuoteOutput is what x402_quote returns.
type QuoteOutput struct {
	URL         string      `json:"url" jsonschema:"The URL that answered (after redirects)."`
	Status      int         `json:"status" jsonschema:"HTTP status of the unpaid request."`
	Free        bool        `json:"free" jsonschema:"True when the resource needs no payment."`
	Description string      `json:"description,omitempty" jsonschema:"The server's description of the resource."`
	Options     []OptionOut `json:"options,omitempty" jsonschema:"Every payment option the server offered."`
	Chosen      *int        `json:"chosen,omitempty" jsonschema:"Index in options of the option x402_fetch would pay."`
	Verdict     string      `json:"verdict" jsonschema:"free, allowed (x402_fetch would pay), denied (the policy refuses) or unpayable (nothing offered can be paid)."`
	Reasons     []string    `json:"reasons,omitempty" jsonschema:"Why the payment is denied or unpayable."`
	Limit       string      `json:"limit_usd,omitempty" jsonschema:"The per-payment cap in USD that applies to this call."`
	Payer       string      `json:"payer,omitempty" jsonschema:"The wallet address that would pay."`
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

func quoteTool(client *pay.Client) server.ServerTool {
	tool := mcp.NewTool("x402_quote",
		mcp.WithDescription("Check what an HTTP resource costs without paying: makes the request unpaid and reports whether it is free or priced, every payment option (amount in whole tokens and atomic units, token, network, payee), the option that would be paid, and whether the operator's policy allows it. Signs nothing. Note: a free resource is fetched (a free POST is executed) in the process."),
		mcp.WithTitleAnnotation("Quote an x402 price"),
		mcp.WithInputSchema[RequestInput](),
		mcp.WithOutputSchema[QuoteOutput](),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(true),
	)
	return server.ServerTool{Tool: tool, Handler: typed(func(ctx context.Context, in RequestInput) (*mcp.CallToolResult, error) {
		q, err := client.Quote(ctx, in.request(policy.USD{}))
		var unpayable *pay.UnpayableError
		switch {
		case errors.As(err, &unpayable):
			out := QuoteOutput{URL: in.URL, Status: 402, Verdict: "unpayable", Reasons: unpayable.Reasons}
			return structured(out), nil
		case err != nil:
			return agentError(err)
		}
		return structured(quoteOutput(q, client)), nil
	})}
}

func quoteOutput(q *pay.Quote, client *pay.Client) QuoteOutput {
	out := QuoteOutput{URL: q.URL, Status: q.Status, Free: q.Free}
	if q.Free {
		out.Verdict = "free"
		return out
	}
	if p := client.Payer(); p != ([20]byte{}) {
		out.Payer = p.Hex()
	}
	out.Description = q.Required.Description
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
		out.Options = append(out.Options, oo)
		if q.Chosen == &q.Options[i] {
			idx := i
			out.Chosen = &idx
		}
	}
	switch {
	case q.Chosen == nil:
		out.Verdict = "unpayable"
		for _, o := range q.Options {
			out.Reasons = append(out.Reasons, o.Reason)
		}
	case q.Chosen.Verdict.Allowed:
		out.Verdict = "allowed"
	default:
		out.Verdict = "denied"
		out.Reasons = q.Chosen.Verdict.Reasons
	}
	if q.Chosen != nil && q.Chosen.Verdict.Limit.IsSet() {
		out.Limit = q.Chosen.Verdict.Limit.String()
	}
	return out
}
