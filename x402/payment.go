package x402

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"strconv"

	"github.com/ethereum/go-ethereum/common"
)

// Authorization is the EIP-3009 TransferWithAuthorization message that was
// signed, in the signer's field order.
type Authorization struct {
	From, To                       common.Address
	Value, ValidAfter, ValidBefore *big.Int
	Nonce                          [32]byte
}

// SignatureLength is the length of an r‖s‖v secp256k1 signature.
const SignatureLength = 65

// PaymentHeader builds the header of the paid retry: for v1, X-PAYMENT with
// {x402Version, scheme, network, payload}; for v2, PAYMENT-SIGNATURE with
// {x402Version, resource, accepted, payload, extensions}, where resource and
// extensions are pr's, verbatim (omitted when nil), and accepted is opt.Raw,
// verbatim. The value is standard base64 of JSON in that key order, compact
// except inside the echoed parts, which keep the server's bytes.
//
// opt must be one of pr.Options and payable. The authorization must pay the
// option's payTo exactly its amount, as read again from opt.Raw (the bytes
// that will be echoed), and the signature must be 65 bytes ending in v = 27
// or 28, the form verifiers accept (go-ethereum's crypto.Sign yields 0 or 1).
// Errors are *WireError of kind ErrNotPayable, ErrBadAuthorization or
// ErrVersion; they mean a bug in the caller, not a hostile server.
func PaymentHeader(pr *PaymentRequired, opt *Option, auth Authorization, signature []byte) (name, value string, err error) {
	payload, err := PaymentPayload(pr, opt, auth, signature)
	if err != nil {
		return "", "", err
	}
	name = HeaderPaymentSignature
	if pr.Version == 1 {
		name = HeaderXPayment
	}
	return name, base64.StdEncoding.EncodeToString(payload), nil
}

// PaymentPayload is PaymentHeader before base64: the PaymentPayload JSON
// object, which is also what x402 over MCP sends in _meta["x402/payment"].
func PaymentPayload(pr *PaymentRequired, opt *Option, auth Authorization, signature []byte) (json.RawMessage, error) {
	checked, err := checkPaymentArgs(pr, opt, auth, signature)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, 512+len(pr.Resource)+len(opt.Raw)+len(pr.Extensions))
	if pr.Version == 1 {
		b = append(b, `{"x402Version":1,"scheme":`...)
		b = appendJSONString(b, checked.Scheme)
		b = append(b, `,"network":`...)
		b = appendJSONString(b, checked.Network) // as the server wrote it
		b = append(b, `,"payload":`...)
		b = appendPayload(b, auth, signature)
		return append(b, '}'), nil
	}
	b = append(b, `{"x402Version":2`...)
	if pr.Resource != nil {
		b = append(b, `,"resource":`...)
		b = append(b, pr.Resource...)
	}
	b = append(b, `,"accepted":`...)
	b = append(b, opt.Raw...)
	b = append(b, `,"payload":`...)
	b = appendPayload(b, auth, signature)
	if pr.Extensions != nil {
		b = append(b, `,"extensions":`...)
		b = append(b, pr.Extensions...)
	}
	return append(b, '}'), nil
}

