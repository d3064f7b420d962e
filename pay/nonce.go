package pay

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// newNonce draws the 32-byte EIP-3009 nonce. The token burns (from, nonce)
// on settlement, so a repeated nonce would make a later payment fail; 256
// random bits make that impossible in practice.
func newNonce() ([32]byte, error) {
	var n [32]byte
	if _, err := rand.Read(n[:]); err != nil {
		return n, fmt.Errorf("pay: drawing a nonce: %w", err)
	}
	return n, nil
}

// newPaymentID draws a payment-identifier id: "pay_" and 32 random hex
// digits.
func newPaymentID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("pay: drawing a payment id: %w", err)
	}
	return "pay_" + hex.EncodeToString(b[:]), nil
}
