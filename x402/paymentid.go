package x402

import (
	"encoding/json"
	"errors"
)

// ExtensionPaymentIdentifier is the extension by which a client gives each
// payment an id, so that a server can answer a re-sent payment with the
// response it already produced (an idempotency key).
const ExtensionPaymentIdentifier = "payment-identifier"

// PaymentIDAdvertised reports whether a v2 402 advertises the
// payment-identifier extension, and whether it requires an id.
func PaymentIDAdvertised(pr *PaymentRequired) (advertised, required bool) {
	if pr == nil || pr.Version != 2 {
		return false, false
	}
	ext := objectFields(objectFields(pr.Extensions)[ExtensionPaymentIdentifier])
	if ext == nil {
		return false, false
	}
	return true, string(objectFields(ext["info"])["required"]) == "true"
}

// ValidPaymentID reports whether id has the form the extension allows: 16
// to 128 characters of letters, digits, '-' and '_'.
func ValidPaymentID(id string) bool {
	if len(id) < 16 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// WithPaymentID returns a copy of pr whose extensions carry id in the
// payment-identifier extension's info, as the payment echoes them; the
// other extensions are echoed unchanged. pr must advertise the extension.
func WithPaymentID(pr *PaymentRequired, id string) (*PaymentRequired, error) {
	if !ValidPaymentID(id) {
		return nil, errors.New("x402: payment id must be 16 to 128 letters, digits, '-' or '_'")
	}
	exts := objectFields(pr.Extensions)
	ext := objectFields(exts[ExtensionPaymentIdentifier])
	if ext == nil {
		return nil, errors.New("x402: the 402 does not advertise payment-identifier")
	}
	info := objectFields(ext["info"])
	if info == nil {
		info = map[string]json.RawMessage{}
	}
	var err error
	if info["id"], err = json.Marshal(id); err != nil {
		return nil, err
	}
	if ext["info"], err = json.Marshal(info); err != nil {
		return nil, err
	}
	if exts[ExtensionPaymentIdentifier], err = json.Marshal(ext); err != nil {
		return nil, err
	}
	out := *pr
	if out.Extensions, err = json.Marshal(exts); err != nil {
		return nil, err
	}
	return &out, nil
}
