// Package signer holds the payer's private key and signs EIP-3009
// TransferWithAuthorization messages for x402 "exact" payments. It is the
// only code in x402-mcp that touches key material.
//
// Invariants:
//   - No signature without a permit. The one exported way to use the key
//     is Signer.Sign, which takes a *policy.Permit and consumes it before
//     reading anything else; only the policy package can issue a permit
//     that Consume accepts, only for a payment the ledger has reserved, and
//     each one (copies included: they share its state) yields at most one
//     signature. A refused or failed Sign still spends the permit (fail
//     closed).
//   - Exactly what was permitted is signed: the permit's authorization
//     under the permit's token domain, read once. The signer adds nothing
//     and takes nothing from elsewhere; it refuses an authorization that is
//     not from its own address, a zero payee or nonce, missing numbers, an
//     empty validity window and a token with an incomplete domain.
//   - The key signs only EIP-712 TransferWithAuthorization digests that this
//     package computes. There is no function that signs caller-supplied
//     bytes, so the key cannot be used as a general signing oracle.
//   - Signatures are 65 bytes r ‖ s ‖ v, low s, v in {27, 28}; Recover
//     accepts nothing else.
//   - The digest equals go-ethereum's apitypes.TypedDataAndHash for the same
//     typed data (checked on random inputs by the tests) and the vectors in
//     testdata/eip3009.json, which come from an independent implementation.
//   - Key material never leaves the package in readable form: a Key renders
//     as its address under fmt (every verb), slog, JSON and text marshalling;
//     no error, log or panic message contains a key or passphrase, and
//     errors from hex decoding or go-ethereum's keystore are replaced by our
//     own messages rather than wrapped, because theirs may quote the input.
//     Raw key bytes read from files or the environment are zeroed after use
//     where Go allows it (strings and go-ethereum internals cannot be).
//   - Files are read with a size bound. A hex key file or passphrase file
//     whose mode grants anything to group or others is refused with a
//     chmod 600 hint; WriteHexFile creates 0600 files and never overwrites.
package signer
