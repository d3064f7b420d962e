package tools

import (
	"context"
	"encoding/base64"
	"errors"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/x402-mcp/x402-mcp/pay"
	"github.com/x402-mcp/x402-mcp/policy"
)

// FetchInput is what x402_fetch takes.
type FetchInput struct {
	RequestInput
	MaxPrice string `json:"max_price,omitempty" jsonschema:"Most this call may pay, in USD as a decimal string such as 0.05. It can only lower the operator's per-payment cap."`
}

// FetchOutput is what x402_fetch returns.
type FetchOutput struct {
	URL          string      `json:"url" jsonschema:"The URL that answered (after redirects)."`
	Status       int         `json:"status" jsonschema:"HTTP status of the final response."`
	ContentType  string      `json:"content_type,omitempty"`
	Body         string      `json:"body" jsonschema:"Response body: text as is, binary as base64 (see body_encoding)."`
	BodyEncoding string      `json:"body_encoding" jsonschema:"text or base64."`
	Truncated    bool        `json:"truncated" jsonschema:"True when the body was cut at the size limit."`
	Payment      *PaymentOut `json:"payment,omitempty" jsonschema:"Present when this call paid."`
}

// PaymentOut is the receipt of a payment.
type PaymentOut struct {
	Amount       string `json:"amount" jsonschema:"Amount paid in whole tokens, e.g. 0.01."`
	AmountAtomic string `json:"amount_atomic" jsonschema:"Amount paid in the token's atomic units."`
	Token        string `json:"token"`
	Asset        string `json:"asset" jsonschema:"Token contract address."`
	Network      string `json:"network" jsonschema:"CAIP-2 network id."`
	PayTo        string `json:"pay_to"`
	Payer        string `json:"payer"`
	Transaction  string `json:"transaction,omitempty" jsonschema:"Settlement transaction hash; empty if the server sent no settlement."`
	Settled      bool   `json:"settled" jsonschema:"True when the server reported a successful settlement."`
}

func fetchTool(client *pay.Client, appr *approvals) server.ServerTool {
	tool := mcp.NewTool("x402_fetch",
		mcp.WithDescription("Fetch an HTTP resource, paying for it through x402 if the server asks for payment and the operator's policy allows it. Pays at most once per call and never more than max_price (if given) or the operator's cap. Returns status, content type, body (text, or base64 for binary; cut at a size limit) and, when it paid, the payment receipt with the settlement transaction."),
		mcp.WithTitleAnnotation("Fetch, paying with x402 if needed"),
		mcp.WithInputSchema[FetchInput](),
		mcp.WithOutputSchema[FetchOutput](),
		mcp.WithReadOnlyHintAnnotation(false),
		mcp.WithDestructiveHintAnnotation(true),
		mcp.WithIdempotentHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(true),
	)
	return server.ServerTool{Tool: tool, Handler: func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var in FetchInput
		if err := req.BindArguments(&in); err != nil {
			return mcp.NewToolResultError("invalid arguments: " + err.Error()), nil
		}
		var maxPrice policy.USD
		if in.MaxPrice != "" {
			var err error
			if maxPrice, err = policy.ParseUSD(in.MaxPrice); err != nil {
				return mcp.NewToolResultError("max_price: " + err.Error() + ". Give a decimal USD amount such as \"0.05\"."), nil
			}
		}
		r := in.request(maxPrice)
		if answered(req) {
			// The retry that carries the human's answer: it is honoured only
			// with the state token this server issued for this payment.
			binding, refusal := approvalAnswer(appr, req)
			if refusal != nil {
				return refusal, nil
			}
			r.HumanApproved = &binding
		}
		res, err := client.Fetch(ctx, r)
		var need *pay.ApprovalNeededError
		if errors.As(err, &need) {
			if r.HumanApproved != nil {
				return mcp.NewToolResultError("The user approved a different payment than the server now asks for (its price, payee or terms changed). Nothing was paid. Call x402_fetch again to ask the user about the new payment."), nil
			}
			return askHuman(ctx, appr, need)
		}
		if err != nil {
			return agentError(err)
		}
		return structured(fetchOutput(res)), nil
	}}
}

func fetchOutput(r *pay.Result) FetchOutput {
	out := FetchOutput{URL: r.URL, Status: r.Status, ContentType: r.ContentType, Truncated: r.Truncated}
	if isText(r.ContentType, r.Body) {
		out.Body, out.BodyEncoding = string(r.Body), "text"
	} else {
		out.Body, out.BodyEncoding = base64.StdEncoding.EncodeToString(r.Body), "base64"
	}
	if p := r.Payment; p != nil {
		out.Payment = &PaymentOut{Amount: p.Amount, AmountAtomic: p.AmountAtomic, Token: p.Token, Asset: p.Asset,
			Network: p.Network, PayTo: p.PayTo, Payer: p.Payer, Transaction: p.Transaction, Settled: p.Settled}
	}
	return out
}

// isText decides whether a body can go to the agent as text. A body cut at
// the size limit may end inside a UTF-8 sequence, so validity is judged on
// the part before the last few bytes.
func isText(contentType string, body []byte) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch {
	case strings.HasPrefix(mt, "text/"), mt == "application/json", strings.HasSuffix(mt, "+json"),
		mt == "application/xml", strings.HasSuffix(mt, "+xml"), mt == "application/javascript",
		mt == "application/x-www-form-urlencoded", mt == "application/x-ndjson", mt == "application/yaml":
		return utf8.Valid(trimPartialRune(body))
	case mt == "":
		return utf8.Valid(trimPartialRune(body))
	}
	return false
}

func trimPartialRune(b []byte) []byte {
	for i := 0; i < utf8.UTFMax && len(b) > 0; i++ {
		r, size := utf8.DecodeLastRune(b)
		if r != utf8.RuneError || size != 1 {
			break
		}
		b = b[:len(b)-1]
	}
	return b
}
