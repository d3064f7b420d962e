package x402

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestInputsGolden reads each 402 in testdata/inputs (the bazaar.md examples
// with a real option in accepts, and v1 outputSchema bodies) and compares
// what InputsFromRequired makes of it, and what an empty request lacks, with
// the .golden file beside it. go test -run TestInputsGolden -update rewrites
// them; review the diff, it is what an agent will be shown.
func TestInputsGolden(t *testing.T) {
	docs, err := filepath.Glob(filepath.Join("testdata", "inputs", "*.json"))
	if err != nil || len(docs) == 0 {
		t.Fatalf("no test documents: %v", err)
	}
	for _, doc := range docs {
		name := strings.TrimSuffix(filepath.Base(doc), ".json")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(doc)
			if err != nil {
				t.Fatal(err)
			}
			pr, err := ParseResponse(nil, data)
			if err != nil {
				t.Fatalf("ParseResponse: %v", err)
			}
			if len(pr.Payable()) != 1 {
				t.Fatalf("the document's option is not payable: %v", pr.Options[0].Err)
			}
			in, ok := InputsFromRequired(pr)
			got := renderInputs(t, in, ok)
			golden := strings.TrimSuffix(doc, ".json") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("InputsFromRequired(%s) differs from %s (run with -update and review the diff):\n%s", doc, golden, got)
			}
		})
	}
}

