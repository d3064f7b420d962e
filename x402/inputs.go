package x402

import (
	"bytes"
	"cmp"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds on a declared input. A 402 is already bounded as a whole, but the
// same input object also arrives in discovery listings, which are not; an
// honest one (the bazaar examples are a few hundred bytes) is far below
// these. MaxInputFields is per list (query, body, headers): more would not
// help an agent and would crowd its context.
const (
	MaxInputBytes  = 16 << 10 // an input object, and separately its schema
	MaxInputFields = 64       // entries kept in Inputs.Query, Body and Headers
)

// Bounds on the display text of one field. A name is an identifier, not
// prose; a description is a sentence or two; an example is a value, not a
// document. The body example gets room for a small request.
const (
	maxInputNameBytes    = 128
	maxInputTypeBytes    = 64
	maxInputDescBytes    = 300
	maxInputExampleBytes = 200
	maxBodyExampleBytes  = 2 << 10
	maxMethodBytes       = 16
)

// Values of Inputs.Type and Inputs.BodyType.
const (
	InputTypeHTTP    = "http"
	InputTypeMCP     = "mcp"
	BodyTypeJSON     = "json"
	BodyTypeFormData = "form-data"
	BodyTypeText     = "text"
)

// Inputs is what a resource says its request needs. Everything in it is
// untrusted display data (bounded, control characters stripped with the
// package's display cleaning), except the Required flags, which only ever
// make x402-mcp refuse to pay — never pay more.
type Inputs struct {
	Type     string  // InputTypeHTTP or InputTypeMCP, "" when absent or unknown
	Method   string  // upper-case, "" when not given
	Query    []Field // declared query parameters, required first, then by name
	BodyType string  // BodyTypeJSON, BodyTypeFormData, BodyTypeText or ""
	// Body lists the declared top-level body fields, in the order of Query.
	// For an MCP tool it lists the tool's arguments from its inputSchema;
	// BodyType is then "", so Missing never checks them.
	Body []Field
	// BodyExample is the example body as compact JSON (a string example as
	// is when BodyType is text; an MCP tool's example arguments), bounded
	// to 2 KiB; "" when there is none.
	BodyExample string
	Headers     []Field
	ToolName    string // for type mcp; "" unless it is a plain token
}

// Field is one declared query parameter, body field, header or tool
// argument.
type Field struct {
	Name        string // printable, no spaces, at most 128 bytes; never cut
	Type        string // JSON schema type if declared ("string", "number", ...), else ""
	Description string
	Example     string // example value as text (strings as is, other JSON compact), bounded
	Required    bool
}

// InputsFromRequired reads the declared inputs of a parsed 402: the v2
// bazaar extension (extensions.bazaar.info.input, with extensions.bazaar.schema
// saying which are required), else the outputSchema.input of the first
// option that has a usable one (v1; bazaar.md names accepts[0].outputSchema
// as the v1 place). ok is false when the 402 declares none or it is
// unusable.
func InputsFromRequired(pr *PaymentRequired) (in Inputs, ok bool) {
	if pr == nil {
		return Inputs{}, false
	}
	// objectFields of a missing member is nil, and a nil map reads as empty,
	// so each step of the path may be absent without a check.
	if bazaar := objectFields(objectFields(pr.Extensions)["bazaar"]); bazaar != nil {
		if in, ok := parseInputs(objectFields(bazaar["info"])["input"], bazaar["schema"], true); ok {
			return in, true
		}
	}
	for i := range pr.Options {
		schema := objectFields(objectFields(pr.Options[i].Raw)["outputSchema"])
		if in, ok := parseInputs(schema["input"], nil, true); ok {
			return in, true
		}
	}
	return Inputs{}, false
}

// ParseInputs reads a bazaar (v2) or outputSchema (v1) `input` object and an
// optional JSON schema of the bazaar info (nil when absent, e.g. from a
// discovery listing). ok is false for anything that is not a usable object:
// over MaxInputBytes, not strict JSON (see checkJSON), not an object, or an
// object that declares nothing.
//
// A field is required when the schema lists it in the `required` array of
// properties.input.properties.queryParams (or .body, .headers) — whether or
// not it also appears among their properties — or when a v1 field definition
// says "required": true. Everything else is optional, including every field
// of an input read without a schema. A schema that is oversized, malformed
// or shaped otherwise is ignored, never guessed at: a requirement read
// wrongly would refuse a payment the agent asked for.
func ParseInputs(input, infoSchema []byte) (in Inputs, ok bool) {
	return parseInputs(input, infoSchema, false)
}

// parseInputs is ParseInputs; vetted says input and infoSchema come from a
// document checkJSON has accepted already (a parsed 402), so the check,
// most of the cost on a payment's path, is not run twice.
func parseInputs(input, infoSchema []byte, vetted bool) (in Inputs, ok bool) {
	if len(input) > MaxInputBytes || !vetted && checkJSON(input, "input") != nil {
		return Inputs{}, false
	}
	f := objectFields(input)
	if f == nil {
		return Inputs{}, false
	}
	// props is properties.input.properties of the info schema: the schema
	// of each member of input, where the required lists live.
	var props map[string]json.RawMessage
	if len(infoSchema) <= MaxInputBytes && (vetted || checkJSON(infoSchema, "schema") == nil) {
		props = schemaProperties(objectFields(schemaProperties(objectFields(infoSchema))["input"]))
	}

	if s, ok := jsonString(f["type"]); ok {
		switch t := strings.ToLower(s); t {
		case InputTypeHTTP, InputTypeMCP:
			in.Type = t
		}
	}
	if in.Type == InputTypeMCP {
		// The tool's inputSchema is itself the schema of its arguments.
		in.ToolName = fieldName(f["toolName"])
		var args fieldSet
		args.addValues(objectFields(f["example"]), false)
		args.addSchema(objectFields(f["inputSchema"]))
		in.Body = args.fields()
		in.BodyExample = exampleText(f["example"], false, maxBodyExampleBytes)
	} else {
		in.Method = methodName(f["method"])
		if s, ok := jsonString(f["bodyType"]); ok {
			switch t := strings.ToLower(s); t {
			case BodyTypeJSON, BodyTypeFormData, BodyTypeText:
				in.BodyType = t
			}
		}

		// v2 lists example values (queryParams, body, headers); v1 lists
		// field definitions (queryParams, bodyFields, headerFields). A
		// query parameter or header value is a string in v2, so an object
		// there is a v1 definition; a body example may be any JSON, so its
		// values are only ever examples.
		var query, body, headers fieldSet
		query.addValues(objectFields(f["queryParams"]), true)
		query.addSchema(objectFields(props["queryParams"]))
		body.addValues(objectFields(f["body"]), false)
		body.addValues(objectFields(f["bodyFields"]), true)
		body.addSchema(objectFields(props["body"]))
		headers.addValues(objectFields(f["headers"]), true)
		headers.addValues(objectFields(f["headerFields"]), true)
		headers.addSchema(objectFields(props["headers"]))
		in.Query, in.Body, in.Headers = query.fields(), body.fields(), headers.fields()

		in.BodyExample = exampleText(f["body"], in.BodyType == BodyTypeText, maxBodyExampleBytes)
	}
	if in.Type == "" && in.Method == "" && in.BodyType == "" && in.ToolName == "" && in.BodyExample == "" &&
		len(in.Query) == 0 && len(in.Body) == 0 && len(in.Headers) == 0 {
		return Inputs{}, false
	}
	return in, true
}

// Missing returns the required inputs that the request visibly lacks:
// required query parameters absent from query (the request URL's values),
// and, when BodyType is json and body is empty or a JSON object, required
// top-level body fields absent from it. Only an HTTP input is checked.
// Anything unclear — a body that is not a JSON object, another body type, a
// name present in another letter case (servers differ on whether that
// matches) — is never a reason: a false alarm blocks a call that may well
// have worked, while a miss costs at most the one price the agent already
// accepted. Names come back as `query parameter "city"` and
// `body field "text"`.
func (in Inputs) Missing(query url.Values, body []byte) []string {
	if in.Type != InputTypeHTTP {
		return nil
	}
	var out []string
	inQuery := nameChecker(query)
	for _, f := range in.Query {
		if f.Required && !inQuery(f.Name) {
			out = append(out, "query parameter "+strconv.Quote(f.Name))
		}
	}
	if in.BodyType != BodyTypeJSON || !slices.ContainsFunc(in.Body, func(f Field) bool { return f.Required }) {
		return out
	}
	var fields map[string]json.RawMessage
	if b := bytes.Trim(body, jsonSpace); len(b) > 0 {
		if b[0] != '{' || json.Unmarshal(b, &fields) != nil {
			return out
		}
	}
	inBody := nameChecker(fields)
	for _, f := range in.Body {
		if f.Required && !inBody(f.Name) {
			out = append(out, "body field "+strconv.Quote(f.Name))
		}
	}
	return out
}

// jsonSpace is the whitespace JSON allows around a value; other Unicode
// spaces make a body that is not JSON, not an empty one.
const jsonSpace = " \t\r\n"

// nameChecker returns a test of whether m has a key, in any letter case.
// The folded keys are computed once, and only when an exact lookup fails:
// a request may carry many keys, and comparing each against each required
// name would be quadratic.
func nameChecker[V any](m map[string]V) func(name string) bool {
	var folded map[string]bool
	return func(name string) bool {
		if _, ok := m[name]; ok {
			return true
		}
		if folded == nil {
			folded = make(map[string]bool, len(m))
			for k := range m {
				folded[foldKey(k)] = true // foldKey agrees with strings.EqualFold
			}
		}
		return folded[foldKey(name)]
	}
}

// fieldSet collects the fields of one list from several sources; the first
// source to give a field's type, description or example wins.
type fieldSet map[string]*Field

// get returns the field called name, adding it if needed; nil when name is
// not an acceptable field name.
func (s *fieldSet) get(name string) *Field {
	if !validName(name) {
		return nil
	}
	if *s == nil {
		*s = fieldSet{}
	}
	f := (*s)[name]
	if f == nil {
		f = &Field{Name: name}
		(*s)[name] = f
	}
	return f
}

// addValues adds the members of an object of example values. With defs, a
// member that is an object is a v1 field definition instead
// ({"type", "description", "required": true, "example"}).
func (s *fieldSet) addValues(obj map[string]json.RawMessage, defs bool) {
	for name, v := range obj {
		f := s.get(name)
		if f == nil {
			continue
		}
		def := objectFields(v)
		if !defs || def == nil {
			setOnce(&f.Example, exampleText(v, true, maxInputExampleBytes))
			continue
		}
		setOnce(&f.Type, typeText(def["type"]))
		setOnce(&f.Description, describeText(def["description"]))
		setOnce(&f.Example, exampleText(def["example"], true, maxInputExampleBytes))
		// Only the boolean true: an array here lists required members of a
		// nested object, which says nothing about the field itself.
		if string(def["required"]) == "true" {
			f.Required = true
		}
	}
}

// addSchema adds what a JSON schema of an object declares: its properties
// (type and description) and its required names. A name in required is
// required even if properties does not declare it; a required that is not
// an array of strings is ignored.
func (s *fieldSet) addSchema(schema map[string]json.RawMessage) {
	for name, p := range schemaProperties(schema) {
		f := s.get(name)
		if f == nil {
			continue
		}
		prop := objectFields(p)
		setOnce(&f.Type, typeText(prop["type"]))
		setOnce(&f.Description, describeText(prop["description"]))
	}
	var required []json.RawMessage
	if r := schema["required"]; len(r) > 0 && r[0] == '[' && json.Unmarshal(r, &required) == nil {
		for _, raw := range required {
			if name, ok := jsonString(raw); ok {
				if f := s.get(name); f != nil {
					f.Required = true
				}
			}
		}
	}
}

// fields returns the set in its display order — required first, then by
// name — keeping at most MaxInputFields. Required fields come first so that
// a hostile list cannot push them out of what is shown and checked.
func (s fieldSet) fields() []Field {
	if len(s) == 0 {
		return nil
	}
	out := make([]Field, 0, len(s))
	for _, f := range s {
		out = append(out, *f)
	}
	slices.SortFunc(out, func(a, b Field) int {
		if a.Required != b.Required {
			if a.Required {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Name, b.Name)
	})
	if len(out) > MaxInputFields {
		out = out[:MaxInputFields:MaxInputFields]
	}
	return out
}

func setOnce(dst *string, v string) {
	if *dst == "" {
		*dst = v
	}
}

// schemaProperties is the properties object of a JSON schema object.
func schemaProperties(schema map[string]json.RawMessage) map[string]json.RawMessage {
	return objectFields(schema["properties"])
}

// validName accepts a name an agent can type back: 1 to 128 bytes of
// printable UTF-8 without spaces. Cutting or cleaning a name would make it
// name a different field, so a name that fails is skipped, not repaired.
func validName(s string) bool {
	if s == "" || len(s) > maxInputNameBytes || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) || unsafeDisplayRune(r) {
			return false
		}
	}
	return true
}

