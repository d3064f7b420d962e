package x402

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Settlement is the server's report of what happened to a payment, from the
// PAYMENT-RESPONSE (v2) or X-PAYMENT-RESPONSE (v1) header. Its strings are
// untrusted and cleaned for display (bounded, no control characters); Raw
// keeps the decoded JSON exactly, for a ledger.
type Settlement struct {
	Success      bool
	Transaction  string // transaction hash; "" when nothing was settled
	Network      string
	Payer        string
	ErrorReason  string // a facilitator code such as "invalid_exact_evm_insufficient_balance"; opaque text
	ErrorMessage string
	Amount       string // as sent, when the server reports it; a JSON number is kept as its literal text
	Raw          json.RawMessage
}

// ParseSettlement reads PAYMENT-RESPONSE, or X-PAYMENT-RESPONSE if that is
// absent; (nil, nil) when neither is present. A present but broken
// PAYMENT-RESPONSE is an error rather than a reason to look at the v1 header,
// for the same reason ParseResponse does not fall back from a broken
// PAYMENT-REQUIRED.
func ParseSettlement(h http.Header) (*Settlement, error) {
	name := HeaderPaymentResponse
	value, found, err := headerValue(h, name)
	if err != nil {
		return nil, err
	}
	if !found {
		name = HeaderXPaymentResponse
		if value, found, err = headerValue(h, name); err != nil || !found {
			return nil, err
		}
	}
	where := name + headerWhereSuffix
	data, err := decodeHeader(value, where)
	if err != nil {
		return nil, err
	}
	return parseSettlement(data, where)
}

// ParseSettlementJSON reads a settlement given as a JSON object rather
// than a header: what x402 over MCP sends in a tool result's
// _meta["x402/payment-response"].
func ParseSettlementJSON(data []byte) (*Settlement, error) {
	if len(data) > MaxBodyBytes {
		return nil, &WireError{Kind: ErrTooLarge, Where: whereMCPSettlement,
			Msg: strconv.Itoa(len(data)) + " bytes; at most " + strconv.Itoa(MaxBodyBytes) + " are read"}
	}
	return parseSettlement(data, whereMCPSettlement)
}

func parseSettlement(data []byte, where string) (*Settlement, error) {
	if err := checkJSON(data, where); err != nil {
		return nil, err
	}
	f := objectFields(data)
	if f == nil { // checkJSON accepted an object, so this cannot happen
		return nil, &WireError{Kind: ErrInvalidJSON, Where: where, Msg: "not a JSON object"}
	}

	s := &Settlement{Raw: json.RawMessage(data)}
	switch string(f["success"]) {
	case "true":
		s.Success = true
	case "false":
	default:
		return nil, &WireError{Kind: ErrMalformed, Where: where, Field: "success",
			Msg: "success is " + describeMissing(f["success"]) + "; expected true or false"}
	}
	for _, kv := range []struct {
		key string
		dst *string
	}{
		{"transaction", &s.Transaction},
		{"network", &s.Network},
		{"payer", &s.Payer},
		{"errorReason", &s.ErrorReason},
		{"errorMessage", &s.ErrorMessage},
		{"amount", &s.Amount},
	} {
		raw := f[kv.key]
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		str, ok := jsonString(raw)
		if !ok && kv.key == "amount" && raw[0] != '{' && raw[0] != '[' && raw[0] != 't' && raw[0] != 'f' {
			str, ok = string(raw), true // a number: keep its literal text, never a float
		}
		if !ok {
			return nil, &WireError{Kind: ErrMalformed, Where: where, Field: kv.key,
				Msg: kv.key + " is " + describeJSON(raw) + ", not a string"}
		}
		*kv.dst = displayText(str)
	}
	return s, nil
}
