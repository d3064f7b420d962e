package catalog

import (
	"github.com/x402-mcp/x402-mcp/internal/fileerr"

	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"sync"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/x402-mcp/x402-mcp/x402"
)

const (
	// maxFileBytes bounds a catalog file; a thousand endpoints fit in a
	// few hundred KiB.
	maxFileBytes = 1 << 20
	// maxFileEndpoints bounds the endpoints of one file.
	maxFileEndpoints = 1000
)

// FileError is a problem in a catalog file, with the line and key when
// known.
type FileError = fileerr.Error

// fileDoc mirrors the TOML document.
type fileDoc struct {
	Endpoint []fileEndpoint `toml:"endpoint"`
}

type fileEndpoint struct {
	URL         string            `toml:"url"`
	Method      string            `toml:"method"`
	Description string            `toml:"description"`
	Tags        []string          `toml:"tags"`
	QueryParams map[string]string `toml:"query_params"`
	Body        *string           `toml:"body"`
	BodyType    string            `toml:"body_type"`
	Price       string            `toml:"price"`
	Network     string            `toml:"network"`
}

// LoadFile reads and checks a catalog file (format in the package
// documentation). Every problem is a *FileError.
func LoadFile(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		msg := err.Error()
		var pe *fs.PathError
		if errors.As(err, &pe) {
			msg = pe.Err.Error() // the path is already in the message
		}
		return nil, &FileError{Path: path, Msg: "cannot read the catalog file: " + msg}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, &FileError{Path: path, Msg: "reading the catalog file: " + err.Error()}
	}
	if len(data) > maxFileBytes {
		return nil, &FileError{Path: path, Msg: fmt.Sprintf("the file is larger than %d bytes", maxFileBytes),
			Hint: "split it into several catalog files"}
	}
	return ParseFile(path, data)
}

// ParseFile checks the TOML text of a catalog file; path names it in
// errors and in the entries' Sources ("catalog <path>").
func ParseFile(path string, data []byte) ([]Entry, error) {
	// Duplicate keys first: go-toml reports them without a position, and
	// the walk that finds them also finds every key's line.
	lines, err := scanLines(path, data)
	if err != nil {
		return nil, err
	}
	var doc fileDoc
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, decodeError(path, lines, err)
	}
	if len(doc.Endpoint) > maxFileEndpoints {
		return nil, &FileError{Path: path, Msg: fmt.Sprintf("%d endpoints; at most %d per file", len(doc.Endpoint), maxFileEndpoints),
			Hint: "split it into several catalog files"}
	}
	source := "catalog " + path
	seen := map[string]int{}
	entries := make([]Entry, 0, len(doc.Endpoint))
	for i, ep := range doc.Endpoint {
		e, key, msg, hint := ep.entry()
		table := fmt.Sprintf("endpoint[%d]", i)
		if msg != "" {
			line, ok := lines.keys[table+"."+key]
			if !ok {
				line = lines.keys[table]
			}
			return nil, &FileError{Path: path, Line: line, Key: table + "." + key, Msg: msg, Hint: hint}
		}
		dk := dedupKey(e.Method, e.URL)
		if first, dup := seen[dk]; dup {
			return nil, &FileError{Path: path, Line: lines.keys[table+".url"], Key: table + ".url",
				Msg:  fmt.Sprintf("%s %s is already listed as endpoint[%d]", e.Method, e.URL, first),
				Hint: "list each endpoint once; the query string does not make a different endpoint"}
		}
		seen[dk] = i
		e.Sources = []string{source}
		entries = append(entries, e)
	}
	return entries, nil
}

