package tools

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// derivedSchemas builds every tool with its schemas derived from the Go
// types, and returns them as schemas.json holds them.
func derivedSchemas(t *testing.T) (map[string]toolSchemas, map[string]mcp.Tool) {
	t.Helper()
	deriveSchemas.Store(true)
	defer deriveSchemas.Store(false)
	appr, err := newApprovals(nil)
	if err != nil {
		t.Fatal(err)
	}
	file, built := map[string]toolSchemas{}, map[string]mcp.Tool{}
	for _, st := range tools(Deps{approvals: appr}) {
		built[st.Tool.Name] = st.Tool
		if st.Tool.RawInputSchema == nil {
			continue // its input schema is built from options, quickly
		}
		s := toolSchemas{Input: st.Tool.RawInputSchema}
		if st.Tool.OutputSchema.Type != "" {
			if s.Output, err = json.Marshal(st.Tool.OutputSchema); err != nil {
				t.Fatal(err)
			}
		}
		file[st.Tool.Name] = s
	}
	return file, built
}

// TestSchemasFileIsCurrent: schemas.json holds exactly the schemas the Go
// types give, and a tool built from the file publishes the same
// definition, byte for byte, as one built from the types.
func TestSchemasFileIsCurrent(t *testing.T) {
	file, derived := derivedSchemas(t)
	want, err := json.MarshalIndent(file, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *update {
		if err := os.WriteFile("schemas.json", want, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Skip("schemas.json rewritten; run the tests again without -update")
	}
	if !bytes.Equal(schemasFile, want) {
		t.Fatalf("tools/schemas.json is not what the tools' Go types give: run go test ./tools -run TestSchemasFileIsCurrent -update, and commit the file")
	}
	if len(file) < 5 {
		t.Fatalf("schemas.json has %d tools; expected at least discover, fetch, quote, spending and wallet", len(file))
	}
	appr, err := newApprovals(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range tools(Deps{approvals: appr}) {
		got, err := json.Marshal(st.Tool)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(derived[st.Tool.Name])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s from schemas.json:\n%s\nfrom its Go types:\n%s", st.Tool.Name, got, want)
		}
	}
}
