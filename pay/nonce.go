package pay

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// newPaymentID draws a payment-identifier id: "pay_" and 32 random hex
// digits.
func newPaymentID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("pay: drawing a payment id: %w", err)
	}
	return "pay_" + hex.EncodeToString(b[:]), nil
}
