// Package redact decides whether a value an operator typed may be shown
// back in an error. A private key or a recovery phrase pasted into the
// wrong place (a key_file line, an environment variable, a flag) must
// never reach a terminal, a log or a crash report, so a value that looks
// like one is replaced by words that say what it looks like.
//
// Callers still follow the stricter rule of the program: a number or an
// environment variable value that is rejected is not shown at all, whatever
// it looks like (see NotShown). These functions are for the values that
// help the operator when shown: paths of files that do not exist, host
// names, addresses.
package redact

import (
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"
)

// NotShown is what an error says in place of a value it does not repeat.
const NotShown = "(value not shown)"

// LooksLikeKey is the message for a value that looks like a private key
// or a recovery phrase where a path was expected.
const LooksLikeKey = "this looks like a private key, not a path; the value is not shown"

// LooksSecret reports whether s, or any element of it as a path, looks
// like a private key (64 hex digits, with or without 0x, or any run of 64
// or more hex digits) or a BIP-39 recovery phrase (12 to 24 words of
// letters).
func LooksSecret(s string) bool {
	if looksSecret(s) {
		return true
	}
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == '/' || r == '\\' || r == filepath.Separator }) {
		if looksSecret(part) {
			return true
		}
	}
	return false
}

func looksSecret(s string) bool {
	return hexRun(s) >= 64 || mnemonic(s)
}

// hexRun is the length of the longest run of hex digits in s.
func hexRun(s string) int {
	best, run := 0, 0
	for i := 0; i < len(s); i++ {
		if isHex(s[i]) {
			run++
			best = max(best, run)
			continue
		}
		run = 0
	}
	return best
}

// mnemonic reports whether s is 12, 15, 18, 21 or 24 words of 3 to 8
// letters, the shape of a BIP-39 recovery phrase.
func mnemonic(s string) bool {
	words := strings.Fields(s)
	switch len(words) {
	case 12, 15, 18, 21, 24:
	default:
		return false
	}
	for _, w := range words {
		if len(w) < 3 || len(w) > 8 {
			return false
		}
		for _, r := range w {
			if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') {
				return false
			}
		}
	}
	return true
}

// Quote returns s quoted (%q), clipped to 64 bytes on a character
// boundary, or NotShown with the reason when s looks like a secret.
func Quote(s string) string {
	if LooksSecret(s) {
		return "(value not shown: it looks like a private key)"
	}
	if len(s) > 64 {
		n := 64
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "…"
	}
	return strconv.Quote(s)
}

// Path returns a path for an error message as is, or words saying it is
// not shown when it looks like a secret.
func Path(p string) string {
	if LooksSecret(p) {
		return "(path not shown: it looks like a private key)"
	}
	return p
}

// Scrub replaces every run of 64 or more hex digits in s (with its 0x
// prefix, if any) by "(not shown)". It is the last line of defence for
// text about to be printed whose parts were not all chosen by this
// program (a parser's message, a key name read from a file); the rules
// above decide what is shown in the first place.
func Scrub(s string) string {
	if hexRun(s) < 64 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && isHex(s[j]) {
			j++
		}
		if j-i >= 64 {
			out := b.String()
			if strings.HasSuffix(out, "0x") || strings.HasSuffix(out, "0X") {
				b.Reset()
				b.WriteString(out[:len(out)-2])
			}
			b.WriteString("(not shown)")
			i = j
			continue
		}
		if j > i {
			b.WriteString(s[i:j])
			i = j
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// Unquote replaces every double-quoted part of a parser's message by
// NotShown: such parsers (go-toml, strconv) quote the input they refused.
func Unquote(msg string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(msg, '"')
		if i < 0 {
			b.WriteString(msg)
			return b.String()
		}
		j := strings.IndexByte(msg[i+1:], '"')
		if j < 0 {
			b.WriteString(msg[:i])
			b.WriteString(NotShown)
			return b.String()
		}
		b.WriteString(msg[:i])
		b.WriteString(NotShown)
		msg = msg[i+1+j+1:]
	}
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}
