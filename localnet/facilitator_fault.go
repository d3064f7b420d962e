package localnet

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// Faults let a test make the facilitator misbehave the way real ones do
// under load — a settlement whose answer comes late or never, a refusal, a
// transfer broadcast but not yet confirmed — while the chain underneath
// stays real: whatever the answer says, balances and authorizationState say
// what actually happened.

// reasonSettlementPending is the errorReason of a settlement whose
// transaction was broadcast but not seen mined. The outcome is unknown, not
// failed: the answer carries the transaction hash to reconcile by.
const reasonSettlementPending = "settlement_pending"

// MaxFaultStall bounds Fault.Before and Fault.After, so a forgotten fault
// cannot hang a test. A stall also ends when the network closes.
const MaxFaultStall = 2 * time.Minute

// maxPendingSettlements and maxBroadcasts bound what the facilitator keeps
// about its transactions; a long-running devnet settles without end.
const (
	maxPendingSettlements = 10_000
	maxBroadcasts         = 10_000
)

// Fault is a misbehaviour of the facilitator's POST /settle. The zero value
// is no fault. The steps run in order: wait Before, then answer Reason
// (without touching the chain) or settle (Pending: only broadcast), then
// wait After, then answer. /verify and /supported are never affected.
type Fault struct {
	// Before delays the settlement itself: "stall, then settle". The
	// settlement still happens when the caller has given up meanwhile, as
	// it would on a facilitator that had already accepted the request.
	Before time.Duration
	// After delays the answer once the settlement is done (mined, or
	// broadcast with Pending): "settle, then stall". A caller that gives up
	// meanwhile has paid without hearing about it.
	After time.Duration
	// Reason, when set, answers {"success":false,"errorReason":Reason,
	// "transaction":""} with Message as errorMessage, and neither verifies
	// nor sends anything: the authorization stays unused.
	Reason, Message string
	// Pending verifies the payment, broadcasts the transfer and answers
	// before it is mined: {"success":false,"errorReason":
	// "settlement_pending","transaction":"0x<hash>"}. The transaction stays
	// in the pool until a block is asked for (Chain.WaitMined, or any other
	// settlement). A later /settle of the same signed payment, once the
	// fault no longer applies, waits for that transaction and answers its
	// outcome instead of sending another; while the fault still applies it
	// answers settlement_pending with the same hash again.
	Pending bool
	// Times is how many /settle requests the fault applies to, counted from
	// SetFault; 0 means every request until ClearFault.
	Times int
}

func (ft Fault) validate() error {
	switch {
	case ft.Before < 0 || ft.After < 0:
		return fmt.Errorf("localnet: fault stalls must not be negative (before %s, after %s)", ft.Before, ft.After)
	case ft.Before > MaxFaultStall || ft.After > MaxFaultStall:
		return fmt.Errorf("localnet: fault stalls are capped at %s (before %s, after %s)", MaxFaultStall, ft.Before, ft.After)
	case ft.Times < 0:
		return fmt.Errorf("localnet: fault Times %d is negative", ft.Times)
	case ft.Reason != "" && ft.Pending:
		return fmt.Errorf("localnet: a fault either refuses (Reason %q) or broadcasts (Pending), not both", ft.Reason)
	case ft.Reason == "" && ft.Message != "":
		return fmt.Errorf("localnet: fault Message %q without a Reason", ft.Message)
	}
	return nil
}

// SetFault makes the facilitator's next ft.Times settlements (every one
// when Times is 0) misbehave as ft says, replacing any fault already set.
// It panics on an invalid fault (a negative or over-long stall, Reason with
// Pending): a fault is test code, not input. A request takes its fault when
// it arrives, so SetFault and ClearFault do not change requests under way.
func (f *Facilitator) SetFault(ft Fault) {
	if err := ft.validate(); err != nil {
		panic(err)
	}
	f.faultMu.Lock()
	defer f.faultMu.Unlock()
	f.fault, f.faultLeft = ft, ft.Times
	f.faultSet = true
}

// ClearFault removes the fault, if any.
func (f *Facilitator) ClearFault() {
	f.faultMu.Lock()
	defer f.faultMu.Unlock()
	f.fault, f.faultLeft, f.faultSet = Fault{}, 0, false
}

// takeFault returns the fault that applies to the /settle request arriving
// now, counting it against Times.
func (f *Facilitator) takeFault() Fault {
	f.faultMu.Lock()
	defer f.faultMu.Unlock()
	if !f.faultSet {
		return Fault{}
	}
	ft := f.fault
	if f.faultLeft > 0 {
		f.faultLeft--
		if f.faultLeft == 0 {
			f.fault, f.faultSet = Fault{}, false
		}
	}
	return ft
}

// stall waits d, or less if the facilitator is stopping.
func (f *Facilitator) stall(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-f.stopping:
	}
}

// stopStalls ends every stall under way and shortens later ones to nothing,
// so closing a network never waits on a fault.
func (f *Facilitator) stopStalls() {
	f.stopOnce.Do(func() { close(f.stopping) })
}

