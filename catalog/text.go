package catalog

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/x402-mcp/x402-mcp/x402"
)

// maxQuoted bounds untrusted text quoted inside a message: enough to
// recognise a value, too little to flood a log or an agent's context.
const maxQuoted = 64

// quote truncates s on a rune boundary and quotes it, so control characters
// and terminal escapes never reach a reader unescaped.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "…"
}

// cleanText makes untrusted text safe to show, with the one cleaner of
// x402-mcp (x402.DisplayRunes): invisible format characters (bidi
// overrides, zero-width joiners) are removed, control characters and runs
// of white space become one space, invalid UTF-8 is replaced, and the
// result is cut to maxRunes runes, the last one an ellipsis when cut.
func cleanText(s string, maxRunes int) string { return x402.DisplayRunes(s, maxRunes) }

// maxURLLen bounds a resource URL; browsers and proxies commonly stop at
// about this length, so a longer one is not an API anyone calls.
const maxURLLen = 2048

// checkURL accepts an absolute http or https URL with a host, no
// credentials, and no white space or control characters. It returns the URL
// unchanged: re-encoding it could change the resource that is called.
func checkURL(s string) (string, error) {
	switch {
	case s == "":
		return "", errors.New("URL is empty")
	case len(s) > maxURLLen:
		return "", fmt.Errorf("URL is %d bytes; at most %d are accepted", len(s), maxURLLen)
	case !utf8.ValidString(s):
		return "", errors.New("URL is not valid UTF-8")
	case strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
	}):
		return "", fmt.Errorf("URL %s contains white space or control characters", quote(s))
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("URL %s does not parse", quote(s))
	}
	switch scheme := strings.ToLower(u.Scheme); {
	case scheme != "http" && scheme != "https":
		return "", fmt.Errorf("URL scheme %s is not http or https", quote(u.Scheme))
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("URL %s has no host", quote(s))
	case u.User != nil:
		// "https://api.good.example@evil.example/" reads as one host and
		// calls another; nothing honest lists credentials.
		return "", fmt.Errorf("URL %s carries credentials", quote(s))
	}
	return s, nil
}

// dedupKey identifies an endpoint across sources: the method and the URL
// without query string or fragment, with scheme and host lower-cased and a
// default port dropped. Query strings are ignored because listings differ
// in whether they show example parameters ("/weather" and
// "/weather?city=Paris" are one endpoint); the path is compared exactly,
// since servers may treat case and a trailing slash as different routes.
func dedupKey(method, rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return method + " " + rawURL // unreachable for checked URLs
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	if p := u.Port(); p != "" && !(scheme == "http" && p == "80") && !(scheme == "https" && p == "443") {
		host += ":" + p
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]" // an IPv6 literal keeps its brackets
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return method + " " + scheme + "://" + host + path
}

// checkMethod upper-cases an HTTP method and accepts a short token of
// letters, which every real method is.
func checkMethod(m string) (string, error) {
	if m == "" {
		return "GET", nil
	}
	m = strings.ToUpper(m)
	if len(m) > 16 || strings.ContainsFunc(m, func(r rune) bool { return r < 'A' || r > 'Z' }) {
		return "", fmt.Errorf("method %s is not an HTTP method", quote(m))
	}
	return m, nil
}

// tooDeep reports whether JSON text nests objects and arrays deeper than
// max. It only counts brackets outside strings, so it is cheap enough to run
// before a full decode, and it never fails on malformed text: the decoder
// reports that.
func tooDeep[T string | []byte](data T, max int) bool {
	depth := 0
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '"':
			// Jump to the closing quote: one not escaped by an odd run of
			// backslashes. Strings are most of a listing's bytes.
			for {
				j := strings.IndexByte(string(data[i+1:]), '"')
				if j < 0 {
					return false
				}
				i += 1 + j
				k := i - 1
				for k >= 0 && data[k] == '\\' {
					k--
				}
				if (i-1-k)%2 == 0 {
					break
				}
			}
		case '{', '[':
			depth++
			if depth > max {
				return true
			}
		case '}', ']':
			depth--
		}
	}
	return false
}

// words splits text into lower-case words of letters and digits.
func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}
