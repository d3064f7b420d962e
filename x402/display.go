package x402

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Display is the one cleaner for text another party wrote (a server's
// error or body, a description, a URL, a client's name) before a person or
// the agent reads it. It makes one line of what can be shown:
//
//   - format characters (Unicode Cf: the bidirectional overrides and
//     isolates U+202A–202E and U+2066–2069, the marks U+200E/F, the
//     zero-width characters U+200B–200D, U+2060 and U+FEFF, the soft
//     hyphen) are removed: none shows, and each can make one text read as
//     another;
//   - control characters, line and paragraph separators and every run of
//     white space become one space, so a server cannot forge a line break,
//     a terminal escape or a paragraph of its own; leading and trailing
//     space is dropped;
//   - bytes that are not UTF-8 become U+FFFD, one per run;
//   - the result is cut on a character boundary at limit bytes, and a cut
//     is marked with "…" (so it is at most limit+3 bytes).
//
// Display stops reading at the first character past its bound, so a
// 16 MiB body costs no more than the part of it that is shown and what
// was removed before it.
func Display(s string, limit int) string { return clean(s, limit, -1) }

// DisplayRunes is Display bounded in characters rather than bytes: the
// result has at most maxRunes runes, the last one "…" when cut. It suits
// a column or a field whose room is counted in characters.
func DisplayRunes(s string, maxRunes int) string { return clean(s, -1, maxRunes) }

// Quoted is Display inside «», the mark of another party's words: a « or »
// in the text becomes ", so the text cannot close the quote early and go on
// as if x402-mcp were speaking.
func Quoted(s string, limit int) string {
	return "«" + strings.NewReplacer("«", `"`, "»", `"`).Replace(Display(s, limit)) + "»"
}

// clean implements Display (maxRunes < 0) and DisplayRunes (maxBytes < 0).
func clean(s string, maxBytes, maxRunes int) string {
	if maxBytes == 0 || maxRunes == 0 {
		return ""
	}
	// One allocation in the usual case, where what is shown is about as
	// long as what was given.
	size := len(s)
	if maxBytes >= 0 {
		size = min(size, maxBytes+len("…"))
	}
	if maxRunes >= 0 {
		size = min(size, maxRunes*utf8.UTFMax)
	}
	var b strings.Builder
	b.Grow(size)
	runes := 0
	pendingSpace := false
	lastInvalid := false
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		invalid := r == utf8.RuneError && size == 1
		switch {
		case invalid && lastInvalid:
			continue
		case invalid:
			lastInvalid = true
		case unicode.Is(unicode.Cf, r):
			continue
		case unicode.IsSpace(r) || unicode.IsControl(r) || r == 0x2028 || r == 0x2029:
			pendingSpace = b.Len() > 0
			lastInvalid = false
			continue
		default:
			lastInvalid = false
		}
		if invalid {
			r = utf8.RuneError
		}
		n := utf8.RuneLen(r)
		if pendingSpace {
			n++
		}
		if (maxBytes >= 0 && b.Len()+n > maxBytes) || (maxRunes >= 0 && runes+1+boolInt(pendingSpace) > maxRunes) {
			return cut(b.String(), maxRunes)
		}
		if pendingSpace {
			b.WriteByte(' ')
			runes++
			pendingSpace = false
		}
		b.WriteRune(r)
		runes++
	}
	return b.String()
}

// cut marks shown text as cut. Bounded in runes, the mark takes the place
// of the last rune, so the result keeps its bound.
func cut(s string, maxRunes int) string {
	if maxRunes >= 0 && utf8.RuneCountInString(s) >= maxRunes {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s + "…"
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// displayText makes untrusted text safe to show at the package's usual
// bound (see Display).
func displayText(s string) string { return Display(s, maxDisplayBytes) }

// displayClip is Display under the package's own name for values that
// deserve less room than a whole message (a field name, an example value)
// or more (an example request body).
func displayClip(s string, limit int) string { return Display(s, limit) }
