package policy

import (
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/pelletier/go-toml/v2/unstable"
)

// The policy file is decoded by go-toml into plain maps, which keeps full
// TOML semantics but loses positions. keyIndex walks go-toml's syntax tree
// once to remember the line of every key, table header and array element,
// so that any later complaint can name file, line and key. It also finds
// keys and tables defined twice, which go-toml reports without a position.

// keyIndex maps a displayed key path (see keyPath) to its line.
type keyIndex struct {
	lines map[string]int
	// dup is the first key or table defined twice, and its line.
	dup     string
	dupLine int
}

const (
	defLeaf   = iota + 1 // key = value
	defHeader            // [table]
	defDotted            // table made by a dotted key (a.b = 1 makes a)
)

func indexKeys(data []byte) *keyIndex {
	idx := &keyIndex{lines: map[string]int{}}
	defined := map[string]int{}
	var p unstable.Parser
	p.Reset(data)
	line := func(n *unstable.Node) int {
		if n == nil || n.Raw.Length == 0 {
			return 0
		}
		return p.Shape(n.Raw).Start.Line
	}
	mark := func(path string, n int) {
		if _, ok := idx.lines[path]; !ok && n > 0 {
			idx.lines[path] = n
		}
	}
	duplicate := func(path string, n int) {
		if idx.dup == "" {
			idx.dup, idx.dupLine = path, n
		}
	}

	var table []string
	inArrayTable := false
	// keyValue records a key = value (at top level or inside an inline
	// table) below the path prefix.
	var keyValue func(prefix []string, kv *unstable.Node)
	var value func(path []string, v *unstable.Node, n int)
	keyValue = func(prefix []string, kv *unstable.Node) {
		parts := append([]string(nil), prefix...)
		it := kv.Key()
		n := 0
		for it.Next() {
			k := it.Node()
			if n == 0 {
				n = line(k)
			}
			parts = append(parts, string(k.Data))
			if !it.IsLast() {
				d := keyPath(parts...)
				if defined[d] == defLeaf {
					duplicate(d, n)
				}
				if defined[d] == 0 {
					defined[d] = defDotted
				}
				mark(d, n)
			}
		}
		full := keyPath(parts...)
		if defined[full] != 0 {
			duplicate(full, n)
		}
		defined[full] = defLeaf
		mark(full, n)
		value(parts, kv.Value(), n)
	}
	value = func(path []string, v *unstable.Node, n int) {
		switch v.Kind {
		case unstable.InlineTable:
			it := v.Children()
			for it.Next() {
				keyValue(path, it.Node())
			}
		case unstable.Array:
			it := v.Children()
			for i := 0; it.Next(); i++ {
				e := it.Node()
				en := line(e)
				if en == 0 {
					en = n
				}
				elem := keyPath(path...) + "[" + strconv.Itoa(i) + "]"
				mark(elem, en)
			}
		}
	}

	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = table[:0]
			it := e.Key()
			n := 0
			for it.Next() {
				k := it.Node()
				if n == 0 {
					n = line(k)
				}
				table = append(table, string(k.Data))
			}
			path := keyPath(table...)
			if e.Kind == unstable.ArrayTable {
				// No part of the policy file is an array of tables; the
				// decoder refuses it at this line, so its keys need no
				// positions of their own.
				mark(path, n)
				inArrayTable = true
				continue
			}
			inArrayTable = false
			if defined[path] != 0 {
				duplicate(path, n)
			}
			defined[path] = defHeader
			mark(path, n)
		case unstable.KeyValue:
			if !inArrayTable {
				keyValue(table, e)
			}
		}
	}
	// A syntax error is reported by the decoder, with its position.
	return idx
}

// line is the line of a key path, or 0.
func (idx *keyIndex) line(path string) int { return idx.lines[path] }

// keyAt names the first key recorded on a line, for errors that come with
// a position but no key.
func (idx *keyIndex) keyAt(line int) string {
	best := ""
	for k, n := range idx.lines {
		if n == line && (best == "" || len(k) < len(best) || len(k) == len(best) && k < best) {
			best = k
		}
	}
	return best
}

// bareKey is compiled on first use, not at every start (issue 10, goal 3).
var bareKey = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_-]+$`) })

// quoteKey writes one key the way TOML would need it: bare when it can be,
// quoted otherwise ("api.example.com" has dots, so it is quoted).
func quoteKey(k string) string {
	if bareKey().MatchString(k) {
		return k
	}
	return strconv.Quote(k)
}

// keyPath joins keys into the dotted path shown in messages, e.g.
// hosts.budget."api.example.com".day.
func keyPath(parts ...string) string {
	var b strings.Builder
	for i, k := range parts {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(quoteKey(k))
	}
	return b.String()
}