// fieldName reads a JSON string that must be a valid name; "" otherwise.
func fieldName(raw json.RawMessage) string {
	if s, ok := jsonString(raw); ok && validName(s) {
		return s
	}
	return ""
}

// methodName reads an HTTP method: ASCII letters, returned upper-case.
func methodName(raw json.RawMessage) string {
	s, ok := jsonString(raw)
	if !ok || s == "" || len(s) > maxMethodBytes {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return ""
		}
	}
	return strings.ToUpper(s)
}

// typeText reads a JSON schema type: a string, or an array of strings
// (["string", "null"]) shown as "string|null".
func typeText(raw json.RawMessage) string {
	if s, ok := jsonString(raw); ok {
		return displayClip(s, maxInputTypeBytes)
	}
	var list []string
	if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &list) != nil {
		return ""
	}
	return displayClip(strings.Join(list, "|"), maxInputTypeBytes)
}

func describeText(raw json.RawMessage) string {
	s, _ := jsonString(raw)
	return displayClip(s, maxInputDescBytes)
}

// exampleText shows an example value: a string as is when asText, anything
// else as compact JSON; "" for an absent or null value.
func exampleText(raw json.RawMessage, asText bool, limit int) string {
	raw = bytes.Trim(raw, jsonSpace)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if s, ok := jsonString(raw); ok && asText {
		return displayClip(s, limit)
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return ""
	}
	return displayClip(b.String(), limit)
}