// priceRE is a plain non-negative decimal: the display hint is shown, so
// it is kept to a form nobody can misread.
//
// It and the patterns below are compiled on first use, not at package init:
// most runs never read a catalog file (issue 10, goal 3).
var priceRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]{1,12}(\.[0-9]{1,18})?$`) })

var bodyTypes = map[string]bool{"json": true, "text": true, "form-data": true}

// entry checks one [[endpoint]]; on a problem it returns the key at fault,
// the message and a hint.
func (ep fileEndpoint) entry() (e Entry, key, msg, hint string) {
	if ep.URL == "" {
		return e, "url", "url is missing", `add url = "https://api.example.com/path"`
	}
	if _, err := checkURL(ep.URL); err != nil {
		return e, "url", err.Error(), "use an absolute http:// or https:// URL without credentials"
	}
	method, err := checkMethod(ep.Method)
	if err == nil && !fileMethods[method] {
		err = fmt.Errorf("method %s is not one of GET, HEAD, DELETE, POST, PUT, PATCH", quote(method))
	}
	if err != nil {
		return e, "method", err.Error(), "leave it out for GET"
	}
	e = Entry{URL: ep.URL, Method: method}

	if n := len([]rune(strings.TrimSpace(ep.Description))); n > maxDescriptionRunes {
		return e, "description", fmt.Sprintf("%d characters; at most %d", n, maxDescriptionRunes), "agents are shown the first 500 characters"
	}
	e.Description = cleanText(ep.Description, maxDescriptionRunes)
	if len(ep.Tags) > maxTags {
		return e, "tags", fmt.Sprintf("%d tags; at most %d", len(ep.Tags), maxTags), ""
	}
	for _, t := range ep.Tags {
		if c := cleanText(t, maxTagRunes); c == "" || len([]rune(t)) > maxTagRunes {
			return e, "tags", fmt.Sprintf("tag %s is empty or longer than %d characters", quote(t), maxTagRunes), ""
		}
		e.Tags = append(e.Tags, cleanText(t, maxTagRunes))
	}

	input := fileInput{Type: "http", Method: method, QueryParams: ep.QueryParams}
	switch {
	case ep.Body == nil && ep.BodyType != "":
		return e, "body_type", "body_type is set without body", "add body = '...' or remove body_type"
	case ep.Body != nil && (method == "GET" || method == "HEAD" || method == "DELETE"):
		return e, "body", fmt.Sprintf("method %s sends no body", method), `set method = "POST" (or PUT, PATCH)`
	case ep.Body != nil:
		input.BodyType = ep.BodyType
		if input.BodyType == "" {
			input.BodyType = "json"
		}
		if !bodyTypes[input.BodyType] {
			return e, "body_type", fmt.Sprintf("body_type %s is not json, text or form-data", quote(input.BodyType)), ""
		}
		if input.BodyType == "json" {
			if !json.Valid([]byte(*ep.Body)) {
				return e, "body", "body is not valid JSON", `write it in single quotes: body = '{"text": "..."}', or set body_type = "text"`
			}
			input.Body = json.RawMessage(*ep.Body)
		} else {
			input.Body, _ = json.Marshal(*ep.Body)
		}
	}
	raw, err := json.Marshal(input)
	if err != nil {
		return e, "body", err.Error(), ""
	}
	if e.Input = boundedRaw(raw, maxInputBytes); e.Input == nil {
		return e, "query_params", fmt.Sprintf("query_params and body take more than %d bytes", maxInputBytes), "shorten the example"
	}

	if ep.Price != "" {
		if !priceRE().MatchString(ep.Price) {
			return e, "price", fmt.Sprintf("price %s is not a decimal number of US dollars", quote(ep.Price)),
				`write it like price = "0.01", without a currency sign`
		}
		e.PriceHint = ep.Price
	}
	if ep.Network != "" {
		n, _, err := x402.CAIP2(ep.Network)
		if err != nil {
			return e, "network", err.Error(), `use a CAIP-2 id such as "eip155:8453"`
		}
		e.NetworkHint = n
	}
	return e, "", "", ""
}

// fileMethods are the methods the bazaar's input schema knows.
var fileMethods = map[string]bool{"GET": true, "HEAD": true, "DELETE": true, "POST": true, "PUT": true, "PATCH": true}

// fileInput is the bazaar input object built from a file entry, in the
// bazaar's field order.
type fileInput struct {
	Type        string            `json:"type"`
	Method      string            `json:"method"`
	QueryParams map[string]string `json:"queryParams,omitempty"`
	BodyType    string            `json:"bodyType,omitempty"`
	Body        json.RawMessage   `json:"body,omitempty"`
}

// fileLines maps keys to the lines they are set on: "endpoint[2]" is the
// line of the third [[endpoint]] header, "endpoint[2].price" the line of
// its price.
type fileLines struct {
	keys map[string]int
	// headers are the lines of the [[endpoint]] headers, in order.
	headers []int
}

// scanLines walks the document with go-toml's parser, recording every
// key's line and refusing a key set twice in one table (inline tables
// included). Syntax errors are left to the decoder, which words them.
func scanLines(path string, data []byte) (*fileLines, error) {
	fl := &fileLines{keys: map[string]int{}}
	var p unstable.Parser
	p.Reset(data)
	table := ""
	seen := map[string]bool{}
	line := func(n *unstable.Node) int { return p.Shape(n.Raw).Start.Line }
	// keyParts splits a dotted key and finds the line of its first part.
	keyParts := func(it unstable.Iterator) (parts []string, first int) {
		for it.Next() {
			if first == 0 {
				first = line(it.Node())
			}
			parts = append(parts, string(it.Node().Data))
		}
		return parts, first
	}
	var walk func(prefix string, kv *unstable.Node) error
	walk = func(prefix string, kv *unstable.Node) error {
		parts, first := keyParts(kv.Key())
		full := prefix + strings.Join(parts, ".")
		if seen[full] {
			return &FileError{Path: path, Line: first, Key: full, Msg: "key is set twice",
				Hint: "keep one of the two lines"}
		}
		seen[full] = true
		if _, ok := fl.keys[prefix+parts[0]]; !ok {
			fl.keys[prefix+parts[0]] = first
		}
		if v := kv.Value(); v.Kind == unstable.InlineTable {
			children := v.Children()
			for children.Next() {
				if err := walk(full+".", children.Node()); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for p.NextExpression() {
		n := p.Expression()
		switch n.Kind {
		case unstable.ArrayTable, unstable.Table:
			parts, first := keyParts(n.Key())
			table = strings.Join(parts, ".")
			if n.Kind == unstable.ArrayTable && table == "endpoint" {
				table = fmt.Sprintf("endpoint[%d]", len(fl.headers))
				fl.headers = append(fl.headers, first)
			}
			fl.keys[table] = first
		case unstable.KeyValue:
			prefix := ""
			if table != "" {
				prefix = table + "."
			}
			if err := walk(prefix, n); err != nil {
				return nil, err
			}
		}
	}
	return fl, nil
}

// endpointAt names the [[endpoint]] a line falls in, e.g. "endpoint[1]".
func (fl *fileLines) endpointAt(line int) string {
	name := ""
	for i, h := range fl.headers {
		if h <= line {
			name = fmt.Sprintf("endpoint[%d]", i)
		}
	}
	return name
}

// go-toml's two phrasings of a type mismatch.
var (
	decodeTypeRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^cannot decode TOML (\w+) into struct field \S+ of type (\S+)$`)
	})
	assignTypeRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(\w+) cannot be assigned to (\S+)$`) })
)

// decodeError turns go-toml's errors into FileErrors with line and key,
// worded without Go type names.
func decodeError(path string, lines *fileLines, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) && len(strict.Errors) > 0 {
		d := strict.Errors[0]
		row, _ := d.Position()
		key := strings.Join(d.Key(), ".")
		if ep := lines.endpointAt(row); ep != "" && strings.HasPrefix(key, "endpoint.") {
			key = ep + strings.TrimPrefix(key, "endpoint")
		}
		return &FileError{Path: path, Line: row, Key: key, Msg: "unknown key",
			Hint: "an [[endpoint]] takes url, method, description, tags, query_params, body, body_type, price and network"}
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		key := strings.Join(de.Key(), ".")
		if key == "" {
			key = lines.keyAt(row)
		}
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		hint := ""
		found, goType := "", ""
		if m := decodeTypeRE().FindStringSubmatch(msg); m != nil {
			found, goType = m[1], m[2]
		} else if m := assignTypeRE().FindStringSubmatch(msg); m != nil {
			found, goType = m[1], m[2]
		}
		if found != "" {
			want := map[string]string{
				"string": "a quoted string", "*string": "a quoted string", "[]string": "a list of quoted strings",
				"map[string]string": "a table of quoted strings",
			}[goType]
			if goType == "map[string]string" && !strings.HasSuffix(key, "query_params") {
				// go-toml names the map when one of its values is wrong.
				want = "a quoted string"
			}
			if want == "" {
				want = "another type"
			}
			msg = fmt.Sprintf("expected %s, found %s", want, found)
			if strings.HasPrefix(want, "a quoted") {
				hint = "write the value in quotes"
			}
		}
		return &FileError{Path: path, Line: row, Key: key, Msg: msg, Hint: hint}
	}
	return &FileError{Path: path, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
}

// keyAt names the key set on a line, or "".
func (fl *fileLines) keyAt(line int) string {
	best := ""
	for k, l := range fl.keys {
		// Several keys may share a line (an inline table); the longest
		// name is the innermost.
		if l == line && len(k) > len(best) {
			best = k
		}
	}
	return best
}