// checkPaymentArgs re-reads the option from the bytes about to be echoed and
// checks that the authorization and signature fit it. The Option's fields are
// exported and could have been changed since parsing; opt.Raw is what the
// server will compare, so it is the one to trust.
func checkPaymentArgs(pr *PaymentRequired, opt *Option, auth Authorization, sig []byte) (Option, error) {
	notPayable := func(msg string, cause error) (Option, error) {
		return Option{}, &WireError{Kind: ErrNotPayable, Where: wherePayment, Msg: msg, Err: cause}
	}
	badAuth := func(field, msg string) (Option, error) {
		return Option{}, &WireError{Kind: ErrBadAuthorization, Where: wherePayment, Field: field, Msg: msg}
	}
	switch {
	case pr == nil || opt == nil:
		return notPayable("no PaymentRequired or no option given", nil)
	case pr.Version != 1 && pr.Version != 2:
		return Option{}, &WireError{Kind: ErrVersion, Where: wherePayment,
			Msg: "x402Version " + strconv.Itoa(pr.Version) + " is not 1 or 2"}
	case opt.Err != nil:
		return notPayable("option "+strconv.Itoa(opt.Index)+" is not payable: "+reason(opt.Err), opt.Err)
	case opt.Index < 0 || opt.Index >= len(pr.Options) || !bytes.Equal(pr.Options[opt.Index].Raw, opt.Raw):
		return notPayable("option "+strconv.Itoa(opt.Index)+" is not one of this 402's options", nil)
	}
	for _, raw := range []json.RawMessage{pr.Resource, pr.Extensions} {
		if raw != nil && !quickValue(raw) && !json.Valid(raw) {
			return notPayable("resource or extensions is not valid JSON", nil)
		}
	}
	if err := checkJSON(opt.Raw, wherePayment); err != nil {
		return notPayable("option "+strconv.Itoa(opt.Index)+" is not strict JSON any more: "+err.Error(), err)
	}
	checked := parseOption(opt.Index, opt.Raw, pr.Version)
	if checked.Err != nil {
		return notPayable("option "+strconv.Itoa(opt.Index)+" is not payable: "+reason(checked.Err), checked.Err)
	}

	var ae *AuthorizationError
	if err := auth.Check(); errors.As(err, &ae) {
		return badAuth(ae.Field, ae.Msg)
	}
	switch {
	case auth.To != checked.PayTo:
		return badAuth("to", "to is "+auth.To.Hex()+" but the option pays "+checked.PayTo.Hex())
	case auth.Value.Cmp(checked.Amount) != 0:
		return badAuth("value", "value must equal the option's amount "+checked.Amount.String()+" exactly")
	case len(sig) != SignatureLength:
		return badAuth("signature", "signature is "+strconv.Itoa(len(sig))+" bytes; expected 65 (r, s, v)")
	case sig[64] != 27 && sig[64] != 28:
		return badAuth("signature", "signature v is "+strconv.Itoa(int(sig[64]))+"; expected 27 or 28 (add 27 to go-ethereum's 0 or 1)")
	}
	return checked, nil
}

// reason is an option's error without its "option N: " prefix, which the
// message it goes into already carries.
func reason(err error) string {
	var we *WireError
	if errors.As(err, &we) {
		return we.Msg
	}
	return err.Error()
}

func isUint256(n *big.Int) bool {
	return n != nil && n.Sign() >= 0 && n.Cmp(maxUint256) <= 0
}

// appendPayload writes the exact scheme's payload. Numbers are decimal
// strings because JavaScript verifiers would round JSON numbers above 2^53;
// addresses are EIP-55 checksummed and hex is lower case, as the reference
// clients write them.
func appendPayload(b []byte, auth Authorization, sig []byte) []byte {
	b = append(b, `{"signature":"0x`...)
	b = hex.AppendEncode(b, sig)
	b = append(b, `","authorization":{"from":"`...)
	b = append(b, auth.From.Hex()...)
	b = append(b, `","to":"`...)
	b = append(b, auth.To.Hex()...)
	b = append(b, `","value":"`...)
	b = auth.Value.Append(b, 10)
	b = append(b, `","validAfter":"`...)
	b = auth.ValidAfter.Append(b, 10)
	b = append(b, `","validBefore":"`...)
	b = auth.ValidBefore.Append(b, 10)
	b = append(b, `","nonce":"0x`...)
	b = hex.AppendEncode(b, auth.Nonce[:])
	return append(b, `"}}`...)
}

// appendJSONString quotes s as JSON. Only validated scheme and network names
// reach it, but it escapes properly regardless.
func appendJSONString(b []byte, s string) []byte {
	q, err := json.Marshal(s)
	if err != nil { // cannot happen for a string
		return append(b, `""`...)
	}
	return append(b, q...)
}
