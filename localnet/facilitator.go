package localnet

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

// The facilitator is written from the protocol description, not from our
// client packages (x402, pay, signer): it is what our client is tested
// against, so sharing code with the client would let one bug hide on both
// sides of the wire.

const (
	// V1NetworkName is the x402 v1 short name the facilitator gives the local
	// chain. Our client resolves v1 names through a fixed table that does
	// not know it, so the paid API writes the CAIP-2 id in v1 options instead
	// (some v1 servers do); the facilitator accepts both spellings.
	V1NetworkName = "localnet"

	// maxRequestBytes bounds facilitator request and response bodies. A
	// verify request carries one payload and one option, well under 4 KiB.
	maxRequestBytes = 64 << 10
	// maxJSONDepth bounds nesting; bazaar metadata nests a handful of levels.
	maxJSONDepth = 32
	// minValidSeconds is how long an authorization must stay valid after
	// verification: the reference facilitators demand six seconds so that a
	// settlement submitted now still lands before validBefore.
	minValidSeconds = 6
	// settleTimeout bounds one settlement. It is detached from the HTTP
	// request: once a transfer is submitted, abandoning the wait would leave
	// a payment that happened without anyone being told.
	settleTimeout = 60 * time.Second

	discoveryDefaultLimit = 20
	discoveryMaxLimit     = 100
)

// Reasons the facilitator gives in invalidReason / errorReason. They are the
// strings current reference facilitators return (x402-notes §6), so a client
// sees the same text here as on a public network.
const (
	reasonInvalidVersion       = "invalid_x402_version"
	reasonInvalidRequirements  = "invalid_payment_requirements"
	reasonScheme               = "invalid_exact_evm_scheme"
	reasonMissingDomain        = "invalid_exact_evm_missing_eip712_domain"
	reasonNetworkMismatch      = "invalid_exact_evm_network_mismatch"
	reasonRequirementsMismatch = "invalid_exact_evm_requirements_mismatch"
	reasonAssetMismatch        = "invalid_exact_evm_asset_mismatch"
	reasonPayload              = "invalid_exact_evm_payload"
	reasonSignature            = "invalid_exact_evm_signature"
	reasonRecipient            = "invalid_exact_evm_recipient_mismatch"
	reasonValidBefore          = "invalid_exact_evm_payload_authorization_valid_before"
	reasonValidAfter           = "invalid_exact_evm_payload_authorization_valid_after"
	reasonValueMismatch        = "invalid_exact_evm_payload_authorization_value_mismatch"
	reasonNonceUsed            = "invalid_exact_evm_nonce_already_used"
	reasonInsufficientBalance  = "invalid_exact_evm_insufficient_balance"
	reasonSimulationFailed     = "invalid_exact_evm_transaction_simulation_failed"
	reasonTransactionFailed    = "invalid_exact_evm_transaction_failed"
	reasonUnexpectedVerify     = "unexpected_verify_error"
	reasonUnexpectedSettle     = "unexpected_settle_error"
)

// Facilitator verifies and settles x402 "exact" payments (EIP-3009
// transferWithAuthorization) on a Chain, speaking the facilitator HTTP API of
// x402 v1 and v2, and serves a bazaar discovery listing. It is an
// http.Handler; all methods are safe for concurrent use.
type Facilitator struct {
	chain *Chain
	key   *ecdsa.PrivateKey
	addr  common.Address
	mux   *http.ServeMux

	settled atomic.Int64

	// inflight serialises settlements of the same authorization, so a
	// payload posted twice at once costs one transaction and one revert-free
	// answer ("nonce already used") instead of two transactions racing.
	inflightMu sync.Mutex
	inflight   map[authorizationID]chan struct{}

	discoveryMu sync.Mutex
	discovery   []DiscoveryItem
}

type authorizationID struct {
	from  common.Address
	nonce [32]byte
}

