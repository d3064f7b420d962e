package x402

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds on untrusted input. Real 402s are far smaller: the v2 example in the
// specification is about 600 bytes of base64 with one option. A header is
// where proxies and servers start refusing (8-16 KiB is the common limit), so
// a larger one could not have reached us intact anyway; a body may also carry
// a v1 outputSchema per option, hence four times as much. 32 options is
// several times what any server offers (one per network and token), and
// keeps an agent's choice list readable.
const (
	MaxHeaderBytes = 16 << 10 // one header value, as received (base64)
	MaxBodyBytes   = 64 << 10 // a 402 body
	MaxOptions     = 32       // entries in accepts
)

// maxDisplayBytes bounds text kept only for showing to a person or an agent
// (error, description, URL): long enough for any honest value, short enough
// that a hostile server cannot fill an agent's context.
const maxDisplayBytes = 1 << 10

// Header names. HTTP header names are case-insensitive; these are the
// spellings the specifications use.
const (
	HeaderPaymentRequired  = "PAYMENT-REQUIRED"   // v2, server -> client, in the 402
	HeaderPaymentSignature = "PAYMENT-SIGNATURE"  // v2, client -> server, on the retry
	HeaderPaymentResponse  = "PAYMENT-RESPONSE"   // v2, server -> client, settlement
	HeaderXPayment         = "X-PAYMENT"          // v1, client -> server, on the retry
	HeaderXPaymentResponse = "X-PAYMENT-RESPONSE" // v1, server -> client, settlement
)

// Values of WireError.Where that are not an option or a header.
const (
	headerWhereSuffix = " header"
	whereBody         = "402 body"
	wherePayment      = "payment header"
)

// headerValue returns the single non-empty value of the named header. It
// matches names case-insensitively even in a map built by hand (http.Header
// only canonicalises through its methods), and refuses a header sent twice:
// which copy wins differs between HTTP stacks, so either choice could be the
// one a middlebox did not see.
func headerValue(h http.Header, name string) (string, bool, error) {
	var (
		value string
		n     int
	)
	for k, vs := range h {
		if !strings.EqualFold(k, name) {
			continue
		}
		for _, v := range vs {
			if strings.TrimSpace(v) == "" {
				continue
			}
			value = v
			n++
		}
	}
	if n > 1 {
		return "", false, &WireError{Kind: ErrDuplicateKey, Where: name + headerWhereSuffix,
			Msg: "sent " + strconv.Itoa(n) + " times; refusing to choose one"}
	}
	return value, n == 1, nil
}

// decodeHeader bounds and base64-decodes a header value. The specification
// says standard base64 with padding; unpadded standard base64 is accepted as
// well because it decodes to the same bytes and we never re-encode what we
// decoded. The URL-safe alphabet is not: a server using it is not speaking
// x402.
func decodeHeader(value, where string) ([]byte, error) {
	if len(value) > MaxHeaderBytes {
		return nil, &WireError{Kind: ErrTooLarge, Where: where,
			Msg: strconv.Itoa(len(value)) + " bytes; at most " + strconv.Itoa(MaxHeaderBytes) + " are read"}
	}
	value = strings.TrimSpace(value)
	data, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		var err2 error
		if data, err2 = base64.RawStdEncoding.DecodeString(value); err2 != nil {
			return nil, &WireError{Kind: ErrBase64, Where: where,
				Msg: "not standard base64 (" + err.Error() + "); value starts " + quote(value[:min(len(value), 24)]), Err: err}
		}
	}
	return data, nil
}

// unsafeDisplayRune reports a rune that must not reach a reader: what
// Display removes or replaces, and U+FFFD, which stands for bytes that
// were not UTF-8. Names and field paths that must stay exact use it to
// refuse rather than repair.
func unsafeDisplayRune(r rune) bool {
	// Cf holds every bidirectional control (U+202A–202E, U+2066–2069,
	// U+200E/F), the zero-width characters (U+200B–200D, U+2060, U+FEFF)
	// and the soft hyphen: none shows, and each can make one text read as
	// another.
	return unicode.IsControl(r) || r == utf8.RuneError || unicode.Is(unicode.Cf, r) ||
		r == 0x2028 || r == 0x2029
}
