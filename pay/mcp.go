package pay

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/policy"
	"github.com/x402-mcp/x402-mcp/x402"
)

// Paying for a tool of an upstream MCP server (x402 over MCP) is the same
// purchase as paying for an HTTP resource, through the same steps: the
// requirements are judged by judge and decide, reserved and signed by
// authorize (so the policy's permit, the budgets and the ledger are the
// HTTP ones), and the outcome is recorded by the same ledger calls. Only the
// transport differs: the unpaid call and the paid repeat are tool calls,
// which the caller makes through a ToolSender, so that pay knows nothing of
// MCP. Package upstream reads MCP results into ToolAnswers.
//
// What the policy judges: the upstream's host for a streamable HTTP
// upstream (its URL), the pseudo-host "mcp:<name>" for a stdio upstream
// (see policy.MCPHost). The request key is the method "MCP tools/call", that
// URL, and the digest of the upstream's name, the tool's name and its
// arguments: a repeated call with the same arguments is the same request,
// and re-sends an earlier payment that may still settle rather than
// signing a new one (see resend.go).

// ToolMethod is the method a tool call is recorded under in the ledger and
// shown to a human approving it.
const ToolMethod = "MCP tools/call"

// ToolCall is a call to a tool of an upstream MCP server.
type ToolCall struct {
	// Upstream is the upstream's name in the configuration.
	Upstream string
	// URL is the upstream's streamable HTTP endpoint; empty for a stdio
	// upstream.
	URL string
	// Tool is the tool's name on the upstream.
	Tool string
	// Arguments are the call's arguments as forwarded, a JSON object.
	Arguments json.RawMessage
	// MaxPrice is the agent's cap for this call in USD; unset means none.
	MaxPrice policy.USD
	// HumanApproved is the binding of a payment a human approved (see
	// Request.HumanApproved).
	HumanApproved *[32]byte
}

// ToolAnswer is what an upstream answered to one tool call, as package
// upstream reads it.
type ToolAnswer struct {
	// Required is the PaymentRequired object when the answer asks for
	// payment (either form of the specification), else nil.
	Required json.RawMessage
	// Settlement is the result's _meta["x402/payment-response"]; nil when
	// absent.
	Settlement json.RawMessage
	// IsError is the result's isError, for an answer that does not ask for
	// payment.
	IsError bool
	// Text is the result's text, for messages (the upstream's words).
	Text string
	// Result is the upstream's result, opaque to pay.
	Result any
}

// ToolSender makes one call of the tool: unpaid when payment is nil, else
// carrying payment (the PaymentPayload object) in _meta["x402/payment"].
// An error means no answer came (the upstream is down, timed out or broke
// the protocol).
type ToolSender func(ctx context.Context, payment json.RawMessage) (*ToolAnswer, error)

// ToolResult is what a paid or free tool call returns.
type ToolResult struct {
	Answer *ToolAnswer
	// Payment is set when this call paid.
	Payment *Receipt
	// Judgement is the verdict the call acted on.
	Judgement Judgement
}

// ToolURL is the URL a tool call is judged and recorded under: the
// upstream's endpoint, or "mcp://<name>/<tool>" for a stdio upstream.
func ToolURL(call ToolCall) string {
	if call.URL != "" {
		return call.URL
	}
	return policy.MCPScheme + "://" + call.Upstream + "/" + url.PathEscape(call.Tool)
}

// toolRequest is the Request a tool call is judged, keyed and approved as.
func toolRequest(call ToolCall) (Request, error) {
	args := call.Arguments
	if len(args) == 0 {
		args = json.RawMessage(`{}`)
	}
	body, err := json.Marshal(struct {
		Upstream  string          `json:"upstream"`
		Tool      string          `json:"tool"`
		Arguments json.RawMessage `json:"arguments"`
	}{call.Upstream, call.Tool, args})
	if err != nil {
		return Request{}, &RequestError{Msg: "the tool's arguments are not valid JSON", Err: err}
	}
	return Request{Method: ToolMethod, URL: ToolURL(call), Body: body, MaxPrice: call.MaxPrice, HumanApproved: call.HumanApproved}, nil
}

