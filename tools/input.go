package tools

import (
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