// refuseByFault answers a Reason fault, naming the payer and network as far
// as the request says, without verifying anything.
func refuseByFault(req *facilitatorRequest, ft Fault) settleResponse {
	sr := settleResponse{ErrorReason: ft.Reason, ErrorMessage: ft.Message}
	var reqs struct {
		Network string `json:"network"`
	}
	if json.Unmarshal(req.PaymentRequirements, &reqs) == nil {
		sr.Network = reqs.Network
	}
	var pp paymentPayloadWire
	if decodeStrict(req.PaymentPayload, &pp) == nil {
		if a, _, err := parseExactPayload(pp.Payload); err == nil {
			sr.Payer = a.From.Hex()
		}
	}
	return sr
}

// --- broadcasts and pending settlements ---------------------------------

// Broadcast is one settlement transaction the facilitator sent.
type Broadcast struct {
	// Payer and Nonce identify the authorization it settles.
	Payer common.Address
	Nonce [32]byte
	// Tx is the transaction's hash; its receipt (Chain.Client) says whether
	// it was mined and succeeded.
	Tx common.Hash
}

// Broadcasts returns the settlement transactions the facilitator has sent,
// oldest first (at most the latest 10000): every transfer it submitted,
// whether it was then mined, failed, or is still pending. "Exactly one
// settlement on chain" is one Broadcast for the authorization, a successful
// receipt, and authorizationState true.
func (f *Facilitator) Broadcasts() []Broadcast {
	f.txMu.Lock()
	defer f.txMu.Unlock()
	return append([]Broadcast(nil), f.broadcasts...)
}

func (f *Facilitator) recordBroadcast(a Authorization, tx common.Hash) {
	f.txMu.Lock()
	defer f.txMu.Unlock()
	if len(f.broadcasts) == maxBroadcasts {
		f.broadcasts = append(f.broadcasts[:0], f.broadcasts[1:]...)
	}
	f.broadcasts = append(f.broadcasts, Broadcast{Payer: a.From, Nonce: a.Nonce, Tx: tx})
}

// pendingSettlement is a transfer the facilitator broadcast and answered as
// settlement_pending: the signed authorization and its transaction.
type pendingSettlement struct {
	auth Authorization
	sig  []byte
	tx   common.Hash
}

// same reports whether a and sig are the authorization that was broadcast:
// the signature covers every field, so equal signatures over equal fields
// are the same payment.
func (p *pendingSettlement) same(a Authorization, sig []byte) bool {
	return p.auth.From == a.From && p.auth.To == a.To && p.auth.Nonce == a.Nonce &&
		p.auth.Value.Cmp(a.Value) == 0 && p.auth.ValidAfter.Cmp(a.ValidAfter) == 0 &&
		p.auth.ValidBefore.Cmp(a.ValidBefore) == 0 && string(p.sig) == string(sig)
}

func (f *Facilitator) setPending(p *pendingSettlement) {
	f.txMu.Lock()
	defer f.txMu.Unlock()
	if len(f.pending) >= maxPendingSettlements {
		// Forgetting one only costs a reconciliation: a resend is then
		// verified again, and the token refuses a second transfer.
		for id := range f.pending {
			delete(f.pending, id)
			break
		}
	}
	f.pending[authorizationID{from: p.auth.From, nonce: p.auth.Nonce}] = p
}

func (f *Facilitator) pendingFor(id authorizationID) *pendingSettlement {
	f.txMu.Lock()
	defer f.txMu.Unlock()
	return f.pending[id]
}

func (f *Facilitator) clearPending(id authorizationID) {
	f.txMu.Lock()
	defer f.txMu.Unlock()
	delete(f.pending, id)
}

// pendingAnswer is the settlement_pending answer for a broadcast transfer.
func pendingAnswer(tx common.Hash, network, payer, msg string) settleResponse {
	return settleResponse{
		ErrorReason: reasonSettlementPending, ErrorMessage: msg,
		Transaction: tx.Hex(), Network: network, Payer: payer,
	}
}

// reconcile answers a /settle of a payment already broadcast and answered
// as pending: it waits for that transaction rather than sending another,
// like the reference facilitators' pending-settlement store; stillPending
// (a Pending fault) answers pending again without waiting. The caller holds
// the authorization's slot.
func (f *Facilitator) reconcile(ctx context.Context, req *facilitatorRequest, p *pendingSettlement, stillPending bool) settleResponse {
	var reqs struct {
		Network string `json:"network"`
	}
	_ = json.Unmarshal(req.PaymentRequirements, &reqs)
	payer := p.auth.From.Hex()
	if stillPending {
		return pendingAnswer(p.tx, reqs.Network, payer, "transaction broadcast; not yet confirmed")
	}
	receipt, err := f.chain.WaitMined(ctx, p.tx)
	if err != nil {
		return pendingAnswer(p.tx, reqs.Network, payer, "transaction broadcast; waiting for it failed: "+err.Error())
	}
	id := authorizationID{from: p.auth.From, nonce: p.auth.Nonce}
	f.clearPending(id)
	if receipt.Status != types.ReceiptStatusSuccessful {
		return settleResponse{
			ErrorReason: reasonTransactionFailed, ErrorMessage: fmt.Sprintf("%v: %s in block %d", ErrTxReverted, p.tx.Hex(), receipt.BlockNumber),
			Transaction: p.tx.Hex(), Network: reqs.Network, Payer: payer,
		}
	}
	f.settled.Add(1)
	return settleResponse{Success: true, Transaction: p.tx.Hex(), Network: reqs.Network, Payer: payer}
}