// DiscoveryItem is one resource in the facilitator's bazaar listing.
type DiscoveryItem struct {
	// Resource is the absolute URL of the paid resource.
	Resource string
	// Type is the resource kind; "http" when empty.
	Type string
	// X402Version is the protocol version the resource speaks (1 or 2).
	X402Version int
	// Accepts are the payment options exactly as the resource offers them.
	Accepts []json.RawMessage
	// LastUpdated is when the listing was last refreshed; the time of
	// Register when zero.
	LastUpdated time.Time
	// Metadata describes how to call the resource (bazaar input/output).
	Metadata json.RawMessage
}

// NewFacilitator returns a facilitator settling on chain. key pays the gas of
// settlements and must hold native coin.
func NewFacilitator(chain *Chain, key *ecdsa.PrivateKey) *Facilitator {
	f := &Facilitator{
		chain:    chain,
		key:      key,
		addr:     crypto.PubkeyToAddress(key.PublicKey),
		mux:      http.NewServeMux(),
		inflight: make(map[authorizationID]chan struct{}),
	}
	f.mux.HandleFunc("GET /supported", f.handleSupported)
	f.mux.HandleFunc("POST /verify", f.handleVerify)
	f.mux.HandleFunc("POST /settle", f.handleSettle)
	f.mux.HandleFunc("GET /discovery/resources", f.handleDiscovery)
	return f
}

// ServeHTTP implements http.Handler.
func (f *Facilitator) ServeHTTP(w http.ResponseWriter, r *http.Request) { f.mux.ServeHTTP(w, r) }

// Address returns the account that submits settlements (the "signer" the
// facilitator advertises).
func (f *Facilitator) Address() common.Address { return f.addr }

// Settled returns how many settlements succeeded on chain.
func (f *Facilitator) Settled() int { return int(f.settled.Load()) }

// Register adds resources to the discovery listing. An item whose Resource is
// already listed replaces the old entry in place, the way a re-crawled
// resource is refreshed rather than duplicated.
func (f *Facilitator) Register(items ...DiscoveryItem) {
	now := time.Now().UTC()
	f.discoveryMu.Lock()
	defer f.discoveryMu.Unlock()
	for _, it := range items {
		if it.Type == "" {
			it.Type = "http"
		}
		if it.LastUpdated.IsZero() {
			it.LastUpdated = now
		}
		it.Accepts = append([]json.RawMessage(nil), it.Accepts...)
		replaced := false
		for i := range f.discovery {
			if f.discovery[i].Resource == it.Resource {
				f.discovery[i], replaced = it, true
				break
			}
		}
		if !replaced {
			f.discovery = append(f.discovery, it)
		}
	}
}

// --- wire types ---------------------------------------------------------

type facilitatorRequest struct {
	X402Version         int             `json:"x402Version"`
	PaymentPayload      json.RawMessage `json:"paymentPayload"`
	PaymentRequirements json.RawMessage `json:"paymentRequirements"`
}

type verifyResponse struct {
	IsValid        bool   `json:"isValid"`
	InvalidReason  string `json:"invalidReason,omitempty"`
	InvalidMessage string `json:"invalidMessage,omitempty"`
	Payer          string `json:"payer,omitempty"`
}

// settleResponse is both the facilitator's /settle answer and the JSON of
// the settlement header. Field order follows the specification's example so
// a success encodes to the same bytes as the reference.
type settleResponse struct {
	Success      bool   `json:"success"`
	ErrorReason  string `json:"errorReason,omitempty"`
	ErrorMessage string `json:"errorMessage,omitempty"`
	Transaction  string `json:"transaction"`
	Network      string `json:"network"`
	Payer        string `json:"payer,omitempty"`
}

// paymentPayloadWire covers both versions: v1 carries scheme and network at
// the top, v2 carries them inside accepted.
type paymentPayloadWire struct {
	X402Version int             `json:"x402Version"`
	Scheme      string          `json:"scheme"`
	Network     string          `json:"network"`
	Accepted    json.RawMessage `json:"accepted"`
	Payload     json.RawMessage `json:"payload"`
}

