package x402

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// quickSeeds are documents at quickJSON's edges: each kind of value,
// escapes in values and keys, repeats by case and by escape, depth at and
// past the bound, wide objects, and broken syntax of every kind.
var quickSeeds = []string{
	`{}`, ` {"a":[1,{"b":null}],"c":"\u00e9"} `, `{"a":{"x":1},"b":{"x":1}}`,
	`{"a":1,"a":1}`, `{"a":1,"A":1}`, `{"\u0041":1,"A":2}`, `{"ſ":1,"S":2}`, `{"K":1,"K":2}`,
	`{"a":-0.5e+10,"b":0,"c":-1E-2,"d":true,"e":false,"f":null,"g":"\"\\\/\b\f\n\r\t\uABcd"}`,
	`{"a":01}`, `{"a":-}`, `{"a":1.}`, `{"a":1e}`, `{"a":.5}`, `{"a":+1}`, `{"a":tru}`, `{"a":nul}`,
	`{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"` + "\x01" + `"}`, `{"a":1,}`, `{"a":[1,]}`, `{,}`, `{"a"}`,
	`{"a":1}{"b":2}`, `{"a":1}x`, "\ufeff{}", `[]`, `"s"`, ``, ` `, `{`, `{"a":[`, `{"a":"`,
	strings.Repeat(`{"a":`, MaxDepth) + `1` + strings.Repeat(`}`, MaxDepth),
	strings.Repeat(`{"a":`, MaxDepth+1) + `1` + strings.Repeat(`}`, MaxDepth+1),
	`{"a":` + strings.Repeat(`[`, MaxDepth-1) + strings.Repeat(`]`, MaxDepth-1) + `}`,
	`{"a":` + strings.Repeat(`[`, MaxDepth) + strings.Repeat(`]`, MaxDepth) + `}`,
	wideObject(maxQuickKeys), wideObject(maxQuickKeys + 1),
}

func wideObject(n int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"k` + strings.Repeat("x", i) + `":1`)
	}
	return b.String() + "}"
}

// FuzzQuickJSON holds quickJSON to its promise: whatever it accepts, the
// full walk accepts (and quickValue: whatever it accepts is valid JSON).
func FuzzQuickJSON(f *testing.F) {
	for _, s := range quickSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !utf8.Valid(data) {
			return
		}
		if quickJSON(data) {
			if err := walkJSON(data, "fuzz"); err != nil {
				t.Fatalf("quickJSON accepted what the walk refuses (%v): %q", err, data)
			}
		}
		if quickValue(data) && !json.Valid(data) {
			t.Fatalf("quickValue accepted what encoding/json refuses: %q", data)
		}
	})
}

// TestQuickJSONTakesRealDocuments checks the quick path is the one real
// documents take (the vectors, the bazaar goldens and the edge cases the
// walk accepts without needing its map), and that it refuses every seed the
// walk refuses.
func TestQuickJSONTakesRealDocuments(t *testing.T) {
	v := loadVectors(t)
	docs := []string{v.V2.PaymentRequired.Header, string(v.V1.Body), wideObject(maxQuickKeys),
		v2Doc(option(), option("scheme", `"upto"`), option("network", `"solana"`))}
	for _, data := range goldenInputs(t) {
		docs = append(docs, string(data))
	}
	for _, d := range docs {
		if walkJSON([]byte(d), "test") == nil && !quickJSON([]byte(d)) {
			t.Errorf("accepted only by the slow walk: %.80q", d)
		}
	}
	for _, s := range quickSeeds {
		if quickJSON([]byte(s)) && walkJSON([]byte(s), "test") != nil {
			t.Errorf("quickJSON accepts %.80q, which the walk refuses", s)
		}
	}
	for _, s := range []string{`{"a":1,"A":1}`, `{"\u0041":1,"A":2}`, wideObject(maxQuickKeys + 1),
		strings.Repeat(`{"a":`, MaxDepth+1) + `1` + strings.Repeat(`}`, MaxDepth+1)} {
		if quickJSON([]byte(s)) {
			t.Errorf("quickJSON must leave %.80q to the walk", s)
		}
	}
}

// FuzzMembers holds members and elements to encoding/json: whatever they
// split, encoding/json splits the same way, to the same bytes.
func FuzzMembers(f *testing.F) {
	for _, s := range quickSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"a":[1, {"b":2}] , "c" : "\u00e9", "d":{}}`))
	f.Add([]byte(`[ {"a":1}, [], "x", 1.5e3 ,null]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if m, ok := members(data); ok {
			var want map[string]json.RawMessage
			if err := json.Unmarshal(data, &want); err != nil {
				t.Fatalf("members split what encoding/json refuses (%v): %q", err, data)
			}
			if !reflect.DeepEqual(m, want) {
				t.Fatalf("members %q, encoding/json %q", m, want)
			}
		}
		if list, ok := elements(data); ok {
			var want []json.RawMessage
			if err := json.Unmarshal(data, &want); err != nil {
				t.Fatalf("elements split what encoding/json refuses (%v): %q", err, data)
			}
			if len(list) != len(want) {
				t.Fatalf("elements %q, encoding/json %q", list, want)
			}
			for i := range list {
				if !bytes.Equal(list[i], want[i]) {
					t.Fatalf("element %d: %q, encoding/json %q", i, list[i], want[i])
				}
			}
		}
	})
}

// goldenInputs reads the 402 documents of testdata/inputs.
func goldenInputs(t testing.TB) [][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "inputs", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no documents in testdata/inputs: %v", err)
	}
	docs := make([][]byte, len(files))
	for i, name := range files {
		if docs[i], err = os.ReadFile(name); err != nil {
			t.Fatal(err)
		}
	}
	return docs
}
