// Package shellquote makes a path safe to paste into the shell of the
// machine it was printed on: the hints and snippets x402-mcp prints
// ("chmod 600 …", "claude mcp add … --config …") must work as printed even
// for paths with spaces, such as macOS's "Application Support".
package shellquote

import (
	"runtime"
	"strings"
)

// Quote quotes s for this machine's shell when it needs it.
func Quote(s string) string { return quote(s, runtime.GOOS) }

// quote is Quote for a given OS: POSIX single quotes, or on Windows double
// quotes, which both cmd and PowerShell read.
func quote(s, goos string) string {
	safe := "@%+=:,./_-"
	if goos == "windows" {
		safe += `\` // the path separator there, not an escape
	}
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(safe, r))
	}) < 0 {
		return s
	}
	if goos == "windows" {
		return `"` + s + `"`
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