// requirementsWire holds the fields of an option (v1 or v2) the checks need;
// other fields only matter to the v2 deep-equality check, which compares
// the raw JSON.
type requirementsWire struct {
	Scheme            string          `json:"scheme"`
	Network           string          `json:"network"`
	Amount            *string         `json:"amount"`
	MaxAmountRequired *string         `json:"maxAmountRequired"`
	Asset             string          `json:"asset"`
	PayTo             string          `json:"payTo"`
	Extra             json.RawMessage `json:"extra"`
}

// exactPayloadWire is the scheme payload. Every number is a string: JSON
// numbers lose precision above 2^53 in JavaScript, so the protocol writes
// uint256 values as decimal text, and a number here is refused rather than
// guessed at.
type exactPayloadWire struct {
	Signature     string `json:"signature"`
	Authorization struct {
		From        string `json:"from"`
		To          string `json:"to"`
		Value       string `json:"value"`
		ValidAfter  string `json:"validAfter"`
		ValidBefore string `json:"validBefore"`
		Nonce       string `json:"nonce"`
	} `json:"authorization"`
}

type supportedKind struct {
	X402Version int    `json:"x402Version"`
	Scheme      string `json:"scheme"`
	Network     string `json:"network"`
}

type supportedResponse struct {
	Kinds      []supportedKind     `json:"kinds"`
	Extensions []string            `json:"extensions"`
	Signers    map[string][]string `json:"signers"`
}

type discoveryItemWire struct {
	Resource    string            `json:"resource"`
	Type        string            `json:"type"`
	X402Version int               `json:"x402Version"`
	Accepts     []json.RawMessage `json:"accepts"`
	LastUpdated string            `json:"lastUpdated"`
	Metadata    json.RawMessage   `json:"metadata"`
}

type discoveryResponse struct {
	X402Version int                 `json:"x402Version"`
	Items       []discoveryItemWire `json:"items"`
	Pagination  struct {
		Limit  int `json:"limit"`
		Offset int `json:"offset"`
		Total  int `json:"total"`
	} `json:"pagination"`
}

type errorResponse struct {
	Error string `json:"error"`
}

// --- handlers -----------------------------------------------------------

func (f *Facilitator) handleSupported(w http.ResponseWriter, _ *http.Request) {
	network := f.chain.Network()
	writeJSON(w, http.StatusOK, supportedResponse{
		Kinds: []supportedKind{
			{X402Version: 1, Scheme: "exact", Network: V1NetworkName},
			// Listed too because the paid API's v1 options use the CAIP-2
			// id; a client checking support for what it was offered finds it.
			{X402Version: 1, Scheme: "exact", Network: network},
			{X402Version: 2, Scheme: "exact", Network: network},
		},
		Extensions: []string{"bazaar"},
		Signers:    map[string][]string{"eip155:*": {f.addr.Hex()}},
	})
}

func (f *Facilitator) handleVerify(w http.ResponseWriter, r *http.Request) {
	req, ok := readFacilitatorRequest(w, r)
	if !ok {
		return
	}
	c, err := f.verify(r.Context(), req)
	if err != nil {
		writeJSON(w, http.StatusOK, verifyResponse{InvalidReason: reasonUnexpectedVerify, InvalidMessage: err.Error(), Payer: c.payer})
		return
	}
	if c.reason != "" {
		writeJSON(w, http.StatusOK, verifyResponse{InvalidReason: c.reason, InvalidMessage: c.message, Payer: c.payer})
		return
	}
	writeJSON(w, http.StatusOK, verifyResponse{IsValid: true, Payer: c.payer})
}

func (f *Facilitator) handleSettle(w http.ResponseWriter, r *http.Request) {
	req, ok := readFacilitatorRequest(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), settleTimeout)
	defer cancel()
	writeJSON(w, http.StatusOK, f.settle(ctx, req))
}

