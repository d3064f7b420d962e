package config

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// keyAt names the key set on a line, or "".
func keyAt(data []byte, line int) string {
	var found string
	scanKeys(data, func(full string, n int) bool {
		if n == line {
			found = full
			return false
		}
		return true
	})
	return found
}

// duplicateKey finds the first key set twice in one table.
func duplicateKey(data []byte) (string, int) {
	seen := map[string]bool{}
	var found string
	var line int
	scanKeys(data, func(full string, n int) bool {
		if seen[full] {
			found, line = full, n
			return false
		}
		seen[full] = true
		return true
	})
	return found, line
}

// keyLines maps "table.key" to the line it is set on, so that errors found
// after decoding (a bad amount, an unknown network) can still name a line.
// It understands the plain layout this file documents: [table] headers and
// key = value lines.
func keyLines(data []byte) map[string]int {
	out := map[string]int{}
	scanKeys(data, func(full string, n int) bool {
		if _, ok := out[full]; !ok {
			out[full] = n
		}
		return true
	})
	return out
}

// scanKeys calls f with each "table.key" and its line until f returns
// false. Each [[array]] entry starts a fresh table, so a key repeated in two
// entries is not a duplicate.
func scanKeys(data []byte, f func(full string, line int) bool) {
	table := ""
	// Entries are counted per array name: [[tokens]] and [[networks]] are
	// numbered separately, as the decoder numbers them.
	entries := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), maxFileSize)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "["):
			name, array := header(line)
			if array {
				table = fmt.Sprintf("%s[%d]", name, entries[name])
				entries[name]++
			} else {
				table = name
			}
		case line == "" || strings.HasPrefix(line, "#"):
		default:
			k, _, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			k = strings.Trim(strings.TrimSpace(k), `"'`)
			full := k
			if table != "" {
				full = table + "." + k
			}
			if !f(full, n) {
				return
			}
		}
	}
}

// tableLine finds the line of the i-th [[name]] header.
func tableLine(data []byte, name string, i int) int {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), maxFileSize)
	seen := 0
	for n := 1; sc.Scan(); n++ {
		if got, array := header(strings.TrimSpace(sc.Text())); array && got == name {
			if seen == i {
				return n
			}
			seen++
		}
	}
	return 0
}

// header reads a "[table]" or "[[array]]" line, which may end in a comment
// ("[[networks]]   # one per chain"). Table names in this file are bare
// keys, so the first "]" ends the name.
func header(line string) (name string, array bool) {
	array = strings.HasPrefix(line, "[[")
	rest := strings.TrimLeft(line, "[")
	if i := strings.IndexByte(rest, ']'); i >= 0 {
		rest = rest[:i]
	}
	return strings.TrimSpace(rest), array
}
