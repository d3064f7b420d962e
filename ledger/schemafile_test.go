package ledger

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"
)

var updateSchema = flag.Bool("update", false, "rewrite schema.json from the migrations")

// TestSchemaFileIsCurrent: schema.json is exactly the schema the
// migrations build, which Open's integrity check compares a ledger with.
func TestSchemaFileIsCurrent(t *testing.T) {
	built, err := buildSchema(len(migrations))
	if err != nil {
		t.Fatal(err)
	}
	if embeddedSchema(len(migrations)-1) != nil {
		t.Fatal("schema.json is taken for an older version")
	}
	rows := make([]schemaRow, 0, len(built))
	for _, o := range built {
		rows = append(rows, schemaRow{Type: o.typ, Name: o.name, SQL: o.sql})
	}
	slices.SortFunc(rows, func(a, b schemaRow) int { return strings.Compare(a.Type+" "+a.Name, b.Type+" "+b.Name) })
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // the SQL reads as written
	enc.SetIndent("", "\t")
	if err := enc.Encode(schemaJSON{Version: len(migrations), Objects: rows}); err != nil {
		t.Fatal(err)
	}
	want := buf.Bytes()
	if *updateSchema {
		if err := os.WriteFile("schema.json", want, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Skip("schema.json rewritten; run the tests again without -update")
	}
	if !bytes.Equal(schemaFile, want) {
		t.Fatal("ledger/schema.json is not what the migrations build: run go test ./ledger -run TestSchemaFileIsCurrent -update, and commit the file")
	}
	if got := embeddedSchema(len(migrations)); len(got) != len(built) || len(got) < 10 {
		t.Fatalf("schema.json decodes to %d objects; the migrations build %d", len(got), len(built))
	} else {
		for k, o := range built {
			if got[k] != o {
				t.Fatalf("%s: schema.json has %+v, the migrations build %+v", k, got[k], o)
			}
		}
	}
}