func renderInputs(t *testing.T, in Inputs, ok bool) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	err := enc.Encode(struct {
		OK                 bool     `json:"ok"`
		Inputs             *Inputs  `json:"inputs,omitempty"`
		MissingFromNothing []string `json:"missingFromEmptyRequest,omitempty"`
	}{ok, map[bool]*Inputs{true: &in}[ok], in.Missing(nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Spec inputs as a discovery listing carries them: without a schema.
const (
	specGetInput  = `{"type":"http","method":"GET","queryParams":{"city":"San Francisco"}}`
	specPostInput = `{"type":"http","method":"POST","bodyType":"json","body":{"query":"example"}}`
)

// querySchema and bodySchema write an info schema whose input declares
// the given queryParams or body schema (raw JSON).
func querySchema(qp string) string {
	return `{"type":"object","properties":{"input":{"type":"object","properties":{"queryParams":` + qp + `}}}}`
}

func bodySchema(body string) string {
	return `{"type":"object","properties":{"input":{"type":"object","properties":{"body":` + body + `}}}}`
}

func TestParseInputs(t *testing.T) {
	tests := []struct {
		name          string
		input, schema string
		want          Inputs
		ok            bool
	}{
		{"listing GET without schema: nothing required", specGetInput, "",
			Inputs{Type: "http", Method: "GET", Query: []Field{{Name: "city", Example: "San Francisco"}}}, true},
		{"listing POST without schema: nothing required", specPostInput, "",
			Inputs{Type: "http", Method: "POST", BodyType: "json", Body: []Field{{Name: "query", Example: "example"}},
				BodyExample: `{"query":"example"}`}, true},
		{"GET with required city", specGetInput, querySchema(`{"type":"object","properties":{"city":{"type":"string","description":"City name"}},"required":["city"]}`),
			Inputs{Type: "http", Method: "GET", Query: []Field{{Name: "city", Type: "string", Description: "City name", Example: "San Francisco", Required: true}}}, true},
		{"required names a field not in properties", specGetInput, querySchema(`{"type":"object","properties":{"city":{"type":"string"}},"required":["country"]}`),
			Inputs{Type: "http", Method: "GET", Query: []Field{
				{Name: "country", Required: true},
				{Name: "city", Type: "string", Example: "San Francisco"}}}, true},
		{"required not an array", specGetInput, querySchema(`{"properties":{"city":{"type":"string"}},"required":"city"}`),
			Inputs{Type: "http", Method: "GET", Query: []Field{{Name: "city", Type: "string", Example: "San Francisco"}}}, true},
		{"required with non-strings and bad names", specGetInput, querySchema(`{"required":[1,null,"", "a b","ok\u0007","city"]}`),
			Inputs{Type: "http", Method: "GET", Query: []Field{{Name: "city", Example: "San Francisco", Required: true}}}, true},
		{"required array in a nested body property is not the field's", specPostInput,
			bodySchema(`{"properties":{"query":{"type":"object","required":["q"]}}}`),
			Inputs{Type: "http", Method: "POST", BodyType: "json", Body: []Field{{Name: "query", Type: "object", Example: "example"}},
				BodyExample: `{"query":"example"}`}, true},
		{"body required from schema", specPostInput, bodySchema(`{"type":"object","required":["query","limit"]}`),
			Inputs{Type: "http", Method: "POST", BodyType: "json", Body: []Field{{Name: "limit", Required: true}, {Name: "query", Example: "example", Required: true}},
				BodyExample: `{"query":"example"}`}, true},
		{"schema not of the info shape is ignored", specGetInput, `{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`,
			Inputs{Type: "http", Method: "GET", Query: []Field{{Name: "city", Example: "San Francisco"}}}, true},
		{"schema that is not JSON is ignored", specGetInput, `{"properties":`,
			Inputs{Type: "http", Method: "GET", Query: []Field{{Name: "city", Example: "San Francisco"}}}, true},
		{"schema with a repeated key is ignored", specGetInput, querySchema(`{"required":["city"],"required":[]}`),
			Inputs{Type: "http", Method: "GET", Query: []Field{{Name: "city", Example: "San Francisco"}}}, true},
		{"v1 field definitions", `{"type":"http","method":"get","queryParams":{"q":{"type":"string","description":"Search terms","required":true},"n":{"type":"integer","required":false,"example":10}}}`, "",
			Inputs{Type: "http", Method: "GET", Query: []Field{
				{Name: "q", Type: "string", Description: "Search terms", Required: true},
				{Name: "n", Type: "integer", Example: "10"}}}, true},
		{"v1 required must be the boolean true", `{"type":"http","queryParams":{"a":{"required":"true"},"b":{"required":1},"c":{"required":["x"]},"d":{"required":true}}}`, "",
			Inputs{Type: "http", Query: []Field{{Name: "d", Required: true}, {Name: "a"}, {Name: "b"}, {Name: "c"}}}, true},
		{"v1 example strings", `{"type":"http","method":"GET","queryParams":{"city":"London","days":3,"flag":true,"none":null}}`, "",
			Inputs{Type: "http", Method: "GET", Query: []Field{{Name: "city", Example: "London"}, {Name: "days", Example: "3"}, {Name: "flag", Example: "true"}, {Name: "none"}}}, true},
		{"v1 bodyFields and headerFields", `{"type":"http","method":"POST","bodyType":"json","bodyFields":{"text":{"type":"string","required":true}},"headerFields":{"X-Key":{"required":true},"X-Opt":"v"}}`, "",
			Inputs{Type: "http", Method: "POST", BodyType: "json", Body: []Field{{Name: "text", Type: "string", Required: true}},
				Headers: []Field{{Name: "X-Key", Required: true}, {Name: "X-Opt", Example: "v"}}}, true},
		{"v2 body values are examples even when objects", `{"type":"http","method":"POST","bodyType":"json","body":{"opts":{"required":true,"type":"x"}}}`, "",
			Inputs{Type: "http", Method: "POST", BodyType: "json", Body: []Field{{Name: "opts", Example: `{"required":true,"type":"x"}`}},
				BodyExample: `{"opts":{"required":true,"type":"x"}}`}, true},
		{"text body example kept as text", `{"type":"http","method":"POST","bodyType":"text","body":"Translate\u0000 this"}`, "",
			Inputs{Type: "http", Method: "POST", BodyType: "text", BodyExample: "Translate this"}, true},
		{"string body example with json body type is JSON", `{"type":"http","method":"POST","bodyType":"JSON","body":"x"}`, "",
			Inputs{Type: "http", Method: "POST", BodyType: "json", BodyExample: `"x"`}, true},
		{"unknown body type and method", `{"type":"http","method":"GET /x","bodyType":"xml"}`, "",
			Inputs{Type: "http"}, true},
		{"mcp tool", `{"type":"mcp","toolName":"financial_analysis","inputSchema":{"type":"object","properties":{"ticker":{"type":"string"}},"required":["ticker"]},"example":{"ticker":"AAPL"},"queryParams":{"x":"1"}}`, "",
			Inputs{Type: "mcp", Body: []Field{{Name: "ticker", Type: "string", Example: "AAPL", Required: true}}, ToolName: "financial_analysis", BodyExample: `{"ticker":"AAPL"}`}, true},
		{"mcp tool name that is not a token", `{"type":"mcp","toolName":"a\nb"}`, "", Inputs{Type: "mcp"}, true},
		{"unknown type keeps what is declared", `{"type":"grpc","queryParams":{"a":"1"}}`, "",
			Inputs{Query: []Field{{Name: "a", Example: "1"}}}, true},
		{"queryParams an array", `{"type":"http","method":"GET","queryParams":["city"]}`, querySchema(`{"required":["city"]}`),
			Inputs{Type: "http", Method: "GET", Query: []Field{{Name: "city", Required: true}}}, true},
		{"bad field names skipped", `{"type":"http","queryParams":{"":"1","a b":"2","x\u202ey":"3","ok":"4"}}`, "",
			Inputs{Type: "http", Query: []Field{{Name: "ok", Example: "4"}}}, true},
		{"input not an object", `["type","http"]`, "", Inputs{}, false},
		{"input a string", `"http"`, "", Inputs{}, false},
		{"input empty", ``, "", Inputs{}, false},
		{"input declares nothing", `{"discoverable":true}`, "", Inputs{}, false},
		{"input not JSON", `{"type":"http",`, "", Inputs{}, false},
		{"input with a repeated key", `{"type":"http","Type":"mcp"}`, "", Inputs{}, false},
		{"input over the bound", `{"type":"http","pad":"` + strings.Repeat("x", MaxInputBytes) + `"}`, "", Inputs{}, false},
		{"schema over the bound is ignored", specGetInput, querySchema(`{"required":["city"],"pad":"` + strings.Repeat("x", MaxInputBytes) + `"}`),
			Inputs{Type: "http", Method: "GET", Query: []Field{{Name: "city", Example: "San Francisco"}}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var schema []byte
			if tc.schema != "" {
				schema = []byte(tc.schema)
			}
			got, ok := ParseInputs([]byte(tc.input), schema)
			if ok != tc.ok || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseInputs = %+v, %v\nwant %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestParseInputsBounds(t *testing.T) {
	long := strings.Repeat("é", 400) // 800 bytes, two per rune
	var q []string
	for i := range 3 * MaxInputFields {
		q = append(q, strconv.Quote("p"+strconv.Itoa(i))+`:"v"`)
	}
	q = append(q,
		strconv.Quote(strings.Repeat("n", maxInputNameBytes))+`:"v"`,
		strconv.Quote(strings.Repeat("n", maxInputNameBytes+1))+`:"v"`,
		`"zz":{"description":"`+long+`\u001b[2J","example":"`+long+`","type":"`+long+`"}`)
	input := `{"type":"http","method":"GET","queryParams":{` + strings.Join(q, ",") + `},"body":{"k":"` + long + long + long + `"}}`
	schema := querySchema(`{"required":["zz","p150","` + strings.Repeat("n", maxInputNameBytes) + `"]}`)
	in, ok := ParseInputs([]byte(input), []byte(schema))
	if !ok {
		t.Fatal("not ok")
	}
	if len(in.Query) != MaxInputFields {
		t.Fatalf("%d query fields; want the bound %d", len(in.Query), MaxInputFields)
	}
	// The required ones survive the cut, in name order.
	if in.Query[0].Name != strings.Repeat("n", maxInputNameBytes) || in.Query[1].Name != "p150" || in.Query[2].Name != "zz" || in.Query[3].Required {
		t.Fatalf("required fields not first: %q %q %q %v", in.Query[0].Name, in.Query[1].Name, in.Query[2].Name, in.Query[3].Required)
	}
	zz := in.Query[2]
	for _, c := range []struct {
		what  string
		s     string
		limit int
	}{{"description", zz.Description, maxInputDescBytes}, {"example", zz.Example, maxInputExampleBytes},
		{"type", zz.Type, maxInputTypeBytes}, {"body example", in.BodyExample, maxBodyExampleBytes}} {
		if len(c.s) > c.limit+len("…") || !strings.HasSuffix(c.s, "…") {
			t.Errorf("%s is %d bytes, not cut to %d", c.what, len(c.s), c.limit)
		}
		checkDisplayBounded(t, c.s, c.limit)
	}
	for _, f := range in.Query {
		if len(f.Name) > maxInputNameBytes {
			t.Errorf("kept a %d-byte name", len(f.Name))
		}
	}
	if got := in.Missing(url.Values{"zz": {""}}, nil); len(got) != 2 {
		t.Errorf("Missing = %q; want the two other required parameters", got)
	}
}

func TestInputsMissing(t *testing.T) {
	get, _ := ParseInputs([]byte(specGetInput), []byte(querySchema(`{"required":["city"]}`)))
	post, _ := ParseInputs([]byte(`{"type":"http","method":"POST","bodyType":"json","body":{"text":"hi","lang":"fr"},"queryParams":{"v":"1"}}`),
		[]byte(`{"properties":{"input":{"properties":{"body":{"required":["text"]},"queryParams":{"required":["v"]}}}}}`))
	form := post
	form.BodyType = BodyTypeFormData
	mcp, _ := ParseInputs([]byte(`{"type":"mcp","toolName":"t","inputSchema":{"required":["x"]}}`), nil)
	untyped := get
	untyped.Type = ""
	v1, _ := ParseInputs([]byte(`{"type":"http","method":"POST","bodyType":"json","bodyFields":{"text":{"required":true}}}`), nil)

	tests := []struct {
		name  string
		in    Inputs
		query string
		body  string
		want  []string
	}{
		{"absent query parameter", get, "units=metric", "", []string{`query parameter "city"`}},
		{"no query at all", get, "", "", []string{`query parameter "city"`}},
		{"present query parameter", get, "city=Paris", "", nil},
		{"present but empty", get, "city=", "", nil},
		{"present without a value", get, "city", "", nil},
		{"present in another case", get, "City=Paris", "", nil},
		{"body object missing a field", post, "v=1", `{"lang":"de"}`, []string{`body field "text"`}},
		{"body and query both lacking", post, "", ` {"lang":"de"} `, []string{`query parameter "v"`, `body field "text"`}},
		{"body has the field", post, "v=1", `{"text":"hello"}`, nil},
		{"body field null is present", post, "v=1", `{"text":null}`, nil},
		{"empty body", post, "v=1", "", []string{`body field "text"`}},
		{"blank body", post, "v=1", " \n", []string{`body field "text"`}},
		{"body not JSON", post, "v=1", `text=hello`, nil},
		{"body JSON but not an object", post, "v=1", `["text"]`, nil},
		{"body truncated JSON", post, "v=1", `{"lang":"de"`, nil},
		{"body with a non-JSON space is not empty", post, "v=1", "\u00a0", nil},
		{"form-data body is not checked", form, "v=1", `{}`, nil},
		{"form-data still checks the query", form, "", ``, []string{`query parameter "v"`}},
		{"mcp is not checked", mcp, "", ``, nil},
		{"unknown type is not checked", untyped, "", ``, nil},
		{"v1 required body field", v1, "", `{}`, []string{`body field "text"`}},
		{"zero Inputs", Inputs{}, "", ``, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.in.Missing(q, []byte(tc.body)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Missing(%q, %q) = %q; want %q", tc.query, tc.body, got, tc.want)
			}
		})
	}
}

func TestInputsFromRequiredSources(t *testing.T) {
	v1Input := `{"type":"http","method":"GET","queryParams":{"q":{"required":true}}}`
	withOutputSchema := option("outputSchema", `{"input":`+v1Input+`}`)
	tests := []struct {
		name string
		doc  string
		want string // the first query parameter's name; "" when not ok
	}{
		{"bazaar wins over outputSchema",
			`{"x402Version":2,"accepts":[` + withOutputSchema + `],"extensions":{"bazaar":{"info":{"input":` + specGetInput + `}}}}`, "city"},
		{"unusable bazaar falls back to outputSchema",
			`{"x402Version":2,"accepts":[` + withOutputSchema + `],"extensions":{"bazaar":{"info":{"input":"GET /weather"}}}}`, "q"},
		{"first option with an outputSchema",
			`{"x402Version":1,"accepts":[` + option("outputSchema", `null`) + `,` + withOutputSchema + `]}`, "q"},
		{"bazaar not an object", `{"x402Version":2,"accepts":[` + option() + `],"extensions":{"bazaar":[1]}}`, ""},
		{"info without input", `{"x402Version":2,"accepts":[` + option() + `],"extensions":{"bazaar":{"info":{"output":{}}}}}`, ""},
		{"outputSchema input not an object", `{"x402Version":1,"accepts":[` + option("outputSchema", `{"input":true}`) + `]}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pr, err := ParseResponse(nil, []byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			in, ok := InputsFromRequired(pr)
			got := ""
			if ok && len(in.Query) > 0 {
				got = in.Query[0].Name
			}
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("InputsFromRequired = %+v, %v; want first query parameter %q", in, ok, tc.want)
			}
		})
	}
	if in, ok := InputsFromRequired(nil); ok || !reflect.DeepEqual(in, Inputs{}) {
		t.Errorf("InputsFromRequired(nil) = %+v, %v", in, ok)
	}
}
