package tools

import (
	_ "embed"
	"encoding/json"
	"sync"
	"sync/atomic"

	"github.com/mark3labs/mcp-go/mcp"
)

// The tools' JSON schemas are derived from their Go input and output types
// by reflection, which takes milliseconds on a cold start: time the host's
// first tools/list, sent right after initialize, would wait. They are
// derived once, ahead of time, into schemas.json, which the binary embeds;
// TestSchemasFileIsCurrent fails when the types and the file disagree and
// rewrites the file with -update.

//go:embed schemas.json
var schemasFile []byte

// toolSchemas are a tool's input and output schemas as published.
type toolSchemas struct {
	Input  json.RawMessage `json:"input"`
	Output json.RawMessage `json:"output,omitempty"`
}

// deriveSchemas makes schemas derive every schema from the types, as the
// file is made; set only by tests.
var deriveSchemas atomic.Bool

var embeddedSchemas = sync.OnceValue(func() map[string]toolSchemas {
	var m map[string]toolSchemas
	if json.Unmarshal(schemasFile, &m) != nil {
		return nil // TestSchemasFileIsCurrent catches it; derive meanwhile
	}
	return m
})

// schemas gives the tool its input and output schemas from schemas.json,
// by the tool's name. derive is how they are made from the Go types (such as
// mcp.WithInputSchema[T], then adjustments such as acceptNumber, then
// mcp.WithOutputSchema[T]); it runs only when the file has no entry for
// the tool, or for the test that writes the file.
func schemas(derive ...mcp.ToolOption) mcp.ToolOption {
	return func(t *mcp.Tool) {
		s, ok := embeddedSchemas()[t.Name]
		if deriveSchemas.Load() || !ok || len(s.Input) == 0 {
			for _, o := range derive {
				o(t)
			}
			return
		}
		t.InputSchema.Type = ""
		t.RawInputSchema = s.Input
		t.RawOutputSchema = s.Output
	}
}
