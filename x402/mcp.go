package x402

import "strconv"

// x402 over MCP (specs/transports-v2/mcp.md in the x402 repository) carries
// the same three objects as HTTP v2, as JSON objects instead of base64
// headers: a priced tool answers an unpaid call with the PaymentRequired
// object (in a tool result marked isError, as structuredContent and as the
// text of its first content block; or, in the experimental org.x402/payment
// extension, as a payment_required result), the client repeats the call
// with the PaymentPayload object (PaymentPayload) in
// params._meta[MetaPayment], and the server answers with the settlement
// in result._meta[MetaPaymentResponse].
const (
	// MetaPayment is the _meta key of a tool call that carries a payment.
	MetaPayment = "x402/payment"
	// MetaPaymentResponse is the _meta key of a result that carries the
	// settlement.
	MetaPaymentResponse = "x402/payment-response"
	// SourceMCP is PaymentRequired.Source for requirements read from an
	// MCP tool result.
	SourceMCP = "mcp"
)

const (
	whereMCPRequired   = "the MCP tool's payment requirements"
	whereMCPSettlement = "the MCP tool's " + MetaPaymentResponse
)

// ParseRequired reads a PaymentRequired object given as JSON, as x402 over
// MCP sends it, with the same checks as ParseResponse; the size is bounded
// by MaxBodyBytes.
func ParseRequired(data []byte) (*PaymentRequired, error) {
	if len(data) > MaxBodyBytes {
		return nil, &WireError{Kind: ErrTooLarge, Where: whereMCPRequired,
			Msg: strconv.Itoa(len(data)) + " bytes; at most " + strconv.Itoa(MaxBodyBytes) + " are read"}
	}
	return parseRequired(data, SourceMCP, whereMCPRequired)
}
