package policy

import (
	"errors"
	"math/big"
	"sync/atomic"

	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/x402"
)

// ErrNotPermitted is returned for a permit this package did not issue.
var ErrNotPermitted = errors.New("policy: no permit was issued for this payment")

// ErrPermitUsed is returned when a permit is consumed a second time.
var ErrPermitUsed = errors.New("policy: permit already used")

// Permit is the policy engine's permission to sign one authorization: the
// only value the signer accepts. ("Approval" is the human's word, for a
// payment above the approval threshold; a permit is what every payment
// needs, approved by a human or not.)
//
// Only Policy.Approve issues one, and only for an authorization whose
// payment the ledger has reserved: a permit carries that reservation. Its
// state is shared by pointer, so a copy of a Permit is the same permit:
// consuming either consumes both. The zero value permits nothing.
type Permit struct{ st *permitState }

type permitState struct {
	used        atomic.Bool
	token       tokens.Token
	auth        x402.Authorization
	reservation ledger.Reservation
}

// Token is the registry token the permit is for (its EIP-712 domain).
func (p *Permit) Token() tokens.Token { return p.st.token }

// Authorization returns a copy of the permitted authorization.
func (p *Permit) Authorization() x402.Authorization {
	return copyAuthorization(p.st.auth)
}

// ReservationID is the ledger record the permit was issued for.
func (p *Permit) ReservationID() int64 { return p.st.reservation.ID() }

// Consume marks the permit used. It fails for a permit this package did not
// issue, one without a ledger reservation, and for every call after the
// first, so each permit yields at most one signature.
func (p *Permit) Consume() error {
	if p == nil || p.st == nil {
		return ErrNotPermitted
	}
	if p.st.reservation.ID() == 0 {
		return ledger.ErrNoReservation
	}
	if !p.st.used.CompareAndSwap(false, true) {
		return ErrPermitUsed
	}
	return nil
}

func copyAuthorization(a x402.Authorization) x402.Authorization {
	c := a
	c.Value = new(big.Int).Set(a.Value)
	c.ValidAfter = new(big.Int).Set(a.ValidAfter)
	c.ValidBefore = new(big.Int).Set(a.ValidBefore)
	return c
}