func (f *Facilitator) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := queryInt(q.Get("limit"), discoveryDefaultLimit)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: "limit: " + err.Error()})
		return
	}
	offset, err := queryInt(q.Get("offset"), 0)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: "offset: " + err.Error()})
		return
	}
	if limit == 0 {
		limit = discoveryDefaultLimit
	}
	limit = min(limit, discoveryMaxLimit)
	typ := q.Get("type")

	f.discoveryMu.Lock()
	var matched []DiscoveryItem
	for _, it := range f.discovery {
		if typ == "" || it.Type == typ {
			matched = append(matched, it)
		}
	}
	f.discoveryMu.Unlock()

	resp := discoveryResponse{X402Version: 2, Items: []discoveryItemWire{}}
	resp.Pagination.Limit, resp.Pagination.Offset, resp.Pagination.Total = limit, offset, len(matched)
	if offset < len(matched) {
		for _, it := range matched[offset:min(len(matched), offset+limit)] {
			meta := it.Metadata
			if len(meta) == 0 {
				meta = json.RawMessage(`{}`)
			}
			resp.Items = append(resp.Items, discoveryItemWire{
				Resource:    it.Resource,
				Type:        it.Type,
				X402Version: it.X402Version,
				Accepts:     it.Accepts,
				LastUpdated: it.LastUpdated.UTC().Format(time.RFC3339),
				Metadata:    meta,
			})
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// queryInt parses a non-negative decimal query parameter; empty means def.
func queryInt(s string, def int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a non-negative integer", s)
	}
	return n, nil
}

// readFacilitatorRequest reads and strictly decodes a verify/settle body,
// answering the error itself when it cannot.
func readFacilitatorRequest(w http.ResponseWriter, r *http.Request) (*facilitatorRequest, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeJSON(w, http.StatusRequestEntityTooLarge, errorResponse{Error: fmt.Sprintf("request body exceeds %d bytes", maxRequestBytes)})
			return nil, false
		}
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: "reading request body: " + err.Error()})
		return nil, false
	}
	var req facilitatorRequest
	if err := decodeStrict(body, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: "invalid request: " + err.Error()})
		return nil, false
	}
	if !isJSONObject(req.PaymentPayload) || !isJSONObject(req.PaymentRequirements) {
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: "invalid request: paymentPayload and paymentRequirements must be objects"})
		return nil, false
	}
	return &req, true
}

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

// --- settlement ---------------------------------------------------------

// settle re-verifies the payment and, if it is still valid, submits the
// transfer from the facilitator's account and waits for the receipt.
func (f *Facilitator) settle(ctx context.Context, req *facilitatorRequest) settleResponse {
	// Hold the authorization's slot before verifying, so a concurrent
	// settlement of the same authorization verifies after this one finished
	// and sees the nonce as used.
	var pp paymentPayloadWire
	if decodeStrict(req.PaymentPayload, &pp) == nil {
		if a, _, err := parseExactPayload(pp.Payload); err == nil {
			release, err := f.acquire(ctx, authorizationID{from: a.From, nonce: a.Nonce})
			if err != nil {
				return settleResponse{ErrorReason: reasonUnexpectedSettle, ErrorMessage: err.Error(), Payer: a.From.Hex()}
			}
			defer release()
		}
	}

	c, err := f.verify(ctx, req)
	fail := func(reason, msg, tx string) settleResponse {
		return settleResponse{ErrorReason: reason, ErrorMessage: msg, Transaction: tx, Network: c.network, Payer: c.payer}
	}
	if err != nil {
		return fail(reasonUnexpectedSettle, err.Error(), "")
	}
	if c.reason != "" {
		return fail(c.reason, c.message, "")
	}

	receipt, err := f.chain.TransferWithAuthorization(ctx, f.key, c.auth, c.sig)
	if err != nil {
		switch {
		case errors.Is(err, ErrTxReverted) && receipt != nil:
			// The transaction was mined and failed: say which one, so the
			// payer can look it up.
			return fail(reasonTransactionFailed, err.Error(), receipt.TxHash.Hex())
		default:
			var revert *RevertError
			if errors.As(err, &revert) {
				reason, msg, infraErr := f.diagnose(ctx, c.auth, err)
				if infraErr == nil {
					return fail(reason, msg, "")
				}
			}
			return fail(reasonUnexpectedSettle, err.Error(), "")
		}
	}
	f.settled.Add(1)
	return settleResponse{Success: true, Transaction: receipt.TxHash.Hex(), Network: c.network, Payer: c.payer}
}

