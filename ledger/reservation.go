package ledger

import (
	"errors"
	"fmt"
	"math/big"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/common"
)

// ErrNoReservation is returned by Reservation.Claim for a reservation the
// ledger did not make: the zero value, or one read back rather than made.
var ErrNoReservation = errors.New("ledger: no reservation was made for this payment")

// ErrReservationClaimed is returned by Reservation.Claim after the first
// claim: one reservation backs at most one signature.
var ErrReservationClaimed = errors.New("ledger: reservation already claimed")

// Reservation is the ledger's proof that one payment was reserved: recorded
// durably and counted against every budget, in one committed transaction.
// Only Reserve makes one (Record.Reservation); the zero value, and every
// Record read back with Get, Recent or Pending, prove nothing. Copies share
// one state, so a reservation can be claimed once however it is passed
// around.
type Reservation struct{ h *hold }

type hold struct {
	id      int64
	payer   common.Address
	payTo   common.Address
	nonce   [32]byte
	amount  *big.Int
	claimed atomic.Bool
}

// ID is the reserved record's ID; 0 for a reservation the ledger did not
// make.
func (r Reservation) ID() int64 {
	if r.h == nil {
		return 0
	}
	return r.h.id
}

// Claim checks that the reservation covers exactly this authorization,
// payer, payee, amount and nonce, and marks it claimed. It fails for a
// reservation the ledger did not make, for other terms, and for every call
// after the first successful one.
func (r Reservation) Claim(payer, payTo common.Address, amount *big.Int, nonce [32]byte) error {
	h := r.h
	if h == nil {
		return ErrNoReservation
	}
	if h.payer != payer || h.payTo != payTo || amount == nil || h.amount.Cmp(amount) != 0 || h.nonce != nonce {
		return fmt.Errorf("%w: record %d was reserved for other terms", ErrNoReservation, h.id)
	}
	if !h.claimed.CompareAndSwap(false, true) {
		return fmt.Errorf("%w: record %d", ErrReservationClaimed, h.id)
	}
	return nil
}

// holdOf makes the proof for rec, which the caller has just recorded.
func holdOf(rec Record) Reservation {
	return Reservation{&hold{id: rec.ID, payer: rec.Payer, payTo: rec.PayTo, nonce: rec.Nonce, amount: new(big.Int).Set(rec.Amount)}}
}

// Reservation is the proof that r was reserved, when r is what Reserve
// returned; otherwise the zero Reservation.
func (r Record) Reservation() Reservation { return Reservation{r.held} }
