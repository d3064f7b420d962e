package upstream

import (
	"context"
	"encoding/json"
	"io"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/x402-mcp/x402-mcp/x402"
)

// The experimental org.x402/payment extension of the x402 MCP transport
// answers an unpaid tools/call with a result of its own type,
// {"resultType": "payment_required", "paymentRequired": {...}}, which
// mcp-go's typed CallTool refuses ("content is missing"). x402-mcp
// advertises the extension and reads such a result below mcp-go: the
// transport turns it into the tool-result form (isError, the
// PaymentRequired object as structuredContent and as text) before mcp-go
// parses it, so that both forms reach pay through the one reader (Read).
// The paid repeat and the settlement use the same _meta keys in both.

// ExtensionPayment is the extension's identifier.
const ExtensionPayment = "org.x402/payment"

const resultTypePaymentRequired = "payment_required"

// extensionTransport wraps a transport to read payment_required results.
// It forwards the optional interfaces mcp-go looks for.
type extensionTransport struct {
	transport.Interface
}

func (t extensionTransport) SendRequest(ctx context.Context, req transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
	resp, err := t.Interface.SendRequest(ctx, req)
	if err == nil && resp != nil && req.Method == string(mcp.MethodToolsCall) && len(resp.Result) > 0 {
		resp.Result = toolResultForm(resp.Result)
	}
	return resp, err
}

func (t extensionTransport) SetProtocolVersion(v string) {
	if h, ok := t.Interface.(transport.HTTPConnection); ok {
		h.SetProtocolVersion(v)
	}
}

func (t extensionTransport) SetRequestHandler(h transport.RequestHandler) {
	if b, ok := t.Interface.(transport.BidirectionalInterface); ok {
		b.SetRequestHandler(h)
	}
}

func (t extensionTransport) RequiresLegacyProtocol() bool {
	l, ok := t.Interface.(interface{ RequiresLegacyProtocol() bool })
	return ok && l.RequiresLegacyProtocol()
}

func (t extensionTransport) Stderr() io.Reader {
	if s, ok := t.Interface.(interface{ Stderr() io.Reader }); ok {
		return s.Stderr()
	}
	return nil
}

// toolResultForm rewrites a payment_required result into the tool-result
// form; any other result is returned as it is.
func toolResultForm(raw json.RawMessage) json.RawMessage {
	var r struct {
		ResultType      string          `json:"resultType"`
		PaymentRequired json.RawMessage `json:"paymentRequired"`
		Meta            json.RawMessage `json:"_meta"`
	}
	if json.Unmarshal(raw, &r) != nil || r.ResultType != resultTypePaymentRequired || len(r.PaymentRequired) == 0 || len(r.PaymentRequired) > x402.MaxBodyBytes {
		return raw
	}
	out := map[string]any{
		"resultType":        "complete",
		"isError":           true,
		"structuredContent": r.PaymentRequired,
		"content":           []any{map[string]any{"type": "text", "text": string(r.PaymentRequired)}},
	}
	if len(r.Meta) > 0 {
		out["_meta"] = r.Meta
	}
	b, err := json.Marshal(out)
	if err != nil {
		return raw
	}
	return b
}
