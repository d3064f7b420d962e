package x402

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
)

// Where a PaymentRequired was found, for PaymentRequired.Source.
const (
	SourceHeader = "header"  // v2 PAYMENT-REQUIRED header
	SourceBodyV1 = "body-v1" // v1 JSON body
	SourceBodyV2 = "body-v2" // a v2 object sent in the body instead of the header
)

// PaymentRequired is a parsed 402: what the server asks to be paid, in which
// ways. Everything in it was chosen by the server and is untrusted; the
// invariants in the package documentation say what has been validated.
type PaymentRequired struct {
	Version int // 1 or 2
	// Error is the server's explanation, for display only: bounded and
	// stripped of control characters. A non-string error is shown as JSON.
	Error string
	// Resource and Extensions are the v2 top-level values, verbatim, for the
	// payment header to echo; nil when absent (and always in v1).
	Resource   json.RawMessage
	Extensions json.RawMessage
	// ResourceURL, Description and MimeType describe what is being bought,
	// for display only (bounded, stripped of control characters): from the v2
	// resource object, or from the first option that has them.
	ResourceURL, Description, MimeType string
	// Options are the entries of accepts, in order, payable or not.
	Options []Option
	Source  string // SourceHeader, SourceBodyV1 or SourceBodyV2
}

// Payable returns the options that can be paid, in the server's order.
func (pr *PaymentRequired) Payable() []*Option {
	var out []*Option
	for i := range pr.Options {
		if pr.Options[i].Payable() {
			out = append(out, &pr.Options[i])
		}
	}
	return out
}

// ParseResponse reads the payment requirements of a 402 response. A v2
// PAYMENT-REQUIRED header wins; without one the body is read, either v1
// ({"x402Version":1,...}) or a v2 object. A broken header is an error even
// when the body would parse: the header is what a v2 server means, and
// falling back would let a proxy that mangles one choose the other.
//
// The error, if any, is a *WireError for the 402 as a whole. Problems with a
// single option are reported in that Option's Err instead, so one unusable
// option (say, a Solana one) does not hide the payable ones.
func ParseResponse(h http.Header, body []byte) (*PaymentRequired, error) {
	value, found, err := headerValue(h, HeaderPaymentRequired)
	if err != nil {
		return nil, err
	}
	if found {
		where := HeaderPaymentRequired + headerWhereSuffix
		data, err := decodeHeader(value, where)
		if err != nil {
			return nil, err
		}
		return parseRequired(data, SourceHeader, where)
	}
	if len(body) > MaxBodyBytes {
		return nil, &WireError{Kind: ErrTooLarge, Where: whereBody,
			Msg: strconv.Itoa(len(body)) + " bytes; at most " + strconv.Itoa(MaxBodyBytes) + " are read"}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, &WireError{Kind: ErrNoOptions, Where: whereBody,
			Msg: "the response has no " + HeaderPaymentRequired + " header and an empty body, so it carries no x402 payment requirements"}
	}
	return parseRequired(body, "", whereBody)
}