// acquire waits until no other settlement of id is running and claims it.
func (f *Facilitator) acquire(ctx context.Context, id authorizationID) (release func(), err error) {
	for {
		f.inflightMu.Lock()
		busy, ok := f.inflight[id]
		if !ok {
			done := make(chan struct{})
			f.inflight[id] = done
			f.inflightMu.Unlock()
			return func() {
				f.inflightMu.Lock()
				delete(f.inflight, id)
				f.inflightMu.Unlock()
				close(done)
			}, nil
		}
		f.inflightMu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
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

// --- JSON helpers shared with the paid API ------------------------------

// decodeStrict decodes one JSON object into v after checkJSON accepted it.
func decodeStrict(data []byte, v any) error {
	if err := checkJSON(data); err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// checkJSON accepts exactly one JSON object: valid UTF-8, nested at most
// maxJSONDepth deep, no data after it, and no object repeating a key.
// Repeated keys are compared ignoring case because encoding/json binds keys
// case-insensitively: {"value":"1","Value":"2"} would otherwise be read as 2
// here and as 1 by a JavaScript client, and two parties would disagree about
// what was signed.
func checkJSON(data []byte) error {
	if !utf8.Valid(data) {
		return errors.New("not valid UTF-8")
	}
	if !isJSONObject(data) {
		return errors.New("not a JSON object")
	}
	type frame struct {
		object    bool
		expectKey bool
		keys      map[string]bool
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("invalid JSON: %w", err)
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].expectKey {
			top := stack[n-1]
			if key, isKey := tok.(string); isKey {
				folded := strings.ToLower(key)
				if top.keys[folded] {
					return fmt.Errorf("duplicate key %q", key)
				}
				top.keys[folded] = true
				top.expectKey = false
				continue
			}
			// Otherwise the token is the closing '}'; handled below.
		}
		complete := true
		if d, isDelim := tok.(json.Delim); isDelim {
			switch d {
			case '{', '[':
				if len(stack) == maxJSONDepth {
					return fmt.Errorf("nested deeper than %d levels", maxJSONDepth)
				}
				stack = append(stack, &frame{object: d == '{', expectKey: d == '{', keys: map[string]bool{}})
				complete = false
			case '}', ']':
				stack = stack[:len(stack)-1]
			}
		}
		if !complete {
			continue
		}
		if len(stack) == 0 {
			break
		}
		if top := stack[len(stack)-1]; top.object {
			top.expectKey = true
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("invalid JSON: data after the object")
	}
	return nil
}

// isJSONObject reports whether data starts (after whitespace) with '{'.
func isJSONObject(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}

// jsonEqual compares two JSON documents by value, the way the reference
// servers' deep equality does: key order and whitespace do not matter, and
// numbers compare as IEEE doubles (JavaScript's numbers), so 300 equals
// 300.0 but "300" does not equal 300.
func jsonEqual(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// marshalJSON encodes compactly without HTML escaping: resource URLs carry
// '&' in their query, and the reference implementations (JSON.stringify)
// write it as is.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := marshalJSON(v)
	if err != nil {
		// Only our own types reach here; failing to encode them is a bug.
		http.Error(w, "encoding response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}
