// Package fileerr is the one shape of error for a mistake in a file an
// operator writes (configuration, policy, catalog): where it is (file,
// line, key), what is wrong, and what to do about it, printed the same way
// everywhere:
//
//	policy.toml:7: budget.dai: unknown key
//		hint: the periods are hour, day, week, month and total
package fileerr

import (
	"fmt"
	"strings"

	"github.com/x402-mcp/x402-mcp/internal/redact"
)

// Error is a problem at a place in a file. Line 0 means the line is not
// known; Key and Hint may be empty.
type Error struct {
	Path string
	Line int
	Key  string
	Msg  string
	Hint string
}

func (e *Error) Error() string { return Format(e.Path, e.Line, e.Key, e.Msg, e.Hint) }

// Format renders the parts of a file error; where is usually the file's
// path, but may name another source (an environment variable). A private
// key that reached any part (a key name copied from the file, a parser's
// message) is scrubbed: the callers do not quote rejected values, and this
// is the net under them.
func Format(where string, line int, key, msg, hint string) string {
	var b strings.Builder
	b.WriteString(where)
	if line > 0 {
		fmt.Fprintf(&b, ":%d", line)
	}
	b.WriteString(": ")
	if key != "" {
		b.WriteString(key + ": ")
	}
	b.WriteString(msg)
	if hint != "" {
		b.WriteString("\n\thint: " + hint)
	}
	return redact.Scrub(b.String())
}