// parseRequired parses one PaymentRequired document; source is SourceHeader
// or "" for a body, where the version decides the source.
func parseRequired(data []byte, source, where string) (*PaymentRequired, error) {
	if err := checkJSON(data, where); err != nil {
		return nil, err
	}
	// One copy: the members and options below alias it, and so stay
	// as received whatever the caller does with data later.
	data = bytes.Clone(data)
	top := objectFields(data)
	if top == nil {
		// checkJSON accepted an object, so this is a bug here, not bad input.
		return nil, &WireError{Kind: ErrInvalidJSON, Where: where, Msg: "the object could not be split into members"}
	}

	pr := &PaymentRequired{Source: source}
	switch v := top["x402Version"]; {
	case v == nil:
		return nil, &WireError{Kind: ErrVersion, Where: where, Field: "x402Version",
			Msg: "x402Version is missing; expected the number 1 or 2"}
	case string(v) == "1":
		pr.Version = 1
	case string(v) == "2":
		pr.Version = 2
	default:
		return nil, &WireError{Kind: ErrVersion, Where: where, Field: "x402Version",
			Msg: "x402Version is " + describeJSON(v) + "; expected the number 1 or 2"}
	}
	switch {
	case source == SourceHeader && pr.Version != 2:
		return nil, &WireError{Kind: ErrVersion, Where: where, Field: "x402Version",
			Msg: "x402Version is " + strconv.Itoa(pr.Version) + " in a " + HeaderPaymentRequired + " header, which only v2 uses"}
	case source == "" && pr.Version == 1:
		pr.Source = SourceBodyV1
	case source == "":
		pr.Source = SourceBodyV2
	}

	accepts, err := readAccepts(top["accepts"], where)
	if err != nil {
		return nil, err
	}

	if e := top["error"]; e != nil && string(e) != "null" {
		var s string
		if json.Unmarshal(e, &s) != nil {
			s = string(e) // not a string: show the JSON rather than lose it
		}
		pr.Error = displayText(s)
	}
	if pr.Version == 2 {
		pr.Resource = top["resource"]
		pr.Extensions = top["extensions"]
		if r := objectFields(pr.Resource); r != nil {
			pr.ResourceURL = displayString(r["url"])
			pr.Description = displayString(r["description"])
			pr.MimeType = displayString(r["mimeType"])
		}
	}

	pr.Options = make([]Option, len(accepts))
	for i, raw := range accepts {
		pr.Options[i] = parseOption(i, raw, pr.Version)
		if pr.ResourceURL == "" && pr.Description == "" {
			// v1 describes the resource in each option; v2 servers that omit
			// the top-level object sometimes do the same.
			if f := objectFields(raw); f != nil {
				pr.ResourceURL = displayString(f["resource"])
				pr.Description = displayString(f["description"])
				pr.MimeType = displayString(f["mimeType"])
			}
		}
	}
	return pr, nil
}

// readAccepts checks the shape and size of accepts and splits it into the
// options' raw bytes, which json.RawMessage keeps exactly as received.
func readAccepts(raw json.RawMessage, where string) ([]json.RawMessage, error) {
	if len(raw) == 0 {
		return nil, &WireError{Kind: ErrNoOptions, Where: where, Field: "accepts",
			Msg: "accepts is missing; there is nothing to pay"}
	}
	if raw[0] != '[' {
		return nil, &WireError{Kind: ErrNoOptions, Where: where, Field: "accepts",
			Msg: "accepts is " + describeJSON(raw) + ", not an array"}
	}
	accepts, ok := elements(raw)
	if !ok {
		if err := json.Unmarshal(raw, &accepts); err != nil {
			return nil, &WireError{Kind: ErrInvalidJSON, Where: where, Field: "accepts", Msg: err.Error(), Err: err}
		}
	}
	switch {
	case len(accepts) == 0:
		return nil, &WireError{Kind: ErrNoOptions, Where: where, Field: "accepts",
			Msg: "accepts is empty; there is nothing to pay"}
	case len(accepts) > MaxOptions:
		return nil, &WireError{Kind: ErrTooLarge, Where: where, Field: "accepts",
			Msg: "accepts has " + strconv.Itoa(len(accepts)) + " options; at most " + strconv.Itoa(MaxOptions) + " are read"}
	}
	return accepts, nil
}

// objectFields splits a JSON object into its members, which alias raw; nil
// if raw is not an object. Only used on input checkJSON has accepted.
func objectFields(raw json.RawMessage) map[string]json.RawMessage {
	if len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	if m, ok := members(raw); ok {
		return m
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

// displayString reads a JSON string for display; anything else is "".
func displayString(raw json.RawMessage) string {
	s, ok := jsonString(raw)
	if !ok {
		return ""
	}
	return displayText(s)
}

// jsonString reads raw as a JSON string; ok is false for any other type.
func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 {
		// checkJSON has vetted the document, so without escapes the bytes
		// between the quotes are the string.
		return string(inner), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}
