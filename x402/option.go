package x402

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"strconv"

	"github.com/ethereum/go-ethereum/common"
)

// Option is one entry of accepts: one way the server will take payment.
type Option struct {
	Index int // position in accepts, counted from 0 (as in "option 2")
	// Raw is the option exactly as received; v2 echoes it as `accepted`.
	Raw     json.RawMessage
	Scheme  string
	Network string   // as on the wire
	CAIP2   string   // normalised ("eip155:8453"); "" if unsupported
	ChainID *big.Int // nil if unsupported
	// Amount is `amount` (v2) or `maxAmountRequired` (v1) in the asset's
	// atomic units. The exact scheme charges exactly this much.
	Amount            *big.Int
	Asset             common.Address // token contract
	PayTo             common.Address
	MaxTimeoutSeconds uint64
	// From `extra`, exactly as sent (not display-cleaned): ExtraName and
	// ExtraVersion must be compared byte for byte with the token registry.
	// Each is "" when absent (or null).
	ExtraName, ExtraVersion, AssetTransferMethod string
	// PaymentFlow is extra.paymentFlow: when the server settles relative to
	// doing the work (see FlowAuthorization). "" when absent, which means
	// the standard flow. It is the server's text bounded and cleaned for
	// display (Display): cleaning removes invisible characters, makes
	// white space one space and marks a cut with "…", so the value equals
	// one of the Flow names only when the server sent that name as it
	// reads. Whether a flow can be paid is the caller's decision.
	PaymentFlow string
	// Err says why this option cannot be paid; nil means it can. It is a
	// *WireError whose Kind tells the class of problem. When Err is set the
	// other fields are filled as far as they could be read, for display.
	Err error
}

// Payable reports whether the option passed every wire-level check. The
// caller's policy still decides whether to pay it.
func (o *Option) Payable() bool { return o.Err == nil }

// Payment flows: the values of an option's extra.paymentFlow, which say in
// what order the server verifies, does the work and settles (the reference
// SDK's PaymentFlowName). A scheme declares which flows it supports; for
// "exact", authorization is the default and upfront the alternative.
const (
	// FlowAuthorization is the default, also when extra.paymentFlow is
	// absent: verify, do the work, then settle. A request that fails is
	// not charged.
	FlowAuthorization = "authorization"
	// FlowUpfront: settle, then do the work. A request that fails has been
	// paid all the same; the specifications define no refund.
	FlowUpfront = "upfront"
	// FlowEscrow: settle before the work (a deposit) and again after it.
	// An EIP-3009 authorization moves its whole value at the first
	// settlement, so for this client it carries upfront's risk.
	FlowEscrow = "escrow"
)

// KnownPaymentFlow reports whether s is a payment flow the specifications
// define. Names are compared exactly, as the reference SDK does.
func KnownPaymentFlow(s string) bool {
	return s == FlowAuthorization || s == FlowUpfront || s == FlowEscrow
}

// maxFlowBytes bounds Option.PaymentFlow: the defined names are a few
// letters, and anything longer is only ever shown.
const maxFlowBytes = 64

// maxAmountDigits is the length of 2^256-1, the largest uint256, in decimal.
const maxAmountDigits = 78

var maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

