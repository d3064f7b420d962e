package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
)

// change describes one state transition for move.
type change struct {
	to        State
	from      []State
	ownerOnly bool // only the instance that reserved the record may do it
	renew     bool // extend the lease from now
	endLease  bool // end the lease now: the owner is done with the record
	tx        *string
	settle    *string
	note      *string
}

// move applies c to record id in its own durable transaction.
func (l *Ledger) move(ctx context.Context, id int64, c change) error {
	return l.write(ctx, func(ctx context.Context, tx *wtx) error {
		return l.moveTx(ctx, tx, id, c)
	})
}

func (l *Ledger) moveTx(ctx context.Context, tx *wtx, id int64, c change) error {
	var state, owner string
	err := tx.QueryRowContext(ctx, qStateOwner, id).Scan(&state, &owner)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %d", ErrNotFound, id)
	}
	if err != nil {
		return fmt.Errorf("ledger: record %d: %w", id, err)
	}
	if !slices.Contains(c.from, State(state)) {
		return &TransitionError{ID: id, From: State(state), To: c.to}
	}
	if c.ownerOnly && owner != l.owner {
		return fmt.Errorf("%w: record %d is held by %s, not %s", ErrNotOwner, id, owner, l.owner)
	}
	now := l.now()
	var lease any // nil: unchanged
	switch {
	case c.renew:
		lease = now.Add(l.lease).UnixNano()
	case c.endLease:
		lease = now.UnixNano()
	}
	if _, err := tx.ExecContext(ctx, qMove, string(c.to), now.UnixNano(), lease,
		nullable(c.tx), nullable(c.settle), nullable(c.note), id); err != nil {
		return fmt.Errorf("ledger: record %d: %w", id, err)
	}
	return nil
}

// nullable turns an absent field into SQL NULL, which qMove reads as
// "leave unchanged".
func nullable(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

// MarkSent records that the signed authorization is about to leave the
// process. Call it, and wait for it, before the request goes out: once it
// returns, no crash can make the ledger forget the payment may have been
// made. Only the instance that reserved the record may mark it, and only
// while it is Reserved: if Reconcile has already failed it (the lease ran
// out), MarkSent refuses and the request must not be sent. It renews the
// lease.
func (l *Ledger) MarkSent(ctx context.Context, id int64) error {
	return l.move(ctx, id, change{to: Sent, from: []State{Reserved}, ownerOnly: true, renew: true})
}

// Settle records a successful payment: tx is the settlement transaction
// hash (may be empty if the server did not give one) and settlement the
// raw settlement JSON, cut to 8 KiB.
func (l *Ledger) Settle(ctx context.Context, id int64, tx string, settlement []byte) error {
	return l.settle(ctx, id, tx, settlement, false)
}

// settle is Settle; delivered also records, in the same transaction, that
// the resource came with the payment (see Payload).
func (l *Ledger) settle(ctx context.Context, id int64, tx string, settlement []byte, delivered bool) error {
	fn, err := l.settleOp(id, tx, settlement, delivered)
	if err != nil {
		return err
	}
	return l.write(ctx, fn)
}

// settleOp is the write of settle, checked.
func (l *Ledger) settleOp(id int64, tx string, settlement []byte, delivered bool) (func(context.Context, *wtx) error, error) {
	if !validTx(tx) {
		return nil, invalid("transaction id must be at most %d printable ASCII bytes", maxTx)
	}
	s := cleanText(string(settlement), maxSettlement)
	return func(ctx context.Context, wtx *wtx) error {
		if err := l.moveTx(ctx, wtx, id, change{to: Settled, from: []State{Sent, Unknown}, tx: &tx, settle: &s}); err != nil {
			return err
		}
		if !delivered {
			return nil
		}
		_, err := wtx.ExecContext(ctx, qDelivered, id)
		return err
	}, nil
}

// MarkUnknown records that a sent payment's outcome is ambiguous (timeout,
// unreadable answer, a 402 after paying). It stays counted as spent. tx is
// a transaction hash the server named without confirming the settlement
// (a failed settlement can carry one), or empty; note says why.
//
// It is the owner's last word on the record, so it ends the lease: from
// now on Reconcile, in any process, resolves the record as soon as the
// chain proves its outcome. A reconciler running on this Ledger
// (ReconcileEvery) is nudged to look at once.
func (l *Ledger) MarkUnknown(ctx context.Context, id int64, tx, note string) error {
	if !validTx(tx) {
		return invalid("transaction id must be at most %d printable ASCII bytes", maxTx)
	}
	n := cleanLine(note, maxNote)
	// From Unknown too: a re-sent payment (see Payload) can end
	// ambiguous again; a transaction already known is kept unless a new
	// one is given.
	c := change{to: Unknown, from: []State{Sent, Unknown}, note: &n, endLease: true}
	if tx != "" {
		c.tx = &tx
	}
	if err := l.move(ctx, id, c); err != nil {
		return err
	}
	l.nudge()
	return nil
}

// Fail records that a reserved payment was abandoned before its signature
// left the process, which returns its amount to the budgets. Only the
// reserving instance knows that, so only it may call Fail. A sent or
// unknown record cannot be failed here: the server may hold the
// authorization, and only Reconcile can prove it unusable.
func (l *Ledger) Fail(ctx context.Context, id int64, note string) error {
	n := cleanLine(note, maxNote)
	return l.move(ctx, id, change{to: Failed, from: []State{Reserved}, ownerOnly: true, note: &n})
}
