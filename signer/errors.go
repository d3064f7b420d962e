package signer

import "errors"

// Sentinel errors. Every error this package returns matches one of them (or
// a policy or fs error) with errors.Is, so callers branch on kinds and never
// on message text. The messages themselves are written for an operator and
// carry the detail (file name, mode, addresses); the sentinels stay short.
var (
	// ErrNoKey: a Signer was used without a key (the zero Signer).
	ErrNoKey = errors.New("signer: no private key loaded")

	// ErrWrongSigner: the authorization to sign is from another address.
	ErrWrongSigner = errors.New("signer: authorization is not from this key's address")

	// ErrBadDomain: the token's EIP-712 domain is incomplete or not encodable.
	ErrBadDomain = errors.New("signer: token has no complete EIP-712 domain")

	// ErrBadAuthorization: the authorization is malformed (missing or
	// out-of-range numbers, zero nonce, empty validity window, zero payee).
	ErrBadAuthorization = errors.New("signer: malformed authorization")

	// ErrBadSignature: a signature does not have the shape x402 requires
	// (65 bytes, v in {27,28}, low s).
	ErrBadSignature = errors.New("signer: malformed signature")

	// ErrInsecureKeyFile: a file holding a secret is accessible by group or
	// others.
	ErrInsecureKeyFile = errors.New("signer: key file is accessible by group or others")

	// ErrBadKey: key material is not a valid secp256k1 private key, or a
	// keystore file is not one go-ethereum can read.
	ErrBadKey = errors.New("signer: invalid private key")

	// ErrWrongPassphrase: the keystore did not decrypt with the passphrase.
	ErrWrongPassphrase = errors.New("signer: wrong keystore passphrase")

	// ErrFileTooLarge: a key, keystore or passphrase file exceeds its size
	// bound, so it is not what the operator meant to point at.
	ErrFileTooLarge = errors.New("signer: file too large")
)

// opError is an operator-facing message that still matches its kind (and,
// when there is one, the underlying cause) with errors.Is and errors.As.
// It exists so messages can read naturally ("signer: key file /k is …; run
// chmod 600 /k") instead of being a sentinel with text glued on.
//
// A cause is attached only when its own text is known not to contain secret
// material (fs errors, policy errors). Errors from hex decoding or from
// go-ethereum's keystore are never attached: their text can quote the input.
type opError struct {
	msg   string
	kinds []error
}

func (e *opError) Error() string   { return e.msg }
func (e *opError) Unwrap() []error { return e.kinds }

func newError(msg string, kinds ...error) error {
	return &opError{msg: msg, kinds: kinds}
}
