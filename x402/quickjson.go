package x402

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// maxQuickKeys bounds the keys quickJSON compares pairwise in one object;
// a larger object goes to the full walk, whose map keeps the check linear.
const maxQuickKeys = 32

// quickJSON reports whether checkJSON's walk would certainly accept data,
// in one pass over the bytes and without allocating in the common case. It
// answers true only for a single JSON object, nested at most MaxDepth
// deep, with no key written with an escape and no two keys of one object
// equal under strings.EqualFold (foldKey's relation). Anything else — bad
// syntax, an escaped key, a repeat, a very wide object — is "not sure":
// false, and checkJSON runs the full walk, which decides and words the
// error. So quickJSON may refuse what is fine, never accept what is not;
// FuzzQuickJSON holds it to that. Callers have checked UTF-8 already.
func quickJSON(data []byte) bool {
	s := quickScan{data: data}
	s.space()
	if s.i >= len(s.data) || s.data[s.i] != '{' || !s.object(1, nil) {
		return false
	}
	return s.end()
}

// quickValue reports whether raw is certainly one JSON value (of any
// kind) within quickJSON's bounds; false is "not sure".
func quickValue(raw []byte) bool {
	s := quickScan{data: raw}
	s.space()
	return s.value(0) && s.end()
}

// quickScan is quickJSON's position in data and the keys of the objects
// still open, innermost last (each object's share starts where its own
// call began).
type quickScan struct {
	data []byte
	i    int
	keys [][]byte
}

func (s *quickScan) space() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value steps over one value inside a container that is depth deep.
func (s *quickScan) value(depth int) bool {
	if s.i >= len(s.data) {
		return false
	}
	switch c := s.data[s.i]; {
	case c == '{':
		return s.object(depth+1, nil)
	case c == '[':
		return s.array(depth+1, nil)
	case c == '"':
		_, _, ok := s.str()
		return ok
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return false
}

// object steps over the object at s.i, which is the depth-th open
// container (the top-level object is 1), and gives each member's key and
// value as written to each, when each is not nil; each returning false
// stops the scan as unsure.
func (s *quickScan) object(depth int, each func(key, value []byte) bool) bool {
	if depth > MaxDepth {
		return false
	}
	s.i++
	s.space()
	if s.i < len(s.data) && s.data[s.i] == '}' {
		s.i++
		return true
	}
	base := len(s.keys)
	for {
		if s.i >= len(s.data) || s.data[s.i] != '"' {
			return false
		}
		key, escaped, ok := s.str()
		if !ok || escaped || len(s.keys)-base >= maxQuickKeys {
			return false
		}
		for _, k := range s.keys[base:] {
			if bytes.EqualFold(k, key) {
				return false
			}
		}
		s.keys = append(s.keys, key)
		s.space()
		if s.i >= len(s.data) || s.data[s.i] != ':' {
			return false
		}
		s.i++
		s.space()
		start := s.i
		if !s.value(depth) || each != nil && !each(key, s.data[start:s.i:s.i]) {
			return false
		}
		if more, ok := s.next('}'); !more {
			s.keys = s.keys[:base]
			return ok
		}
	}
}

// array is object for an array: each gets every element as written.
func (s *quickScan) array(depth int, each func(value []byte) bool) bool {
	if depth > MaxDepth {
		return false
	}
	s.i++
	s.space()
	if s.i < len(s.data) && s.data[s.i] == ']' {
		s.i++
		return true
	}
	for {
		start := s.i
		if !s.value(depth) || each != nil && !each(s.data[start:s.i:s.i]) {
			return false
		}
		if more, ok := s.next(']'); !more {
			return ok
		}
	}
}

// next steps over what follows a member or element: white space, then a
// comma and more white space (more: another one follows) or the closing
// bracket (ok: the container ended well).
func (s *quickScan) next(closing byte) (more, ok bool) {
	s.space()
	if s.i >= len(s.data) {
		return false, false
	}
	switch s.data[s.i] {
	case ',':
		s.i++
		s.space()
		return true, true
	case closing:
		s.i++
		return false, true
	}
	return false, false
}

// str steps over the string at s.i and returns its bytes between the
// quotes as written, and whether they hold an escape.
func (s *quickScan) str() (raw []byte, escaped, ok bool) {
	s.i++
	start := s.i
	for s.i < len(s.data) {
		c := s.data[s.i]
		switch {
		case c == '"':
			raw = s.data[start:s.i]
			s.i++
			return raw, escaped, true
		case c < 0x20:
			return nil, false, false
		case c == '\\':
			escaped = true
			if s.i+1 >= len(s.data) {
				return nil, false, false
			}
			switch s.data[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+5 >= len(s.data) {
					return nil, false, false
				}
				for _, h := range s.data[s.i+2 : s.i+6] {
					if !isHex(h) {
						return nil, false, false
					}
				}
				s.i += 6
			default:
				return nil, false, false
			}
		default:
			s.i++
		}
	}
	return nil, false, false
}

// number steps over a number in JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *quickScan) number() bool {
	d, i := s.data, s.i
	if d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		i = digits(d, i)
	default:
		return false
	}
	if i < len(d) && d[i] == '.' {
		j := digits(d, i+1)
		if j == i+1 {
			return false
		}
		i = j
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := digits(d, i)
		if j == i {
			return false
		}
		i = j
	}
	s.i = i
	return true
}

func (s *quickScan) literal(word string) bool {
	if !bytes.HasPrefix(s.data[s.i:], []byte(word)) {
		return false
	}
	s.i += len(word)
	return true
}

// digits returns the index of the first byte at or after i that is not an
// ASCII digit.
func digits(d []byte, i int) int {
	for i < len(d) && d[i] >= '0' && d[i] <= '9' {
		i++
	}
	return i
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// members splits the object raw into its members, each value the bytes as
// written (aliasing raw), with quickScan: what encoding/json's map decoding
// gives, at a fraction of the cost. ok is false when raw is not an object
// quickScan is sure of (bad syntax, an escaped key, a repeat, a wide nested
// object); objectFields then asks encoding/json.
func members(raw []byte) (m map[string]json.RawMessage, ok bool) {
	s := quickScan{data: raw}
	s.space()
	if s.i >= len(raw) || raw[s.i] != '{' {
		return nil, false
	}
	m = make(map[string]json.RawMessage, 8)
	ok = s.object(1, func(key, value []byte) bool {
		if !utf8.Valid(key) { // encoding/json would mend the key
			return false
		}
		m[string(key)] = value
		return true
	})
	return m, ok && s.end()
}

// elements splits the array raw into its elements as written (aliasing
// raw); ok is false when quickScan is not sure of it.
func elements(raw []byte) (list []json.RawMessage, ok bool) {
	s := quickScan{data: raw}
	s.space()
	if s.i >= len(raw) || raw[s.i] != '[' {
		return nil, false
	}
	list = []json.RawMessage{}
	ok = s.array(1, func(value []byte) bool {
		list = append(list, value)
		return true
	})
	return list, ok && s.end()
}

// end reports whether only white space is left.
func (s *quickScan) end() bool {
	s.space()
	return s.i == len(s.data)
}