// parseOption reads accepts[index]. It checks every field even after the
// first failure so that display fields are filled, but keeps the first error
// in reading order (scheme, transfer method, network, amount, asset, payTo,
// timeout, extra), which puts the most basic reason first.
func parseOption(index int, raw json.RawMessage, version int) (o Option) {
	o = Option{Index: index, Raw: raw}
	where := "option " + strconv.Itoa(index)
	path := "accepts[" + strconv.Itoa(index) + "]"
	var first *WireError
	fail := func(kind ErrorKind, field, msg string, cause error) {
		if first == nil {
			first = &WireError{Kind: kind, Where: where, Field: path + "." + field, Msg: msg, Err: cause}
		}
	}
	defer func() {
		if first != nil {
			o.Err = first // assigned only when non-nil: a typed nil would read as an error
		}
	}()

	f := objectFields(raw)
	if f == nil {
		first = &WireError{Kind: ErrMalformed, Where: where, Field: path,
			Msg: "the option is " + describeJSON(raw) + ", not a JSON object"}
		return o
	}

	if s, ok := jsonString(f["scheme"]); ok {
		o.Scheme = s
		if s != "exact" {
			fail(ErrUnsupportedScheme, "scheme", "scheme "+quote(s)+" is not supported; only \"exact\" can be paid", nil)
		}
	} else {
		fail(ErrUnsupportedScheme, "scheme", "scheme is "+describeMissing(f["scheme"])+"; expected \"exact\"", nil)
	}

	// extra comes early: assetTransferMethod decides whether this option
	// can be signed at all, a more basic reason than a bad field.
	extraErr := o.readExtra(f["extra"], fail)

	if s, ok := jsonString(f["network"]); ok {
		o.Network = s
		if caip2, id, err := CAIP2(s); err != nil {
			fail(ErrUnsupportedNetwork, "network", err.Error(), err)
		} else {
			o.CAIP2, o.ChainID = caip2, id
		}
	} else {
		fail(ErrUnsupportedNetwork, "network", "network is "+describeMissing(f["network"]), nil)
	}

	// amount: v1 and v2 name it differently; an option carrying both with
	// different values means something different to each kind of server.
	amountKey, otherKey := "amount", "maxAmountRequired"
	if version == 1 {
		amountKey, otherKey = otherKey, amountKey
	}
	if other := f[otherKey]; other != nil && f[amountKey] != nil && !bytes.Equal(other, f[amountKey]) {
		fail(ErrBadAmount, amountKey, "the option has both "+amountKey+" and "+otherKey+" with different values", nil)
	}
	if amt, msg := parseAmount(amountKey, f[amountKey]); msg != "" {
		fail(ErrBadAmount, amountKey, msg, nil)
	} else {
		o.Amount = amt
	}

	var assetOK, payToOK bool
	if o.Asset, assetOK = readAddress("asset", f["asset"], fail); assetOK {
		if o.Asset == (common.Address{}) {
			fail(ErrBadAddress, "asset", "asset is the zero address", nil)
		}
	}
	if o.PayTo, payToOK = readAddress("payTo", f["payTo"], fail); payToOK {
		switch {
		case o.PayTo == (common.Address{}):
			fail(ErrBadAddress, "payTo", "payTo is the zero address; a payment there would be burnt", nil)
		case assetOK && o.PayTo == o.Asset:
			fail(ErrBadAddress, "payTo", "payTo is the token contract itself ("+o.Asset.Hex()+")", nil)
		}
	}

	if t, msg := parseTimeout(f["maxTimeoutSeconds"]); msg != "" {
		fail(ErrBadTimeout, "maxTimeoutSeconds", msg, nil)
	} else {
		o.MaxTimeoutSeconds = t
	}

	if extraErr != nil {
		fail(extraErr.Kind, extraErr.Field, extraErr.Msg, nil)
	}
	return o
}

// readExtra fills the extra fields. A transfer method other than EIP-3009 is
// reported at once through fail; a malformed extra is returned to be reported
// last, as it matters only if everything else is fine.
func (o *Option) readExtra(raw json.RawMessage, fail func(ErrorKind, string, string, error)) *WireError {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	f := objectFields(raw)
	if f == nil {
		return &WireError{Kind: ErrMalformed, Field: "extra", Msg: "extra is " + describeJSON(raw) + ", not a JSON object"}
	}
	if m := f["assetTransferMethod"]; m != nil && string(m) != "null" {
		s, ok := jsonString(m)
		o.AssetTransferMethod = s
		switch {
		case !ok:
			fail(ErrUnsupportedTransfer, "extra.assetTransferMethod",
				"extra.assetTransferMethod is "+describeJSON(m)+", not a string", nil)
		case s != "eip3009":
			fail(ErrUnsupportedTransfer, "extra.assetTransferMethod",
				"extra.assetTransferMethod "+quote(s)+" is not supported; only \"eip3009\" can be paid", nil)
		}
	}
	var bad *WireError
	for _, kv := range []struct {
		key string
		dst *string
	}{{"name", &o.ExtraName}, {"version", &o.ExtraVersion}} {
		v := f[kv.key]
		if v == nil || string(v) == "null" {
			continue
		}
		s, ok := jsonString(v)
		if !ok {
			if bad == nil {
				bad = &WireError{Kind: ErrMalformed, Field: "extra." + kv.key,
					Msg: "extra." + kv.key + " is " + describeJSON(v) + ", not a string"}
			}
			continue
		}
		*kv.dst = s
	}
	if v := f["paymentFlow"]; v != nil && string(v) != "null" {
		// Absent means the standard flow, so "" is kept for absent: an
		// empty or non-string value is malformed rather than read as the
		// default, which the server may not mean.
		s, ok := jsonString(v)
		switch {
		case !ok && bad == nil:
			bad = &WireError{Kind: ErrMalformed, Field: "extra.paymentFlow",
				Msg: "extra.paymentFlow is " + describeJSON(v) + ", not a string"}
		case ok && s == "" && bad == nil:
			bad = &WireError{Kind: ErrMalformed, Field: "extra.paymentFlow",
				Msg: "extra.paymentFlow is an empty string; a server using the standard flow leaves it out"}
		case ok && s != "":
			o.PaymentFlow = displayClip(s, maxFlowBytes)
		}
	}
	return bad
}