// toolQuote reads the payment requirements of an unpaid tool call, as
// quote reads a 402.
func (c *Client) toolQuote(call ToolCall, r *Request, ans *ToolAnswer) (*Quote, error) {
	u, err := url.Parse(r.URL)
	if err != nil {
		return nil, &RequestError{Msg: "the upstream's URL is not valid", Err: err}
	}
	host, err := policy.NormalizeHost(u)
	if err != nil {
		return nil, &RequestError{Msg: "the upstream cannot be paid", Err: err}
	}
	q := &Quote{URL: r.URL, Host: host, Status: 402}
	if ans.Required == nil {
		q.Free, q.Status = true, 200
		return q, nil
	}
	pr, err := x402.ParseRequired(ans.Required)
	if err != nil {
		q.unreadable = []string{err.Error()}
		return q, nil
	}
	q.Required = pr
	q.Options = assess(pr, c.cfg.Registry, c.cfg.Policy, policy.Request{URL: q.URL, Host: q.Host, MaxPrice: r.MaxPrice}, c.Payer())
	q.Chosen = choose(q.Options)
	return q, nil
}

// QuoteTool makes the unpaid call of a tool and reports what paying would
// involve, with the verdict CallTool would act on. It signs nothing. The
// caller must know the tool to be priced (its upstream declares it so):
// an unpaid call of a free tool runs it.
func (c *Client) QuoteTool(ctx context.Context, call ToolCall, send ToolSender) (*Quote, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	r, err := toolRequest(call)
	if err != nil {
		return nil, err
	}
	ans, err := send(ctx, nil)
	if err != nil {
		return nil, &RequestError{Msg: fmt.Sprintf("calling %s on upstream %s failed", x402.Display(call.Tool, 64), call.Upstream), Err: err}
	}
	q, err := c.toolQuote(call, &r, ans)
	if err != nil {
		return nil, err
	}
	return q, c.judge(ctx, q)
}

// CallTool calls a tool of an upstream, paying for it if the upstream asks
// and the policy allows, exactly as Fetch pays for a resource: at most one
// payment, reserved in the ledger before it is signed, and an earlier
// payment for the same call that may still settle re-sent rather than a new
// one signed.
func (c *Client) CallTool(ctx context.Context, call ToolCall, send ToolSender) (*ToolResult, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	r, err := toolRequest(call)
	if err != nil {
		return nil, err
	}
	first, err := send(ctx, nil)
	if err != nil {
		return nil, &RequestError{Msg: fmt.Sprintf("calling %s on upstream %s failed", x402.Display(call.Tool, 64), call.Upstream), Err: err}
	}
	if first.Required == nil {
		return &ToolResult{Answer: first, Judgement: Judgement{Verdict: VerdictFree}}, nil
	}
	q, err := c.toolQuote(call, &r, first)
	if err != nil {
		return nil, err
	}
	if res, handled, err := c.resumeTool(ctx, q, &r, send); handled {
		return res, err
	}
	use, err := c.decide(ctx, q, &r)
	if err != nil {
		var need *ApprovalNeededError
		if errors.As(err, &need) {
			// The human reads which tool is bought, not the endpoint's path.
			need.Ask.Target = "tool " + x402.Display(call.Tool, MaxShownTarget)
		}
		return nil, err
	}
	p, err := c.authorize(ctx, q, &r, use)
	if err != nil {
		return nil, err
	}
	// authorize recorded the payment as sent, with what is sent, in the
	// transaction that reserved it: it may leave now.
	payload, err := base64.StdEncoding.DecodeString(p.headerValue)
	if err != nil {
		// Never happens (sign encodes it); if it did, the payment stays
		// counted, as any payment whose fate is not proven.
		c.unknown(p, nil, "the payment could not be encoded for MCP, so it was not sent")
		return nil, fmt.Errorf("pay: decoding the payment payload: %w", err)
	}
	c.log.Info("payment signed", "host", q.Host, "tool", x402.Display(call.Tool, 64), "amount", p.receipt.AmountText(), "token", p.receipt.Token,
		"network", p.receipt.Network, "pay_to", p.receipt.PayTo.Hex(), "nonce", p.receipt.NonceHex(), "ledger_id", p.record.ID)
	second, err := send(ctx, payload)
	if err != nil {
		c.unknown(p, nil, "no answer to the paid tool call: "+err.Error())
		return nil, &PaymentFailedError{Receipt: p.receipt, ServerError: err.Error()}
	}
	return c.finishTool(second, p)
}

