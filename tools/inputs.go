package tools

import (
	"fmt"

	"github.com/x402-mcp/x402-mcp/x402"
)

// InputsOut is how to call a resource, as its 402 or listing declares.
type InputsOut struct {
	Method      string     `json:"method,omitempty" jsonschema:"The HTTP method the resource expects."`
	QueryParams []FieldOut `json:"query_params,omitempty" jsonschema:"Declared query parameters."`
	BodyType    string     `json:"body_type,omitempty" jsonschema:"json, form-data or text."`
	BodySchema  []FieldOut `json:"body_schema,omitempty" jsonschema:"Declared top-level fields of a JSON body."`
	BodyExample string     `json:"body_example,omitempty" jsonschema:"An example body, as text."`
	Headers     []FieldOut `json:"headers,omitempty" jsonschema:"Declared request headers."`
	Required    []string   `json:"required,omitempty" jsonschema:"Inputs the server says are required; x402_fetch refuses to pay for a request that lacks one."`
}

// FieldOut is one declared input.
type FieldOut struct {
	Name        string `json:"name"`
	Type        string `json:"type,omitempty"`
	Description string `json:"description,omitempty"`
	Example     string `json:"example,omitempty"`
	Required    bool   `json:"required"`
}

func inputsOut(in x402.Inputs) *InputsOut {
	if in.Type != "" && in.Type != "http" {
		return nil
	}
	out := &InputsOut{Method: in.Method, BodyType: in.BodyType, BodyExample: in.BodyExample}
	fields := func(fs []x402.Field, kind string) []FieldOut {
		var o []FieldOut
		for _, f := range fs {
			o = append(o, FieldOut{Name: f.Name, Type: f.Type, Description: f.Description, Example: f.Example, Required: f.Required})
			if f.Required {
				out.Required = append(out.Required, fmt.Sprintf("%s %q", kind, f.Name))
			}
		}
		return o
	}
	out.QueryParams = fields(in.Query, "query parameter")
	out.BodySchema = fields(in.Body, "body field")
	out.Headers = fields(in.Headers, "header")
	if out.Method == "" && out.QueryParams == nil && out.BodyType == "" && out.BodySchema == nil && out.BodyExample == "" && out.Headers == nil {
		return nil
	}
	return out
}
