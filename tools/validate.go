package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// The arguments of every call are checked against the tool's published
// input schema here rather than by mcp-go, whose messages print Go structs
// ("&{Got:boolean Want:[number string]}"): the agent reads these and should
// be able to correct its call from them.

var printer = message.NewPrinter(language.English)

// validated wraps a tool's handler with the check of its arguments. The
// schema is compiled at the first call, not when the server is built: the
// server answers initialize and tools/list without it.
func validated(st server.ServerTool) server.ServerTool {
	compile := sync.OnceValue(func() *jsonschema.Schema {
		schema, err := compileInput(st.Tool)
		if err != nil {
			// The schemas are ours and fixed: a broken one is a bug that
			// TestInputSchemasCompile catches.
			panic(err)
		}
		return schema
	})
	next := st.Handler
	st.Handler = func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if msg := checkArgs(compile(), req); msg != "" {
			return mcp.NewToolResultError("invalid arguments: " + msg), nil
		}
		return next(ctx, req)
	}
	return st
}

func compileInput(t mcp.Tool) (*jsonschema.Schema, error) {
	raw := t.RawInputSchema
	if len(raw) == 0 {
		var err error
		if raw, err = json.Marshal(t.InputSchema); err != nil {
			return nil, err
		}
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("tools: %s input schema: %w", t.Name, err)
	}
	c := jsonschema.NewCompiler()
	url := "mem:///tools/" + t.Name + ".json"
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("tools: %s input schema: %w", t.Name, err)
	}
	return c.Compile(url)
}

// checkArgs returns what is wrong with the call's arguments, "" when
// nothing is.
func checkArgs(schema *jsonschema.Schema, req mcp.CallToolRequest) string {
	raw := req.Params.RawArguments
	if len(bytes.TrimSpace(raw)) == 0 {
		if req.Params.Arguments == nil {
			raw = []byte("{}")
		} else {
			var err error
			if raw, err = json.Marshal(req.Params.Arguments); err != nil {
				return "the arguments are not JSON"
			}
		}
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return "the arguments are not valid JSON"
	}
	err = schema.Validate(v)
	verr, ok := err.(*jsonschema.ValidationError)
	if !ok {
		if err != nil {
			return err.Error()
		}
		return ""
	}
	var msgs []string
	for _, leaf := range leaves(verr) {
		msgs = append(msgs, describe(leaf))
	}
	slices.Sort(msgs)
	return strings.Join(slices.Compact(msgs), "; ")
}

func leaves(e *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return []*jsonschema.ValidationError{e}
	}
	var out []*jsonschema.ValidationError
	for _, c := range e.Causes {
		out = append(out, leaves(c)...)
	}
	return out
}

// describe words one problem: where, then what, in the validator's own
// English. A price in the wrong form gets the one sentence the tools use
// for it.
func describe(e *jsonschema.ValidationError) string {
	where := strings.Join(e.InstanceLocation, ".")
	if where == "max_price" {
		return errDecimalType.Error()
	}
	what := e.ErrorKind.LocalizedString(printer)
	if where == "" {
		return what
	}
	return where + ": " + what
}