// resumeTool is resume for a tool call: an earlier payment for the same
// call that may still settle is re-sent as it was, never signed anew.
func (c *Client) resumeTool(ctx context.Context, q *Quote, r *Request, send ToolSender) (*ToolResult, bool, error) {
	if c.cfg.Signer == nil || c.cfg.Ledger == nil || q.Required == nil {
		return nil, false, nil
	}
	p, handled, err := c.earlier(ctx, q, r, "upstream")
	if p == nil {
		return nil, handled, err
	}
	payload, err := base64.StdEncoding.DecodeString(p.headerValue)
	if err != nil {
		return nil, true, fmt.Errorf("pay: reading the earlier payment: %w", err)
	}
	c.log.Info("payment re-sent", "host", q.Host, "amount", p.receipt.AmountText(), "token", p.receipt.Token,
		"network", p.receipt.Network, "nonce", p.receipt.NonceHex(), "ledger_id", p.record.ID)
	second, err := send(ctx, payload)
	if err != nil {
		c.unknown(p, nil, "no answer to the re-sent paid tool call: "+err.Error())
		return nil, true, &PaymentFailedError{Receipt: p.receipt, ServerError: err.Error(), Resent: true}
	}
	res, err := c.finishTool(second, p)
	return res, true, err
}

// finishTool reads the answer to the paid call and records the outcome,
// as finish does for HTTP.
func (c *Client) finishTool(ans *ToolAnswer, p *pending) (*ToolResult, error) {
	var st *x402.Settlement
	if ans.Settlement != nil {
		var err error
		if st, err = x402.ParseSettlementJSON(ans.Settlement); err != nil {
			c.log.Warn("unreadable settlement in the tool result", "host", p.quote.Host, "nonce", p.receipt.NonceHex(), "err", err)
		}
	}
	alreadySettled := p.record.State == ledger.Settled
	if st != nil && st.Success {
		p.receipt.Settled = true
		p.receipt.Transaction = st.Transaction
	}
	ok := ans.Required == nil && !ans.IsError
	if p.receipt.Settled && !alreadySettled {
		c.settled(p, st, ok)
	}
	if !ok || (st != nil && !st.Success) {
		e := &PaymentFailedError{Receipt: p.receipt, Settlement: st, Resent: p.resent}
		switch {
		case ans.Required != nil:
			e.Answered = "the upstream asked for payment again"
			if pr, err := x402.ParseRequired(ans.Required); err == nil {
				e.ServerError = pr.Error
			}
		case ans.IsError:
			e.Answered = "the upstream's tool answered with an error"
			if !p.receipt.Settled {
				e.Answered += " and did not settle the payment (a correct upstream charges only for what it delivers)"
			}
			e.Body = clip(ans.Text, 500)
		default:
			e.Answered = "the upstream delivered with a failed settlement"
		}
		if p.receipt.Settled {
			e.Answered += "; the payment settled all the same"
		}
		e.Pending = st != nil && !st.Success && st.ErrorReason == ReasonSettlementPending
		e.NonceUsed = p.resent && (alreadySettled || nonceUsed(e.ServerError, st))
		if !p.receipt.Settled && !alreadySettled {
			note := e.Answered
			if e.NonceUsed {
				note = "re-sent; the upstream says the authorization was already used: paid, but the result was lost"
			}
			c.unknown(p, st, note)
		}
		c.log.Warn("payment not accepted", "host", p.quote.Host, "answer", e.Answered, "nonce", p.receipt.NonceHex())
		return nil, e
	}
	if !p.receipt.Settled && !alreadySettled {
		c.unknown(p, st, "the upstream delivered without a settlement")
	}
	if !p.receipt.Settled || alreadySettled {
		c.delivered(p)
	}
	c.log.Info("payment settled", "host", p.quote.Host, "amount", p.receipt.AmountText(), "network", p.receipt.Network,
		"transaction", p.receipt.Transaction, "nonce", p.receipt.NonceHex(), "ledger_id", p.record.ID)
	return &ToolResult{Answer: ans, Payment: p.receipt, Judgement: p.quote.Judgement}, nil
}