// parseAmount accepts only the canonical decimal form of a positive integer
// below 2^256, as a JSON string: digits, no sign, no leading zeros, no
// fraction or exponent. A JSON number is refused because JavaScript servers
// read numbers as float64, so above 2^53 the server and we would disagree on
// the price; every other spelling is refused because an amount with two
// readings is one we cannot be sure of. The message for a problem is
// returned; "" means ok.
func parseAmount(key string, raw json.RawMessage) (*big.Int, string) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, key + " is missing"
	}
	s, ok := jsonString(raw)
	if !ok {
		return nil, key + " is " + describeJSON(raw) + "; x402 amounts are decimal strings of atomic units"
	}
	switch {
	case s == "":
		return nil, key + " is empty"
	case !isDigits(s):
		return nil, key + " " + quote(s) + " is not a non-negative integer"
	case len(s) > 1 && s[0] == '0':
		return nil, key + " " + quote(s) + " has leading zeros"
	case len(s) > maxAmountDigits:
		return nil, key + " has " + strconv.Itoa(len(s)) + " digits; at most " + strconv.Itoa(maxAmountDigits) + " fit in a uint256"
	case s == "0":
		return nil, key + " is \"0\": there is nothing to pay"
	}
	n, _ := new(big.Int).SetString(s, 10)
	if n.Cmp(maxUint256) > 0 {
		return nil, key + " " + quote(s) + " does not fit in a uint256"
	}
	return n, ""
}

// parseTimeout reads maxTimeoutSeconds, which the specifications make a JSON
// number. Only a plain non-negative integer literal is accepted ("60", not
// "60.0", "6e1" or "\"60\""): it is turned into a signing window, and a
// spelling we would have to interpret is one the server may mean otherwise.
// Zero is accepted here; a window that short is for the caller's policy to
// refuse or widen.
func parseTimeout(raw json.RawMessage) (uint64, string) {
	const key = "maxTimeoutSeconds"
	if len(raw) == 0 || string(raw) == "null" {
		return 0, key + " is missing"
	}
	s := string(raw)
	if raw[0] == '"' || raw[0] == '{' || raw[0] == '[' || raw[0] == 't' || raw[0] == 'f' {
		return 0, key + " is " + describeJSON(raw) + "; expected a whole number of seconds"
	}
	if s[0] == '-' {
		return 0, key + " is " + describeJSON(raw) + "; it cannot be negative"
	}
	if !isDigits(s) {
		return 0, key + " is " + describeJSON(raw) + "; expected a whole number of seconds"
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, key + " is " + describeJSON(raw) + " with leading zeros"
	}
	t, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, key + " is " + describeJSON(raw) + "; it does not fit in 64 bits"
	}
	return t, ""
}

// readAddress reads an EVM address field; ok is false when the field could
// not be read at all (the problem has then been reported through fail).
func readAddress(key string, raw json.RawMessage, fail func(ErrorKind, string, string, error)) (common.Address, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		fail(ErrBadAddress, key, key+" is missing", nil)
		return common.Address{}, false
	}
	s, ok := jsonString(raw)
	if !ok {
		fail(ErrBadAddress, key, key+" is "+describeJSON(raw)+", not a string", nil)
		return common.Address{}, false
	}
	a, msg := parseAddress(s)
	if msg != "" {
		fail(ErrBadAddress, key, key+" "+quote(s)+" "+msg, nil)
		return common.Address{}, false
	}
	return a, true
}

// parseAddress accepts "0x" and 40 hex digits. Mixed case must be a valid
// EIP-55 checksum: a mistyped or corrupted address usually fails it, and
// money sent to one is lost. Uniform case carries no checksum and is taken
// as is. The message for a problem is returned; "" means ok.
func parseAddress(s string) (common.Address, string) {
	var a common.Address
	if len(s) != 2+2*common.AddressLength || s[0] != '0' || s[1] != 'x' {
		return a, "is not 0x followed by 40 hex digits"
	}
	if _, err := hex.Decode(a[:], []byte(s[2:])); err != nil {
		return common.Address{}, "is not 0x followed by 40 hex digits"
	}
	var lower, upper bool
	for _, c := range s[2:] {
		lower = lower || (c >= 'a' && c <= 'f')
		upper = upper || (c >= 'A' && c <= 'F')
	}
	if lower && upper && a.Hex() != s {
		return common.Address{}, "fails its EIP-55 checksum (expected " + a.Hex() + "); it may be mistyped"
	}
	return a, ""
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// describeMissing is describeJSON that also covers an absent field.
func describeMissing(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "missing"
	}
	return describeJSON(raw)
}
