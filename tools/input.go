package tools

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/x402-mcp/x402-mcp/pay"
	"github.com/x402-mcp/x402-mcp/policy"
)

// RequestInput is the HTTP request both tools take.
type RequestInput struct {
	URL     string            `json:"url" jsonschema:"The http or https URL to request."`
	Method  string            `json:"method,omitempty" jsonschema:"HTTP method: GET (default), HEAD, POST, PUT, PATCH or DELETE."`
	Headers map[string]string `json:"headers,omitempty" jsonschema:"Extra request headers. Payment headers are set by x402-mcp and cannot be supplied."`
	Body    string            `json:"body,omitempty" jsonschema:"Request body as text (for POST, PUT, PATCH), e.g. a JSON document; set a Content-Type header to match."`
}

func (in RequestInput) request(maxPrice policy.USD) pay.Request {
	var body []byte
	if in.Body != "" {
		body = []byte(in.Body)
	}
	return pay.Request{Method: in.Method, URL: in.URL, Headers: in.Headers, Body: body, MaxPrice: maxPrice}
}

// errDecimalType is what an agent reads when it sends a price that is
// neither a string nor a number.
var errDecimalType = errors.New(`max_price must be a decimal string such as "0.05"`)

// Decimal is a USD amount an agent gives either as a JSON string ("0.05")
// or as a JSON number (0.05). A number is kept as its literal text, never
// read through a float, so 0.1 stays exactly 0.1; policy.ParseUSD then
// reads the text (and refuses exponents and excess digits).
type Decimal string

// UnmarshalJSON keeps the literal text of a string or number.
func (d *Decimal) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*d = ""
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return errDecimalType
		}
		*d = Decimal(s)
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		*d = Decimal(b)
	default:
		return errDecimalType
	}
	return nil
}

// USD reads the amount; the zero USD (no limit) when empty.
func (d Decimal) USD() (policy.USD, error) {
	if d == "" {
		return policy.USD{}, nil
	}
	u, err := policy.ParseUSD(string(d))
	if err != nil {
		return policy.USD{}, errors.New(errDecimalType.Error() + ": " + err.Error())
	}
	return u, nil
}

// acceptNumber lets a property that a Decimal decodes also be a JSON
// number in the published input schema (the generated schema says only
// "string"), so that input validation lets 0.05 through to Decimal.
func acceptNumber(property string) mcp.ToolOption {
	return func(t *mcp.Tool) {
		var schema map[string]any
		if json.Unmarshal(t.RawInputSchema, &schema) != nil {
			return
		}
		props, _ := schema["properties"].(map[string]any)
		p, _ := props[property].(map[string]any)
		if p == nil {
			return
		}
		p["type"] = []string{"string", "number"}
		if b, err := json.Marshal(schema); err == nil {
			t.RawInputSchema = b
		}
	}
}
