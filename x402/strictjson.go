package x402

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxDepth bounds JSON nesting. A 402 needs four levels (document, accepts,
// option, extra); extensions such as bazaar carry JSON schemas and examples
// that nest further, and 32 leaves them ample room while keeping the walk's
// stack small.
const MaxDepth = 32

// jsonFrame is one open object or array during checkJSON's walk.
type jsonFrame struct {
	object    bool
	expectKey bool              // object: the next token is a key or '}'
	key       string            // object: key of the member being read
	n         int               // array: index of the element being read
	keys      map[string]string // object: folded key -> key as written
}

// checkJSON accepts data only if it is exactly one UTF-8 JSON object, nested
// at most MaxDepth deep, in which no object repeats a key. Failures are
// *WireError with the given Where.
//
// Keys are compared after unescaping ("a" and "\u0061" are the same key to
// every parser) and ignoring case (Go's encoding/json binds "Amount" to a
// field named amount, JavaScript does not): either kind of repeat lets two
// honest parsers read different values from the same bytes.
func checkJSON(data []byte, where string) error {
	fail := func(kind ErrorKind, field, msg string, cause error) error {
		return &WireError{Kind: kind, Where: where, Field: field, Msg: msg, Err: cause}
	}
	if !utf8.Valid(data) {
		return fail(ErrInvalidJSON, "", "not valid UTF-8", nil)
	}
	if quickJSON(data) {
		return nil
	}
	return walkJSON(data, where)
}

// walkJSON is checkJSON's full walk over UTF-8 data, with the decoder's
// tokens: it decides what quickJSON is not sure of, and says what is wrong.
func walkJSON(data []byte, where string) error {
	fail := func(kind ErrorKind, field, msg string, cause error) error {
		return &WireError{Kind: kind, Where: where, Field: field, Msg: msg, Err: cause}
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return fail(ErrInvalidJSON, "", "empty; expected a JSON object", nil)
	}
	if trimmed[0] != '{' {
		return fail(ErrInvalidJSON, "", "not a JSON object (starts with "+quote(string(trimmed[:min(len(trimmed), 24)]))+")", nil)
	}

	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers are only stepped over; never round them through float64
	stack := make([]jsonFrame, 0, 8)
	for {
		tok, err := dec.Token()
		if err != nil {
			return fail(ErrInvalidJSON, "", jsonErrText(err), err)
		}
		top := len(stack) - 1
		if top >= 0 && stack[top].object && stack[top].expectKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:top]
			} else {
				key, _ := tok.(string) // the decoder only yields strings in key position
				f := &stack[top]
				if f.keys == nil {
					f.keys = make(map[string]string, 8)
				}
				folded := foldKey(key)
				if prev, dup := f.keys[folded]; dup {
					in := jsonPath(stack)
					msg := "key " + quote(key) + " appears twice in " + describePath(in)
					if prev != key {
						msg = "keys " + quote(prev) + " and " + quote(key) + " in " + describePath(in) +
							" differ only in letter case, which some JSON parsers treat as the same key"
					}
					return fail(ErrDuplicateKey, boundField(joinKey(in, key)), msg, nil)
				}
				f.keys[folded] = key
				f.key = key
				f.expectKey = false
				continue
			}
		} else if d, ok := tok.(json.Delim); ok && (d == '{' || d == '[') {
			if len(stack) >= MaxDepth {
				return fail(ErrTooLarge, boundField(jsonPath(stack)), "JSON nested deeper than "+strconv.Itoa(MaxDepth)+" levels", nil)
			}
			stack = append(stack, jsonFrame{object: d == '{', expectKey: d == '{'})
			continue
		} else if ok && d == ']' {
			stack = stack[:top]
		}
		// A value (scalar or closed container) is complete.
		if len(stack) == 0 {
			if _, err := dec.Token(); !errors.Is(err, io.EOF) {
				return fail(ErrInvalidJSON, "", "unexpected data after the JSON object", err)
			}
			return nil
		}
		if f := &stack[len(stack)-1]; f.object {
			f.expectKey = true
		} else {
			f.n++
		}
	}
}

// jsonPath renders the position of the innermost open container, such as
// "accepts[1].extra"; "" is the top-level object.
func jsonPath(stack []jsonFrame) string {
	var b strings.Builder
	for i := 1; i < len(stack); i++ {
		parent := stack[i-1]
		if parent.object {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(parent.key)
		} else {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(parent.n))
			b.WriteByte(']')
		}
	}
	return b.String()
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// maxFieldBytes bounds WireError.Field, which holds keys chosen by the
// server: a path is for locating a value, not for carrying its text.
const maxFieldBytes = 128

// boundField truncates a JSON path built from untrusted keys and removes
// control characters, so that a logged Field is as safe as a quoted one.
func boundField(path string) string {
	if len(path) > maxFieldBytes {
		n := maxFieldBytes
		for n > 0 && !utf8.RuneStart(path[n]) {
			n--
		}
		path = path[:n] + "…"
	}
	return strings.Map(func(r rune) rune {
		if unsafeDisplayRune(r) {
			return ' '
		}
		return r
	}, path)
}

func describePath(path string) string {
	if path == "" {
		return "the top-level object"
	}
	return quote(path)
}

// foldKey maps s to a canonical form such that foldKey(a) == foldKey(b)
// exactly when strings.EqualFold(a, b), which is also how encoding/json
// matches object keys to struct fields. Each rune becomes the smallest rune
// of its simple case-folding orbit, so "k", "K" and the Kelvin sign agree.
func foldKey(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		// The smallest member of an ASCII letter's orbit is its upper case.
		return strings.ToUpper(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		b.WriteRune(m)
	}
	return b.String()
}

// jsonErrText turns a decoder error into a message with the byte offset,
// which is what a reader needs to find the problem.
func jsonErrText(err error) string {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return "invalid JSON at byte " + strconv.FormatInt(syn.Offset, 10) + ": " + syn.Error()
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	return "invalid JSON: " + err.Error()
}
