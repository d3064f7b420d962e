package localnet

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

// --- verification -------------------------------------------------------

// checked is the outcome of verify. reason is empty for a valid payment;
// the other fields are filled as far as the checks got.
type checked struct {
	reason, message string
	payer           string
	network         string // as written in the requirements
	auth            Authorization
	sig             []byte
}

func (c checked) fail(reason, format string, args ...any) checked {
	c.reason, c.message = reason, fmt.Sprintf(format, args...)
	return c
}

// verify runs the checks of x402-notes §6 in the reference order, ending
// with an on-chain simulation. A returned error means the facilitator could
// not decide (the chain failed), not that the payment is invalid.
func (f *Facilitator) verify(ctx context.Context, req *facilitatorRequest) (checked, error) {
	var c checked

	var reqs requirementsWire
	if err := decodeStrict(req.PaymentRequirements, &reqs); err != nil {
		return c.fail(reasonInvalidRequirements, "paymentRequirements: %v", err), nil
	}
	c.network = reqs.Network

	var pp paymentPayloadWire
	if err := decodeStrict(req.PaymentPayload, &pp); err != nil {
		return c.fail(reasonPayload, "paymentPayload: %v", err), nil
	}
	// The scheme payload is parsed up front only so that every later answer
	// can name the payer; a malformed one is reported at the signature step,
	// where the reference facilitators first need it.
	auth, sig, payloadErr := parseExactPayload(pp.Payload)
	if payloadErr == nil {
		c.payer = auth.From.Hex()
	}

	if req.X402Version != 1 && req.X402Version != 2 {
		return c.fail(reasonInvalidVersion, "x402Version %d is not supported", req.X402Version), nil
	}
	if pp.X402Version != req.X402Version {
		return c.fail(reasonInvalidVersion, "paymentPayload.x402Version %d does not match request x402Version %d", pp.X402Version, req.X402Version), nil
	}

	// v2 names the chosen option in the payload; v1 only repeats its scheme
	// and network.
	var accepted requirementsWire
	if req.X402Version == 2 {
		if !isJSONObject(pp.Accepted) {
			return c.fail(reasonPayload, "paymentPayload.accepted is missing"), nil
		}
		if err := decodeStrict(pp.Accepted, &accepted); err != nil {
			return c.fail(reasonPayload, "paymentPayload.accepted: %v", err), nil
		}
	} else {
		accepted.Scheme, accepted.Network = pp.Scheme, pp.Network
	}

	// 1. Scheme.
	if accepted.Scheme != "exact" || reqs.Scheme != "exact" {
		return c.fail(reasonScheme, "scheme %q / %q: only exact is supported", accepted.Scheme, reqs.Scheme), nil
	}

	// 2. The token's EIP-712 domain, without which the signature cannot be
	// checked.
	name, version, ok := eip712Domain(reqs.Extra)
	if !ok {
		return c.fail(reasonMissingDomain, "paymentRequirements.extra must carry the token's EIP-712 name and version"), nil
	}

	// 3. Network (and, v2, the whole accepted option), then the asset.
	if !f.isOurNetwork(reqs.Network, req.X402Version) || !f.isOurNetwork(accepted.Network, req.X402Version) {
		return c.fail(reasonNetworkMismatch, "network %q / %q is not %s", accepted.Network, reqs.Network, f.chain.Network()), nil
	}
	if req.X402Version == 2 && !jsonEqual(pp.Accepted, req.PaymentRequirements) {
		return c.fail(reasonRequirementsMismatch, "paymentPayload.accepted differs from paymentRequirements"), nil
	}
	if !common.IsHexAddress(reqs.Asset) || common.HexToAddress(reqs.Asset) != f.chain.TokenAddress() {
		return c.fail(reasonAssetMismatch, "asset %q is not the token %s", reqs.Asset, f.chain.TokenAddress()), nil
	}
	amountText := reqs.Amount
	if req.X402Version == 1 {
		amountText = reqs.MaxAmountRequired
	}
	if amountText == nil {
		return c.fail(reasonInvalidRequirements, "the required amount is missing"), nil
	}
	required, ok := parseUint256(*amountText)
	if !ok {
		return c.fail(reasonInvalidRequirements, "required amount %q is not a decimal integer string", *amountText), nil
	}
	if !isHexAddress(reqs.PayTo) {
		return c.fail(reasonInvalidRequirements, "payTo %q is not an address", reqs.PayTo), nil
	}

	// 4. Signature, under the domain the requirements name.
	if payloadErr != nil {
		return c.fail(reasonPayload, "payload: %v", payloadErr), nil
	}
	c.auth, c.sig = auth, sig
	if err := f.checkSignature(name, version, auth, sig); err != nil {
		return c.fail(reasonSignature, "%v", err), nil
	}

	// 5. Recipient. Addresses compare as bytes, so checksum case is
	// irrelevant.
	if auth.To != common.HexToAddress(reqs.PayTo) {
		return c.fail(reasonRecipient, "authorization.to %s is not payTo %s", auth.To.Hex(), reqs.PayTo), nil
	}

	// 6-7. Validity window. "Now" is the later of wall-clock time and the
	// chain head: the local chain may run ahead of the clock (up to its
	// MaxClockDrift), and the transfer will execute at a block time no
	// earlier than either.
	now, err := f.now(ctx)
	if err != nil {
		return c, err
	}
	if auth.ValidBefore.Cmp(new(big.Int).SetUint64(now+minValidSeconds)) < 0 {
		return c.fail(reasonValidBefore, "validBefore %s is earlier than now+%d (%d)", auth.ValidBefore, minValidSeconds, now+minValidSeconds), nil
	}
	if auth.ValidAfter.Cmp(new(big.Int).SetUint64(now)) > 0 {
		return c.fail(reasonValidAfter, "validAfter %s is later than now (%d)", auth.ValidAfter, now), nil
	}

	// 8. Exact value: the exact scheme pays the price, not "at least" it.
	if auth.Value.Cmp(required) != 0 {
		return c.fail(reasonValueMismatch, "authorization value %s is not the required %s", auth.Value, required), nil
	}

	// 9. On-chain simulation from the account that will submit it.
	if err := f.chain.SimulateTransferWithAuthorization(ctx, f.addr, auth, sig); err != nil {
		reason, msg, infraErr := f.diagnose(ctx, auth, err)
		if infraErr != nil {
			return c, infraErr
		}
		return c.fail(reason, "%s", msg), nil
	}
	return c, nil
}

