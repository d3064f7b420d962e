package x402

import (
	"crypto/rand"
	"encoding/hex"
	"errors"

	"github.com/ethereum/go-ethereum/common"
)

// AuthorizationError says which field of an Authorization cannot be signed
// or sent, and why. Check returns it; the policy, the signer and
// PaymentHeader each add what they alone know (the terms that were judged,
// the key, the option it pays).
type AuthorizationError struct {
	Field string // "from", "to", "value", "validAfter", "validBefore", "nonce"
	Msg   string
}

func (e *AuthorizationError) Error() string { return e.Msg }

// Check holds the rules every authorization obeys, whatever it pays: both
// addresses set, value and window set and within uint256, a window that is
// not empty, a nonce that is not all zeros. It is the one copy of these
// rules; the policy, the signer and PaymentHeader all call it.
func (a Authorization) Check() error {
	bad := func(field, msg string) error { return &AuthorizationError{Field: field, Msg: msg} }
	switch {
	case a.From == (common.Address{}):
		return bad("from", "authorization is from the zero address")
	case a.To == (common.Address{}):
		return bad("to", "authorization pays the zero address")
	case !isUint256(a.Value):
		return bad("value", "authorization value must be set and fit in a uint256")
	case !isUint256(a.ValidAfter):
		return bad("validAfter", "authorization validAfter must be set and fit in a uint256")
	case !isUint256(a.ValidBefore):
		return bad("validBefore", "authorization validBefore must be set and fit in a uint256")
	case a.ValidBefore.Cmp(a.ValidAfter) <= 0:
		return bad("validBefore", "authorization window is empty (validBefore "+a.ValidBefore.String()+" <= validAfter "+a.ValidAfter.String()+")")
	case a.Nonce == [32]byte{}:
		// An all-zero nonce is what a forgotten crypto/rand call looks like,
		// and a reused nonce makes the payment fail on chain.
		return bad("nonce", "authorization nonce is all zeros; use NewNonce")
	}
	return nil
}

// NonceHex writes a nonce as the wire does: 0x and 64 lower-case hex
// digits. It is how nonces are shown, logged and compared as text.
func NonceHex(n [32]byte) string { return "0x" + hex.EncodeToString(n[:]) }

// NewNonce draws the 32-byte EIP-3009 nonce: the one source of nonces. The
// token burns (from, nonce) on settlement, so a repeated nonce would make a
// later payment fail; 256 random bits make that impossible in practice.
func NewNonce() ([32]byte, error) {
	var n [32]byte
	if _, err := rand.Read(n[:]); err != nil {
		return n, errors.New("x402: reading a random nonce: " + err.Error())
	}
	if n == ([32]byte{}) {
		// Only a broken random source yields this, and Check refuses it.
		return n, errors.New("x402: the random source returned a zero nonce")
	}
	return n, nil
}
