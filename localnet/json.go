package localnet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"
)

// JSON helpers shared by the facilitator, the paid API and the demo
// routes.

// maxJSONDepth bounds nesting; bazaar metadata nests a handful of levels.
const maxJSONDepth = 32

// decodeStrict decodes one JSON object into v after checkJSON accepted it.
func decodeStrict(data []byte, v any) error {
	if err := checkJSON(data); err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// checkJSON accepts exactly one JSON object: valid UTF-8, nested at most
// maxJSONDepth deep, no data after it, and no object repeating a key.
// Repeated keys are compared ignoring case because encoding/json binds keys
// case-insensitively: {"value":"1","Value":"2"} would otherwise be read as 2
// here and as 1 by a JavaScript client, and two parties would disagree about
// what was signed.
func checkJSON(data []byte) error {
	if !utf8.Valid(data) {
		return errors.New("not valid UTF-8")
	}
	if !isJSONObject(data) {
		return errors.New("not a JSON object")
	}
	type frame struct {
		object    bool
		expectKey bool
		keys      map[string]bool
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("invalid JSON: %w", err)
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].expectKey {
			top := stack[n-1]
			if key, isKey := tok.(string); isKey {
				folded := strings.ToLower(key)
				if top.keys[folded] {
					return fmt.Errorf("duplicate key %q", key)
				}
				top.keys[folded] = true
				top.expectKey = false
				continue
			}
			// Otherwise the token is the closing '}'; handled below.
		}
		complete := true
		if d, isDelim := tok.(json.Delim); isDelim {
			switch d {
			case '{', '[':
				if len(stack) == maxJSONDepth {
					return fmt.Errorf("nested deeper than %d levels", maxJSONDepth)
				}
				stack = append(stack, &frame{object: d == '{', expectKey: d == '{', keys: map[string]bool{}})
				complete = false
			case '}', ']':
				stack = stack[:len(stack)-1]
			}
		}
		if !complete {
			continue
		}
		if len(stack) == 0 {
			break
		}
		if top := stack[len(stack)-1]; top.object {
			top.expectKey = true
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("invalid JSON: data after the object")
	}
	return nil
}

// isJSONObject reports whether data starts (after whitespace) with '{'.
func isJSONObject(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}

// jsonEqual compares two JSON documents by value, the way the reference
// servers' deep equality does: key order and whitespace do not matter, and
// numbers compare as IEEE doubles (JavaScript's numbers), so 300 equals
// 300.0 but "300" does not equal 300.
func jsonEqual(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// marshalJSON encodes compactly without HTML escaping: resource URLs carry
// '&' in their query, and the reference implementations (JSON.stringify)
// write it as is.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := marshalJSON(v)
	if err != nil {
		// Only our own types reach here; failing to encode them is a bug.
		http.Error(w, "encoding response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}