func (f *Facilitator) isOurNetwork(network string, version int) bool {
	if network == f.chain.Network() {
		return true
	}
	return version == 1 && network == V1NetworkName
}

func (f *Facilitator) now(ctx context.Context) (uint64, error) {
	head, err := f.chain.Now(ctx)
	if err != nil {
		return 0, fmt.Errorf("reading chain time: %w", err)
	}
	return max(head, uint64(time.Now().Unix())), nil
}

// checkSignature recomputes the EIP-712 digest of the authorization and
// requires the 65-byte signature to recover to authorization.from. The
// checks the token contract makes (v in {27,28}, low s) are made here too, so
// a signature the token would refuse is reported as a signature problem
// rather than as a failed simulation.
func (f *Facilitator) checkSignature(name, version string, a Authorization, sig []byte) error {
	if len(sig) != crypto.SignatureLength {
		return fmt.Errorf("signature is %d bytes; an EOA signature is %d", len(sig), crypto.SignatureLength)
	}
	v := sig[64]
	if v != 27 && v != 28 {
		return fmt.Errorf("signature v is %d; want 27 or 28", v)
	}
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:64])
	if !crypto.ValidateSignatureValues(v-27, r, s, true) {
		return errors.New("signature r/s out of range (s must be in the lower half)")
	}
	digest, err := authorizationDigest(name, version, f.chain.ChainID(), f.chain.TokenAddress(), a)
	if err != nil {
		return err
	}
	rsv := append(append([]byte(nil), sig[:64]...), v-27)
	pub, err := crypto.SigToPub(digest, rsv)
	if err != nil {
		return fmt.Errorf("recovering signer: %w", err)
	}
	if signer := crypto.PubkeyToAddress(*pub); signer != a.From {
		return fmt.Errorf("signature recovers to %s, not authorization.from %s", signer.Hex(), a.From.Hex())
	}
	return nil
}

// authorizationDigest is the EIP-712 hash of a TransferWithAuthorization
// message under the token's domain.
func authorizationDigest(name, version string, chainID *big.Int, token common.Address, a Authorization) ([]byte, error) {
	td := apitypes.TypedData{
		Types: apitypes.Types{
			"EIP712Domain": {
				{Name: "name", Type: "string"},
				{Name: "version", Type: "string"},
				{Name: "chainId", Type: "uint256"},
				{Name: "verifyingContract", Type: "address"},
			},
			"TransferWithAuthorization": {
				{Name: "from", Type: "address"},
				{Name: "to", Type: "address"},
				{Name: "value", Type: "uint256"},
				{Name: "validAfter", Type: "uint256"},
				{Name: "validBefore", Type: "uint256"},
				{Name: "nonce", Type: "bytes32"},
			},
		},
		PrimaryType: "TransferWithAuthorization",
		Domain: apitypes.TypedDataDomain{
			Name:              name,
			Version:           version,
			ChainId:           (*math.HexOrDecimal256)(new(big.Int).Set(chainID)),
			VerifyingContract: token.Hex(),
		},
		Message: apitypes.TypedDataMessage{
			"from":        a.From.Hex(),
			"to":          a.To.Hex(),
			"value":       new(big.Int).Set(a.Value),
			"validAfter":  new(big.Int).Set(a.ValidAfter),
			"validBefore": new(big.Int).Set(a.ValidBefore),
			"nonce":       a.Nonce[:],
		},
	}
	digest, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		return nil, fmt.Errorf("hashing typed data: %w", err)
	}
	return digest, nil
}

