package tools

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/x402-mcp/x402-mcp/pay"
	"github.com/x402-mcp/x402-mcp/x402"
)

// FetchInput is what x402_fetch takes.
type FetchInput struct {
	RequestInput
	MaxPrice Decimal `json:"max_price,omitempty" jsonschema:"Most this call may pay, in USD, as a decimal string such as \"0.05\". It can only lower the operator's per-payment cap."`
}

// FetchOutput is what x402_fetch returns, on success and on refusal alike.
type FetchOutput struct {
	URL          string       `json:"url" jsonschema:"The URL that answered (after redirects)."`
	Status       int          `json:"status" jsonschema:"HTTP status of the final response (402 when nothing was paid)."`
	Verdict      string       `json:"verdict" jsonschema:"The verdict on paying for these terms, as x402_quote gives it: free, allowed, needs_approval, denied or unpayable."`
	Reasons      []string     `json:"reasons,omitempty" jsonschema:"Why nothing was paid, or why the payment needed the user's approval."`
	ContentType  string       `json:"content_type,omitempty"`
	Body         string       `json:"body,omitempty" jsonschema:"Response body: text as is; anything else (binary content types, bytes that are not UTF-8, control characters other than tab and line breaks) as base64 (see body_encoding)."`
	BodyEncoding string       `json:"body_encoding,omitempty" jsonschema:"text or base64."`
	BodyBytes    int          `json:"body_bytes,omitempty" jsonschema:"Length in bytes of the body returned (before base64): the first body_bytes bytes of what the server sent."`
	Truncated    bool         `json:"truncated,omitempty" jsonschema:"True when the body was cut (at the size limit, or to keep the result within its bound): the server sent more than body_bytes."`
	Payment      *PaymentOut  `json:"payment,omitempty" jsonschema:"Present when this call paid."`
	Approval     *ApprovalOut `json:"approval,omitempty" jsonschema:"Present when the payment waits for the user's approval out of band."`
	Missing      []string     `json:"missing_inputs,omitempty" jsonschema:"Required inputs, as the server declares them, that the request lacks; nothing was paid."`
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

func fetchTool(d Deps) server.ServerTool {
	tool := mcp.NewTool("x402_fetch",
		mcp.WithDescription("Fetch an HTTP resource, paying for it through x402 if the server asks for payment and the operator's policy allows it. Pays at most once per call and never more than max_price (if given) or the operator's cap. Returns status, content type, body (text, or base64 for anything that is not clean text; cut at a size limit), the verdict, and, when it paid, the payment receipt with the settlement transaction. A payment above the operator's approval threshold is paid only once the user approves it: asked directly where the MCP client can, otherwise the result says what to ask the user, and the same call repeated after their approval pays. Refuses, before signing, a request that lacks an input the server declares required. After a timeout or an unclear outcome, calling again with the same arguments re-sends the same payment (it can settle only once) rather than paying again."),
		mcp.WithTitleAnnotation("Fetch, paying with x402 if needed"),
		schemas(mcp.WithInputSchema[FetchInput](), acceptNumber("max_price"), mcp.WithOutputSchema[FetchOutput]()),
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
		maxPrice, err := in.MaxPrice.USD()
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		r := in.request(maxPrice)
		if answered(req) {
			// The retry that carries the human's answer: it is honoured only
			// with the state token this server issued for this payment.
			binding, refused, cancelled := approvalAnswer(d.approvals, req)
			switch {
			case cancelled:
				// The client declared elicitation but nobody answered
				// (some hosts cancel without showing the question): offer
				// the out-of-band way.
				return fetchResult(ctx, d, r, dismissed)
			case refused != nil:
				return refused, nil
			}
			r.HumanApproved = &binding
		}
		if canElicit(ctx) {
			return fetchResult(ctx, d, r, "")
		}
		return fetchResult(ctx, d, r, cannotAsk)
	}}
}

// fetchResult fetches, and shapes what the agent reads of the outcome. A
// payment needing approval is asked of the human through the client when
// outOfBand is "", else recorded for the CLI, outOfBand saying why.
func fetchResult(ctx context.Context, d Deps, r pay.Request, outOfBand string) (*mcp.CallToolResult, error) {
	res, err := d.Pay.Fetch(ctx, r)
	var need *pay.ApprovalNeededError
	switch {
	case errors.As(err, &need) && r.HumanApproved != nil:
		return refusal("The user approved a different payment than the server now asks for (its price, payee or terms changed). Nothing was paid. Call x402_fetch again to ask the user about the new payment.", refusedOutput(need.Quote)), nil
	case errors.As(err, &need) && outOfBand == "":
		return askHuman(ctx, d.approvals, need)
	case errors.As(err, &need):
		return askOutOfBand(ctx, d, need, outOfBand)
	case err != nil:
		res, gerr := agentError(err)
		if q := pay.QuoteOf(err); res != nil && q != nil {
			res.StructuredContent = refusedOutput(q)
		}
		return res, gerr
	}
	return fetchedResult(res, maxResultBytes(d.Pay.MaxResponseBytes())), nil
}

