package ledger

import (
	"context"
	"fmt"
	"time"
)

// AuthorizationChecker says whether (payer, nonce) was used on the token
// contract (EIP-3009 authorizationState). ok is false when it cannot tell,
// e.g. no RPC endpoint is configured for that network.
type AuthorizationChecker func(ctx context.Context, network, asset, payer, nonce string) (used bool, ok bool, err error)

// ExpiryMargin is how long after validBefore an authorization must be seen
// unused before Reconcile declares it failed. The chain's clock, the RPC
// node's view of it and ours may differ; until the margin has passed, a
// block could still include the transfer.
const ExpiryMargin = 10 * time.Minute

// ReconcileReport says what Reconcile changed.
type ReconcileReport struct {
	Changes []Change
	// Unknown is how many records with an expired lease remain Unknown
	// (and counted as spent) after this run.
	Unknown int
	// CheckErrors are the checker's errors, one per record it failed on.
	// Those records stay Unknown; a later run retries them.
	CheckErrors []error
}

// Change is one record's transition made by Reconcile.
type Change struct {
	ID       int64
	From, To State
	Note     string
}

// Reconcile resolves records whose lease has expired, i.e. whose owner died
// or gave up:
//
//   - Reserved → Failed: MarkSent had not committed, so the signature never
//     left the process.
//   - Sent → Unknown: the request may have reached the server.
//   - Unknown, with a checker that can tell: used on chain → Settled (no
//     transaction hash; the note says so); unused and validBefore passed by
//     ExpiryMargin → Failed; otherwise it stays Unknown and counted.
//
// Records whose lease has not expired are never touched. check may be nil.
// The checker is called outside any transaction; its errors are reported,
// not returned. Run it at start, and periodically if you like.
func (l *Ledger) Reconcile(ctx context.Context, check AuthorizationChecker) (ReconcileReport, error) {
	var rep ReconcileReport
	// Step 1: the transitions that need nothing but the lease, in one
	// transaction.
	var changes []Change
	err := l.write(ctx, func(ctx context.Context, tx *wtx) error {
		changes = changes[:0]
		now := l.now().UnixNano()
		rows, err := tx.QueryContext(ctx, qExpired, now)
		if err != nil {
			return err
		}
		for rows.Next() {
			var c Change
			var owner string
			if err := rows.Scan(&c.ID, &c.From, &owner); err != nil {
				rows.Close()
				return err
			}
			if c.From == Reserved {
				c.To, c.Note = Failed, "lease expired before it was sent: the signature never left "+owner
			} else {
				c.To, c.Note = Unknown, "lease expired after it was sent by "+owner+": outcome unknown"
			}
			changes = append(changes, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, c := range changes {
			if _, err := tx.ExecContext(ctx, qExpire,
				string(c.To), c.Note, now, c.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("ledger: reconcile: %w", err)
	}
	rep.Changes = append(rep.Changes, changes...)

	// Step 2: ask the chain about ambiguous records. The network calls run
	// outside any transaction, so another process may resolve a record
	// meanwhile; the update below applies only if it is still Unknown.
	unknown, err := l.query(ctx, `SELECT `+recordColumns+` FROM records
		WHERE state = 'unknown' AND lease_until <= ? ORDER BY id`, l.now().UnixNano())
	if err != nil {
		return rep, fmt.Errorf("ledger: reconcile: %w", err)
	}
	for _, r := range unknown {
		if check == nil {
			rep.Unknown++
			continue
		}
		// Take the time before asking: "unused" proves the authorization
		// dead only if the chain had already passed validBefore then.
		asked := l.now()
		used, ok, err := check(ctx, r.Network, r.Asset, r.Payer, r.Nonce)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return rep, ctxErr
		}
		var c Change
		switch {
		case err != nil:
			rep.CheckErrors = append(rep.CheckErrors, fmt.Errorf("ledger: record %d: authorizationState: %w", r.ID, err))
			rep.Unknown++
			continue
		case !ok:
			rep.Unknown++
			continue
		case used:
			c = Change{ID: r.ID, From: Unknown, To: Settled, Note: "settled per authorizationState"}
		case asked.Unix() >= r.ValidBefore+int64(ExpiryMargin/time.Second):
			c = Change{ID: r.ID, From: Unknown, To: Failed, Note: "unused per authorizationState and expired: can never be used"}
		default:
			rep.Unknown++ // unused, but it still could be
			continue
		}
		var applied bool
		err = l.write(ctx, func(ctx context.Context, tx *wtx) error {
			now := l.now().UnixNano()
			res, err := tx.ExecContext(ctx, qResolve, string(c.To), c.Note, now, c.ID, now)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			applied = n == 1
			return err
		})
		if err != nil {
			return rep, fmt.Errorf("ledger: reconcile: %w", err)
		}
		if applied {
			rep.Changes = append(rep.Changes, c)
		}
	}
	return rep, nil
}