// diagnose names why the token rejected a transfer by reading the state the
// rejection depends on, as the reference facilitators do, rather than by
// matching the contract's revert text. Errors that are not reverts are
// returned as infrastructure failures.
func (f *Facilitator) diagnose(ctx context.Context, a Authorization, simErr error) (reason, msg string, err error) {
	var revert *RevertError
	if !errors.As(simErr, &revert) {
		return "", "", fmt.Errorf("simulating transfer: %w", simErr)
	}
	used, err := f.chain.AuthorizationState(ctx, a.From, a.Nonce)
	if err != nil {
		return "", "", fmt.Errorf("reading authorization state: %w", err)
	}
	if used {
		return reasonNonceUsed, "authorization nonce already used: " + revert.Error(), nil
	}
	balance, err := f.chain.BalanceOf(ctx, a.From)
	if err != nil {
		return "", "", fmt.Errorf("reading balance: %w", err)
	}
	if balance.Cmp(a.Value) < 0 {
		return reasonInsufficientBalance, fmt.Sprintf("balance %s is below %s: %s", balance, a.Value, revert.Error()), nil
	}
	return reasonSimulationFailed, revert.Error(), nil
}

// --- parsing helpers ----------------------------------------------------

// parseExactPayload decodes {signature, authorization} strictly: addresses
// and the nonce as 0x-hex of the right length, amounts and times as
// canonical decimal strings within uint256.
func parseExactPayload(raw json.RawMessage) (Authorization, []byte, error) {
	var a Authorization
	if !isJSONObject(raw) {
		return a, nil, errors.New("payload must be an object with signature and authorization")
	}
	var p exactPayloadWire
	if err := decodeStrict(raw, &p); err != nil {
		return a, nil, err
	}
	auth := p.Authorization
	if !isHexAddress(auth.From) {
		return a, nil, fmt.Errorf("authorization.from %q is not a 0x address", auth.From)
	}
	if !isHexAddress(auth.To) {
		return a, nil, fmt.Errorf("authorization.to %q is not a 0x address", auth.To)
	}
	a.From, a.To = common.HexToAddress(auth.From), common.HexToAddress(auth.To)
	for _, n := range []struct {
		name, text string
		dst        **big.Int
	}{
		{"value", auth.Value, &a.Value},
		{"validAfter", auth.ValidAfter, &a.ValidAfter},
		{"validBefore", auth.ValidBefore, &a.ValidBefore},
	} {
		v, ok := parseUint256(n.text)
		if !ok {
			return a, nil, fmt.Errorf("authorization.%s %q is not a decimal integer string", n.name, n.text)
		}
		*n.dst = v
	}
	nonce, err := decodeHex0x(auth.Nonce, 32)
	if err != nil {
		return a, nil, fmt.Errorf("authorization.nonce: %w", err)
	}
	copy(a.Nonce[:], nonce)
	sig, err := decodeHex0x(p.Signature, -1)
	if err != nil {
		return a, nil, fmt.Errorf("signature: %w", err)
	}
	return a, sig, nil
}

// parseUint256 accepts only canonical decimal: digits, no sign, no leading
// zeros, at most 2^256-1. Anything looser ("0x10", "1e6", " 5", "007") is
// refused, so the amount the facilitator checks is the one every other
// parser reads too.
func parseUint256(s string) (*big.Int, bool) {
	if s == "" || len(s) > 78 || (len(s) > 1 && s[0] == '0') {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return nil, false
		}
	}
	v, ok := new(big.Int).SetString(s, 10)
	if !ok || v.BitLen() > 256 {
		return nil, false
	}
	return v, true
}

// isHexAddress requires the 0x prefix that common.IsHexAddress makes
// optional.
func isHexAddress(s string) bool {
	return strings.HasPrefix(s, "0x") && common.IsHexAddress(s)
}

// decodeHex0x decodes 0x-prefixed hex of exactly n bytes (any length when n
// is negative).
func decodeHex0x(s string, n int) ([]byte, error) {
	if !strings.HasPrefix(s, "0x") {
		return nil, fmt.Errorf("%q is not 0x-prefixed hex", s)
	}
	b, err := hex.DecodeString(s[2:])
	if err != nil {
		return nil, fmt.Errorf("%q is not hex", s)
	}
	if n >= 0 && len(b) != n {
		return nil, fmt.Errorf("%d bytes; want %d", len(b), n)
	}
	return b, nil
}

// eip712Domain reads extra.name and extra.version; both must be non-empty
// strings.
func eip712Domain(extra json.RawMessage) (name, version string, ok bool) {
	if !isJSONObject(extra) {
		return "", "", false
	}
	var d map[string]any
	if json.Unmarshal(extra, &d) != nil {
		return "", "", false
	}
	name, _ = d["name"].(string)
	version, _ = d["version"].(string)
	return name, version, name != "" && version != ""
}
