package ledger

import (
	"encoding/hex"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
)

// Records and approvals carry addresses and nonces typed (common.Address,
// [32]byte); their columns hold text, in the form pay wrote before they
// were typed: an address as EIP-55 hex (common.Address.Hex), a nonce as 0x
// and 64 lower-case hex digits. Every comparison of them in SQL (the
// unique (payer, nonce) index, the in-flight lookup, an approval's terms,
// CopyTo's duplicate check) lower-cases both sides, so a row written in
// another case still matches.
//
// These four functions are the only conversions: addressText and
// nonceText for every value bound to such a column, parseAddress and
// parseNonce for every value read from one. A common.Address must never be
// bound directly: its driver.Valuer gives 20 raw bytes, not this text.

func addressText(a common.Address) string { return a.Hex() }

func nonceText(n [32]byte) string { return "0x" + hex.EncodeToString(n[:]) }

// parseAddress reads a stored address. Text that is not 0x and 40 hex
// digits (a row edited by hand) is an error, never the zero address: a
// record must not quietly name another payer or token.
func parseAddress(s string) (common.Address, error) {
	if !reAddress().MatchString(s) {
		return common.Address{}, fmt.Errorf("bad address %q", clip(s, 80))
	}
	return common.HexToAddress(s), nil
}

// parseNonce reads a stored nonce: 0x and 64 hex digits, or an error.
func parseNonce(s string) ([32]byte, error) {
	var n [32]byte
	if !reNonce().MatchString(s) {
		return n, fmt.Errorf("bad nonce %q", clip(s, 80))
	}
	if _, err := hex.Decode(n[:], []byte(s[2:])); err != nil {
		return [32]byte{}, fmt.Errorf("bad nonce %q", clip(s, 80))
	}
	return n, nil
}
