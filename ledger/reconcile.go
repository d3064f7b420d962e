package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// Chain answers what Reconcile asks about an Unknown record's
// authorization. Every method reports ok=false only when there is no way to
// ask for that network (no RPC endpoint is configured); a failed attempt to
// ask is an error. *wallet.Reader implements it.
type Chain interface {
	// AuthorizationState says whether (payer, nonce) is used on the token
	// contract at asset (EIP-3009 authorizationState) as of the newest
	// block.
	AuthorizationState(ctx context.Context, network string, asset, payer common.Address, nonce [32]byte) (used, ok bool, err error)
	// FinalizedAuthorizationState says the same as of the newest finalized
	// block, and gives that block's timestamp in unix seconds. A node that
	// does not report finality answers with an error.
	FinalizedAuthorizationState(ctx context.Context, network string, asset, payer common.Address, nonce [32]byte) (used bool, blockTime int64, ok bool, err error)
	// TransactionUsedAuthorization says whether transaction tx succeeded
	// and used (payer, nonce) on asset, from its receipt. A transaction
	// the node does not know, or has not mined, did not use it (yet).
	TransactionUsedAuthorization(ctx context.Context, network, tx string, asset, payer common.Address, nonce [32]byte) (used, ok bool, err error)
}

// AuthorizationChecker says whether (payer, nonce) was used on the token
// contract (EIP-3009 authorizationState). ok is false when there is no way
// to ask, i.e. no RPC endpoint is configured for that network.
//
// As a Chain it answers only AuthorizationState: it knows neither finality
// nor receipts, so Reconcile falls back to its clock rules.
type AuthorizationChecker func(ctx context.Context, network string, asset, payer common.Address, nonce [32]byte) (used bool, ok bool, err error)

// AuthorizationState calls f.
func (f AuthorizationChecker) AuthorizationState(ctx context.Context, network string, asset, payer common.Address, nonce [32]byte) (bool, bool, error) {
	return f(ctx, network, asset, payer, nonce)
}

// FinalizedAuthorizationState is not known to an AuthorizationChecker.
func (f AuthorizationChecker) FinalizedAuthorizationState(ctx context.Context, network string, asset, payer common.Address, nonce [32]byte) (bool, int64, bool, error) {
	return false, 0, false, nil
}

// TransactionUsedAuthorization is not known to an AuthorizationChecker.
func (f AuthorizationChecker) TransactionUsedAuthorization(ctx context.Context, network, tx string, asset, payer common.Address, nonce [32]byte) (bool, bool, error) {
	return false, false, nil
}

// ExpiryMargin is how long after validBefore, by this machine's clock, an
// authorization must be seen unused before Reconcile declares it failed.
// The chain's clock, the RPC node's view of it and ours may differ; until
// the margin has passed, a block could still include the transfer. (A
// finalized block past validBefore proves the same without any margin.)
const ExpiryMargin = 10 * time.Minute

// NoRPCMargin is how long after validBefore, by this machine's clock,
// Reconcile releases an Unknown record that it has no way to check: no RPC
// endpoint is configured for its network.
//
// The token contract refuses an authorization once a block's timestamp has
// reached validBefore, so after that nobody can settle it; what is left is
// this machine's clock running ahead of the chain's, and reorganisations,
// which an hour covers many times over. What cannot be known without an
// RPC endpoint is whether it was settled before validBefore: if it was,
// releasing it under-counts that payment. This is the one release that is
// not proven; configure an RPC endpoint for the network to avoid it.
const NoRPCMargin = 1 * time.Hour

// ReconcileReport says what Reconcile changed.
type ReconcileReport struct {
	Changes []Change
	// Unknown is how many records with an expired lease remain Unknown
	// (and counted as spent) after this run.
	Unknown int
	// CheckErrors are the chain's errors, one per record it failed on.
	// Those records stay Unknown; a later run retries them.
	CheckErrors []error
}

// Change is one record's transition made by Reconcile.
type Change struct {
	ID       int64
	From, To State
	Note     string
	// Unchecked marks a release by time alone (no RPC endpoint; see
	// NoRPCMargin): the one change that the chain did not prove.
	Unchecked bool
}

// Reconcile resolves records whose lease has expired, i.e. whose owner died,
// gave up, or marked them Unknown (MarkUnknown ends the lease: the owner has
// nothing more to do with the record):
//
//   - Reserved → Failed: MarkSent had not committed, so the signature never
//     left the process.
//   - Sent → Unknown: the request may have reached the server.
//   - Unknown → Settled when the chain proves the authorization used: the
//     record's transaction succeeded and used it (its receipt), or
//     authorizationState says used.
//   - Unknown → Failed when the chain proves it can never be used: unused
//     as of a finalized block whose timestamp is at or past validBefore; or
//     unused as of the newest block once validBefore is ExpiryMargin past.
//   - Unknown → Failed, unproven, when there is no RPC endpoint for its
//     network and validBefore is NoRPCMargin past (see NoRPCMargin).
//   - Otherwise it stays Unknown and counted: without chain (nil) nothing
//     Unknown is resolved, nor when asking the chain fails.
//
// Records whose lease has not expired are never touched. The chain is
// asked outside any transaction, and every change is a conditional UPDATE
// in a write transaction: of several reconcilers (goroutines or
// processes) running at once, one applies each change and the others find
// it done; a change is reported only by the run that applied it. The
// chain's errors are reported, not returned.
func (l *Ledger) Reconcile(ctx context.Context, chain Chain) (ReconcileReport, error) {
	var rep ReconcileReport
	l.caughtUp(ctx)
	changes, err := l.expireLeases(ctx)
	if err != nil {
		return rep, fmt.Errorf("ledger: reconcile: %w", err)
	}
	rep.Changes = append(rep.Changes, changes...)

	// Ask the chain about ambiguous records. The network calls run outside
	// any transaction, so another process may resolve a record meanwhile;
	// the update below applies only if it is still Unknown.
	unknown, err := l.query(ctx, `SELECT `+recordColumns+` FROM records
		WHERE state = 'unknown' AND lease_until <= ? ORDER BY id`, l.now().UnixNano())
	if err != nil {
		return rep, fmt.Errorf("ledger: reconcile: %w", err)
	}
	for _, r := range unknown {
		if chain == nil {
			rep.Unknown++
			continue
		}
		c, err := l.judge(ctx, chain, r)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return rep, ctxErr
		}
		if err != nil {
			rep.CheckErrors = append(rep.CheckErrors, fmt.Errorf("ledger: record %d: %w", r.ID, err))
		}
		if c == nil {
			rep.Unknown++
			continue
		}
		applied, err := l.resolve(ctx, *c)
		if err != nil {
			return rep, fmt.Errorf("ledger: reconcile: %w", err)
		}
		if applied {
			rep.Changes = append(rep.Changes, *c)
		}
	}
	return rep, nil
}

