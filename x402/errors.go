package x402

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrorKind classifies a WireError. Each kind is itself an error value so that
// callers can write errors.Is(err, x402.ErrBadAmount); kinds are constants, so
// no other package can reassign them.
type ErrorKind int

// The kinds. Whole-402 failures use the first group; per-option problems (set
// in Option.Err, the other options staying usable) use the second; the third
// reports misuse of PaymentHeader by its caller.
const (
	_ ErrorKind = iota

	// ErrTooLarge: an input is over MaxHeaderBytes, MaxBodyBytes, MaxDepth
	// or MaxOptions.
	ErrTooLarge
	// ErrBase64: a header value is not standard base64.
	ErrBase64
	// ErrInvalidJSON: not exactly one well-formed UTF-8 JSON object.
	ErrInvalidJSON
	// ErrDuplicateKey: an object repeats a key (also ignoring case), or a
	// header that must appear once appears more than once.
	ErrDuplicateKey
	// ErrVersion: x402Version missing, not the number 1 or 2, or not the
	// version its carrier implies.
	ErrVersion
	// ErrNoOptions: accepts missing, not an array, or empty; also a 402 that
	// carries no payment requirements at all.
	ErrNoOptions

	// ErrMalformed: a field has the wrong JSON type or shape (an option that
	// is not an object, extra that is not an object, a non-string name).
	ErrMalformed
	// ErrUnsupportedScheme: scheme missing or not "exact".
	ErrUnsupportedScheme
	// ErrUnsupportedTransfer: extra.assetTransferMethod present and not
	// "eip3009".
	ErrUnsupportedTransfer
	// ErrUnsupportedNetwork: network missing, unknown, malformed or not EVM.
	ErrUnsupportedNetwork
	// ErrBadAmount: amount missing, not a canonical decimal string, zero, or
	// not below 2^256.
	ErrBadAmount
	// ErrBadAddress: asset or payTo malformed, zero, failing its EIP-55
	// checksum, or payTo equal to asset.
	ErrBadAddress
	// ErrBadTimeout: maxTimeoutSeconds missing, not a non-negative integer
	// JSON number, or over 2^64-1.
	ErrBadTimeout

	// ErrNotPayable: PaymentHeader was given an option that cannot be paid or
	// that does not belong to the PaymentRequired passed with it.
	ErrNotPayable
	// ErrBadAuthorization: PaymentHeader was given an authorization or a
	// signature that does not fit the option or the wire format.
	ErrBadAuthorization

	kindCount // keep last
)

var kindText = [...]string{
	ErrTooLarge:            "input too large",
	ErrBase64:              "invalid base64",
	ErrInvalidJSON:         "invalid JSON",
	ErrDuplicateKey:        "duplicate key",
	ErrVersion:             "unsupported x402Version",
	ErrNoOptions:           "no payment options",
	ErrMalformed:           "malformed field",
	ErrUnsupportedScheme:   "unsupported scheme",
	ErrUnsupportedTransfer: "unsupported asset transfer method",
	ErrUnsupportedNetwork:  "unsupported network",
	ErrBadAmount:           "bad amount",
	ErrBadAddress:          "bad address",
	ErrBadTimeout:          "bad maxTimeoutSeconds",
	ErrNotPayable:          "option not payable",
	ErrBadAuthorization:    "bad authorization",
}

func (k ErrorKind) String() string {
	if k > 0 && k < kindCount {
		return kindText[k]
	}
	return "ErrorKind(" + strconv.Itoa(int(k)) + ")"
}

// Error makes a kind usable as an errors.Is target.
func (k ErrorKind) Error() string { return "x402: " + k.String() }

// WireError describes one thing wrong with a message on the wire, or with the
// arguments of PaymentHeader. Its text is written for a reader who has to
// decide what to do next, possibly an AI agent, so it says where the problem
// is and what the value was.
type WireError struct {
	Kind ErrorKind
	// Where names the part of the exchange: "PAYMENT-REQUIRED header",
	// "402 body", "option 2", "PAYMENT-RESPONSE header", "payment header".
	Where string
	// Field is the JSON path of the offending value ("accepts[2].amount"),
	// empty when the problem is not one field.
	Field string
	// Msg is the detail; untrusted text in it is already truncated and quoted.
	Msg string
	// Err is the underlying cause, if any (a base64 or JSON decoder error, an
	// *UnsupportedNetworkError, the Err of an unpayable Option).
	Err error
}

func (e *WireError) Error() string {
	if e.Where == "" {
		return e.Msg
	}
	return e.Where + ": " + e.Msg
}

// Unwrap exposes both the kind and the cause, so errors.Is matches the kind
// and errors.As still reaches a cause such as *UnsupportedNetworkError.
func (e *WireError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// UnsupportedNetworkError is returned by CAIP2 for a network this package
// cannot pay on, and is the cause inside an option's ErrUnsupportedNetwork.
type UnsupportedNetworkError struct {
	Network string // as given, untrusted
	Reason  string // why, ready to show
}

func (e *UnsupportedNetworkError) Error() string {
	return "network " + quote(e.Network) + " is not supported: " + e.Reason
}

// Is lets errors.Is(err, ErrUnsupportedNetwork) hold for the bare error that
// CAIP2 returns, not only for the WireError that wraps it.
func (e *UnsupportedNetworkError) Is(target error) bool {
	return target == ErrUnsupportedNetwork
}

// maxQuoted bounds any untrusted string placed in an error message: enough to
// recognise a value, too little to flood a log or an agent's context.
const maxQuoted = 64

// quote truncates s to maxQuoted bytes on a rune boundary and quotes it, so
// that control characters, newlines and terminal escapes cannot reach a
// reader of the message unescaped.
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

// describeJSON names the JSON type of a raw value for a type-mismatch message,
// showing the value itself only when it is a short scalar.
func describeJSON(raw []byte) string {
	s := strings.TrimSpace(string(raw))
	if s == "" {
		return "nothing"
	}
	switch s[0] {
	case '{':
		return "a JSON object"
	case '[':
		return "a JSON array"
	case '"':
		return "a JSON string"
	case 't', 'f':
		return "the JSON boolean " + s
	case 'n':
		return "null"
	}
	if len(s) > 40 {
		return "a JSON number of " + strconv.Itoa(len(s)) + " characters"
	}
	return "the JSON number " + s
}
