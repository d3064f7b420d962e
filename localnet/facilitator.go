package localnet

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
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
	// minValidSeconds is how long an authorization must stay valid after
	// verification: the reference facilitators demand six seconds so that a
	// settlement submitted now still lands before validBefore.
	minValidSeconds = 6
	// settleTimeout bounds one settlement. It is detached from the HTTP
	// request: once a transfer is submitted, abandoning the wait would leave
	// a payment that happened without anyone being told.
	settleTimeout = 60 * time.Second
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

	settled     atomic.Int64
	verifyCalls atomic.Int64
	settleCalls atomic.Int64

	// inflight serialises settlements of the same authorization, so a
	// payload posted twice at once costs one transaction and one revert-free
	// answer ("nonce already used") instead of two transactions racing.
	inflightMu sync.Mutex
	inflight   map[authorizationID]chan struct{}

	discoveryMu sync.Mutex
	discovery   []DiscoveryItem
	discoveryAt map[string]int // Resource -> index in discovery
	noSearch    bool           // /discovery/search answers 404 (see SetSearch)
	searches    []string       // the query of every /discovery/search request

	// The fault a test set (see SetFault); faultLeft counts down Times.
	faultMu   sync.Mutex
	fault     Fault
	faultSet  bool
	faultLeft int
	stopping  chan struct{}
	stopOnce  sync.Once

	// txMu guards what the facilitator remembers of its transactions: all
	// it sent, and those it answered as settlement_pending.
	txMu       sync.Mutex
	broadcasts []Broadcast
	pending    map[authorizationID]*pendingSettlement
}

type authorizationID struct {
	from  common.Address
	nonce [32]byte
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
		stopping: make(chan struct{}),
		pending:  make(map[authorizationID]*pendingSettlement),
	}
	f.mux.HandleFunc("GET /supported", f.handleSupported)
	f.mux.HandleFunc("POST /verify", f.handleVerify)
	f.mux.HandleFunc("POST /settle", f.handleSettle)
	f.mux.HandleFunc("GET /discovery/resources", f.handleDiscovery)
	f.mux.HandleFunc("GET /discovery/search", f.handleSearch)
	return f
}

// ServeHTTP implements http.Handler.
func (f *Facilitator) ServeHTTP(w http.ResponseWriter, r *http.Request) { f.mux.ServeHTTP(w, r) }

// Address returns the account that submits settlements (the "signer" the
// facilitator advertises).
func (f *Facilitator) Address() common.Address { return f.addr }

// Settled returns how many settlements the facilitator saw succeed on
// chain, whether or not its answer reached the caller (a stalled answer
// counts; a settlement_pending one counts once a later /settle saw it mined).
// Broadcasts lists every transaction it sent.
func (f *Facilitator) Settled() int { return int(f.settled.Load()) }

// VerifyCalls and SettleCalls return how many POST /verify and POST /settle
// requests the facilitator received, so a test can tell that a replayed
// response cost no verification and no settlement.
func (f *Facilitator) VerifyCalls() int { return int(f.verifyCalls.Load()) }

// SettleCalls: see VerifyCalls.
func (f *Facilitator) SettleCalls() int { return int(f.settleCalls.Load()) }

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
	f.verifyCalls.Add(1)
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
	f.settleCalls.Add(1)
	req, ok := readFacilitatorRequest(w, r)
	if !ok {
		return
	}
	ft := f.takeFault()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), settleTimeout)
	defer cancel()
	f.stall(ft.Before)
	var answer settleResponse
	if ft.Reason != "" {
		answer = refuseByFault(req, ft)
	} else {
		answer = f.settle(ctx, req, ft.Pending)
	}
	f.stall(ft.After)
	writeJSON(w, http.StatusOK, answer)
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

// --- settlement ---------------------------------------------------------

// settle re-verifies the payment and, if it is still valid, submits the
// transfer from the facilitator's account and waits for the receipt. With
// onlyBroadcast (a Pending fault) it answers settlement_pending as soon as
// the transfer is in the pool.
func (f *Facilitator) settle(ctx context.Context, req *facilitatorRequest, onlyBroadcast bool) settleResponse {
	// Hold the authorization's slot before verifying, so a concurrent
	// settlement of the same authorization verifies after this one finished
	// and sees the nonce as used.
	var pp paymentPayloadWire
	if decodeStrict(req.PaymentPayload, &pp) == nil {
		if a, sig, err := parseExactPayload(pp.Payload); err == nil {
			id := authorizationID{from: a.From, nonce: a.Nonce}
			release, err := f.acquire(ctx, id)
			if err != nil {
				return settleResponse{ErrorReason: reasonUnexpectedSettle, ErrorMessage: err.Error(), Payer: a.From.Hex()}
			}
			defer release()
			// A payment already broadcast and answered as pending is
			// reconciled with its transaction, never sent twice: verifying
			// it again would pass until that transaction is mined.
			if p := f.pendingFor(id); p != nil && p.same(a, sig) {
				return f.reconcile(ctx, req, p, onlyBroadcast)
			}
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

	var sent *common.Hash
	var receipt *types.Receipt
	if onlyBroadcast {
		var tx *types.Transaction
		if tx, err = f.chain.submitTransferWithAuthorization(ctx, f.key, c.auth, c.sig); err == nil {
			h := tx.Hash()
			sent = &h
			f.recordBroadcast(c.auth, h)
		}
	} else {
		receipt, err = f.chain.transferWithAuthorization(ctx, f.key, c.auth, c.sig, func(h common.Hash) {
			sent = &h
			f.recordBroadcast(c.auth, h)
		})
	}
	switch {
	case err == nil && onlyBroadcast:
		f.setPending(&pendingSettlement{auth: c.auth, sig: c.sig, tx: *sent})
		return pendingAnswer(*sent, c.network, c.payer, "transaction broadcast; not yet confirmed")
	case errors.Is(err, ErrTxReverted) && receipt != nil:
		// The transaction was mined and failed: say which one, so the
		// payer can look it up.
		return fail(reasonTransactionFailed, err.Error(), receipt.TxHash.Hex())
	case err != nil && sent != nil:
		// Sent, but not seen mined: the transfer may still happen, so the
		// answer is "pending" with the hash to reconcile by, never a
		// failure that would invite the payer to sign again.
		f.setPending(&pendingSettlement{auth: c.auth, sig: c.sig, tx: *sent})
		return pendingAnswer(*sent, c.network, c.payer, "transaction broadcast; waiting for it failed: "+err.Error())
	case err != nil:
		var revert *RevertError
		if errors.As(err, &revert) {
			reason, msg, infraErr := f.diagnose(ctx, c.auth, err)
			if infraErr == nil {
				return fail(reason, msg, "")
			}
		}
		return fail(reasonUnexpectedSettle, err.Error(), "")
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