// expireLeases moves the records in flight whose lease has expired:
// Reserved → Failed, Sent → Unknown. It needs nothing but the lease, so it
// runs in one transaction; a cheap read first spares the write lock (and a
// periodic reconciler the cost of a transaction) when nothing is due.
func (l *Ledger) expireLeases(ctx context.Context) ([]Change, error) {
	var due bool
	if err := l.rdb.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM records
		WHERE state IN ('reserved', 'sent') AND lease_until <= ?)`, l.now().UnixNano()).Scan(&due); err != nil {
		return nil, err
	}
	if !due {
		return nil, nil
	}
	var changes []Change
	err := l.write(ctx, func(ctx context.Context, tx *wtx) error {
		changes = changes[:0]
		now := l.now().UnixNano()
		rows, err := tx.QueryContext(ctx, qExpired, now)
		if err != nil {
			return err
		}
		var found []Change
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
			found = append(found, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, c := range found {
			// Conditional like qResolve: the write transaction already
			// keeps other writers out, and this keeps the rule local.
			res, err := tx.ExecContext(ctx, qExpire, string(c.To), c.Note, now, c.ID, string(c.From), now)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 1 {
				changes = append(changes, c)
			}
		}
		return nil
	})
	return changes, err
}

// judge asks the chain about one Unknown record and returns the change the
// rules in Reconcile allow, or nil to leave it Unknown. err is the chain's,
// for the report.
func (l *Ledger) judge(ctx context.Context, chain Chain, r Record) (*Change, error) {
	change := func(to State, why string) *Change {
		return &Change{ID: r.ID, From: Unknown, To: to, Note: joinNotes(why, r.Note)}
	}
	// A receipt names the transaction that moved the money. Failing to
	// read it is no reason to stop: authorizationState answers too.
	if r.Transaction != "" {
		if used, ok, err := chain.TransactionUsedAuthorization(ctx, r.Network, r.Transaction, r.Asset, r.Payer, r.Nonce); err == nil && ok && used {
			return change(Settled, "settled: its transaction's receipt shows the authorization used"), nil
		}
	}
	// Take the time before asking: "unused" proves the authorization dead
	// only if the chain had already passed validBefore then.
	asked := l.now()
	used, ok, err := chain.AuthorizationState(ctx, r.Network, r.Asset, r.Payer, r.Nonce)
	switch {
	case err != nil:
		return nil, fmt.Errorf("authorizationState: %w", err)
	case !ok:
		if asked.Unix() >= r.ValidBefore+int64(NoRPCMargin/time.Second) {
			c := change(Failed, fmt.Sprintf("released unchecked: no RPC endpoint for %s, and validBefore passed over %v ago, so it can no longer be settled (it may have been before)", r.Network, NoRPCMargin))
			c.Unchecked = true
			return c, nil
		}
		return nil, nil
	case used:
		return change(Settled, "settled per authorizationState"), nil
	}
	// Unused now. Our clock says whether validBefore has passed; only then
	// is a finalized block past it worth asking for. A node without
	// finality leaves the clock rule below.
	if asked.Unix() >= r.ValidBefore {
		used, at, ok, err := chain.FinalizedAuthorizationState(ctx, r.Network, r.Asset, r.Payer, r.Nonce)
		if err == nil && ok && !used && at >= r.ValidBefore {
			return change(Failed, "unused per authorizationState as of a finalized block at or past validBefore: can never be used"), nil
		}
	}
	if asked.Unix() >= r.ValidBefore+int64(ExpiryMargin/time.Second) {
		return change(Failed, "unused per authorizationState and expired: can never be used"), nil
	}
	return nil, nil // unused, but it still could be
}

// resolve applies one Unknown record's change, if the record is still
// Unknown: another reconciler may have resolved it since it was read.
func (l *Ledger) resolve(ctx context.Context, c Change) (bool, error) {
	var applied bool
	err := l.write(ctx, func(ctx context.Context, tx *wtx) error {
		now := l.now().UnixNano()
		res, err := tx.ExecContext(ctx, qResolve, string(c.To), c.Note, now, c.ID, now)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		applied = n == 1
		return err
	})
	return applied, err
}

// joinNotes puts how a record was resolved before why it was Unknown, so
// its history keeps both.
func joinNotes(resolution, earlier string) string {
	if earlier == "" {
		return resolution
	}
	return cleanLine(resolution+"; was unknown: "+earlier, maxNote)
}