// refusedOutput is what a fetch that paid nothing says about the terms.
func refusedOutput(q *pay.Quote) FetchOutput {
	return FetchOutput{URL: pay.WireURL(q.URL), Status: q.Status, Verdict: q.Judgement.Verdict, Reasons: q.Judgement.Reasons, Missing: q.Missing}
}

// fetchOutputBody is what a fetch delivered, with the body cut to body (a
// prefix of r.Body) and its encoding decided.
func fetchOutputBody(r *pay.Result, body []byte, truncated bool, text string, isText bool) FetchOutput {
	out := FetchOutput{URL: pay.WireURL(r.URL), Status: r.Status, Verdict: r.Judgement.Verdict,
		ContentType: x402.Display(r.ContentType, maxContentType), Truncated: truncated}
	if r.Judgement.Verdict == pay.VerdictNeedsApproval {
		out.Reasons = r.Judgement.Reasons
	}
	if isText {
		out.Body, out.BodyEncoding, out.BodyBytes = text, "text", len(text)
	} else {
		out.Body, out.BodyEncoding, out.BodyBytes = base64.StdEncoding.EncodeToString(body), "base64", len(body)
	}
	if p := r.Payment; p != nil {
		po := paymentOut(p)
		out.Payment = &po
	}
	return out
}

// paymentOut formats a receipt for the agent: the one place its values
// become text.
func paymentOut(p *pay.Receipt) PaymentOut {
	return PaymentOut{Amount: p.AmountText(), AmountAtomic: p.Amount.String(), Token: p.Token, Asset: p.Asset.Hex(),
		Network: p.Network, PayTo: p.PayTo.Hex(), Payer: p.Payer.Hex(), Transaction: x402.Display(p.Transaction, 80), Settled: p.Settled}
}

// Bounds on a fetch result.
const (
	maxContentType = 256
	// resultOverhead is the room a result takes besides its body: the
	// URL (up to 12 KiB percent-encoded), receipt, reasons and JSON.
	resultOverhead = 64 << 10
)

// maxResultBytes bounds the whole serialised tool result of a fetch. The
// MCP specification asks for the structured result twice, as
// structuredContent and as its JSON in the text content, so the body is
// in it twice: at most 4/3 of the body each as base64, and an honest text
// body costs little more than its length when escaped. Three times the
// body limit holds both; a body whose escaping costs more (every byte a
// quote or a "<") is cut further, and says so with truncated.
func maxResultBytes(maxBody int64) int { return 3*int(maxBody) + resultOverhead }

// fetchedResult shapes what a fetch delivered into a tool result whose
// JSON is at most limit bytes: the body is cut, on a character boundary
// for text and to a prefix of the bytes for base64, until it fits.
func fetchedResult(r *pay.Result, limit int) *mcp.CallToolResult {
	body, truncated := r.Body, r.Truncated
	text, isText := bodyText(r.ContentType, body, truncated)
	for {
		res := structured(fetchOutputBody(r, body, truncated, text, isText))
		b, err := json.Marshal(res)
		if err != nil || len(b) <= limit || len(body) == 0 {
			return res
		}
		// Keep the share of the body that fits, with some slack for
		// escapes that are not spread evenly.
		keep := int(int64(len(body)) * int64(limit) / int64(len(b)) * 9 / 10)
		body, truncated = body[:keep], true
		if isText {
			text, _ = bodyText(r.ContentType, body, true)
		}
	}
}

// bodyText returns the body as text when it can go to the agent as text:
// a textual content type (or none), valid UTF-8, and no control character
// but tab, line feed and carriage return. Anything else (an image, bytes
// that are not UTF-8, a terminal escape, 16 MiB of NULs) goes as base64,
// which the agent can decode and no JSON escaping can blow up. A body cut
// at the size limit may end inside a UTF-8 sequence: that partial
// character is dropped.
func bodyText(contentType string, body []byte, truncated bool) (string, bool) {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch {
	case mt == "", strings.HasPrefix(mt, "text/"), mt == "application/json", strings.HasSuffix(mt, "+json"),
		mt == "application/xml", strings.HasSuffix(mt, "+xml"), mt == "application/javascript",
		mt == "application/x-www-form-urlencoded", mt == "application/x-ndjson", mt == "application/yaml":
	default:
		return "", false
	}
	if truncated {
		body = trimPartialRune(body)
	}
	for i := 0; i < len(body); {
		r, size := utf8.DecodeRune(body[i:])
		if r == utf8.RuneError && size == 1 || unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' {
			return "", false
		}
		i += size
	}
	return string(body), true
}

// trimPartialRune drops an incomplete UTF-8 sequence at the end of b.
func trimPartialRune(b []byte) []byte {
	for i := 1; i < utf8.UTFMax && i <= len(b); i++ {
		c := b[len(b)-i]
		if !utf8.RuneStart(c) {
			continue
		}
		if !utf8.FullRune(b[len(b)-i:]) {
			return b[:len(b)-i]
		}
		break
	}
	return b
}
