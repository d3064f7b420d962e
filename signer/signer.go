package signer

import (
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/x402-mcp/x402-mcp/policy"
	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/x402"
)

// signatureLength is the size of an x402 EIP-3009 signature: r ‖ s ‖ v.
const signatureLength = 65

// secp256k1 group order and half of it: a signature with s above half the
// order is the malleated twin of a valid one, which EIP-2 and the token's
// ecrecover path reject.
var (
	secp256k1N     = crypto.S256().Params().N
	secp256k1HalfN = new(big.Int).Rsh(secp256k1N, 1)
)

// Signer signs EIP-3009 authorizations that the policy approved. It is safe
// for concurrent use.
type Signer struct {
	key *Key
}

// New returns a Signer for k. It panics on a nil or zero Key, which can only
// be a wiring bug: every loader returns a key or an error.
func New(k *Key) *Signer {
	if !k.valid() {
		panic("signer: New called without a key")
	}
	return &Signer{key: k}
}

// Address is the payer address, the "from" of every authorization this
// Signer will sign.
func (s *Signer) Address() common.Address {
	if s == nil {
		return common.Address{}
	}
	return s.key.Address()
}

// String shows the address only, like Key.
func (s *Signer) String() string {
	if s == nil {
		return "signer.Signer(<none>)"
	}
	return "signer.Signer(" + s.Address().Hex() + ")"
}

// Sign consumes the policy's permit and signs exactly its authorization
// under its token's EIP-712 domain. It returns 65 bytes r ‖ s ‖ v with v in
// {27, 28}.
//
// The permit is consumed before anything else is looked at, so an
// unissued, unreserved or reused permit never reaches the key, and a
// permit that fails a later check is spent anyway (fail closed: the caller
// must get a new permit rather than retry with altered inputs).
func (s *Signer) Sign(a *policy.Permit) ([]byte, error) {
	if s == nil || !s.key.valid() {
		return nil, ErrNoKey
	}
	if err := a.Consume(); err != nil {
		return nil, newError(fmt.Sprintf("signer: refusing to sign: %v", err), err)
	}
	// Read the permit once; both copies are ours from here on.
	return s.sign(a.Token(), a.Authorization())
}

// sign is Sign after the permit gate: checks, digest, signature. It is
// split out only so the benchmark can measure the signing path without
// issuing permits; it must have no other caller.
func (s *Signer) sign(tok tokens.Token, auth x402.Authorization) ([]byte, error) {
	if err := checkAuthorization(s.key.Address(), auth); err != nil {
		return nil, err
	}
	digest, err := Digest(tok, auth)
	if err != nil {
		return nil, err
	}
	return signDigest(s.key, digest)
}

// checkAuthorization holds the refusals that are about what is being
// signed rather than how it is encoded: the rules every authorization obeys
// (x402.Authorization.Check, the one copy of them, which the policy applies
// too) and the one only the signer knows, that it is from this key. The
// signer repeats them because it is the last line before the key, and a
// mistake in a caller should not become a signature.
func checkAuthorization(self common.Address, a x402.Authorization) error {
	if a.From != self {
		return newError(fmt.Sprintf("signer: authorization is from %s but this key is %s", a.From.Hex(), self.Hex()), ErrWrongSigner)
	}
	if err := a.Check(); err != nil {
		return newError("signer: "+err.Error(), ErrBadAuthorization)
	}
	return nil
}

// signDigest is the only place the private key is used. It is separate
// from Sign so tests can check exact signature bytes against the vectors;
// nothing but Sign (through sign) may call it, which is what keeps "no
// signature without a permit" true.
func signDigest(k *Key, digest [32]byte) ([]byte, error) {
	sig, err := crypto.Sign(digest[:], k.s.priv)
	if err != nil {
		// crypto.Sign fails only on malformed input (digest length, key
		// range), and its messages carry no key material.
		return nil, fmt.Errorf("signer: signing failed: %w", err)
	}
	// go-ethereum returns the recovery id 0/1; Ethereum contracts and x402
	// verifiers expect the legacy 27/28.
	sig[64] += 27
	return sig, nil
}

// Recover returns the address that signed a under t's domain. It accepts
// only the shape Sign produces: 65 bytes, v in {27, 28}, 0 < r, s < N and
// s in the lower half (a high-s signature is a malleated copy that
// verifiers reject, so accepting it here would hide a bug).
func Recover(t tokens.Token, a x402.Authorization, sig []byte) (common.Address, error) {
	if len(sig) != signatureLength {
		return common.Address{}, newError(fmt.Sprintf("signer: signature is %d bytes, want %d (r ‖ s ‖ v)", len(sig), signatureLength), ErrBadSignature)
	}
	v := sig[64]
	if v != 27 && v != 28 {
		return common.Address{}, newError(fmt.Sprintf("signer: signature v is %d, want 27 or 28", v), ErrBadSignature)
	}
	r, sv := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:64])
	if r.Sign() == 0 || r.Cmp(secp256k1N) >= 0 || sv.Sign() == 0 || sv.Cmp(secp256k1N) >= 0 {
		return common.Address{}, newError("signer: signature r or s is out of range", ErrBadSignature)
	}
	if sv.Cmp(secp256k1HalfN) > 0 {
		return common.Address{}, newError("signer: signature has a high s value (malleable form); verifiers reject it", ErrBadSignature)
	}
	digest, err := Digest(t, a)
	if err != nil {
		return common.Address{}, err
	}
	// Work on a copy: the caller's slice keeps its 27/28.
	var raw [signatureLength]byte
	copy(raw[:], sig)
	raw[64] -= 27
	pub, err := crypto.SigToPub(digest[:], raw[:])
	if err != nil {
		return common.Address{}, newError(fmt.Sprintf("signer: signature does not recover to a public key: %v", err), ErrBadSignature)
	}
	return crypto.PubkeyToAddress(*pub), nil
}
