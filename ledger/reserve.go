package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Reserve records r as Reserved if, with it, every limit still holds; the
// check and the insert are one write transaction, so concurrent calls in
// any process can never admit more than the limits allow. It refuses with a
// *BudgetError (naming the first limit, in the given order, that would
// break) and records nothing in that case. A limit on another host than
// r.Host does not constrain r, since r does not add to its sum.
//
// With r.Approval set, the same transaction also consumes that approval
// (see ApprovalUse): if it is not approved, has expired, was used, or is
// bound to other terms, Reserve returns an error matching
// ErrApprovalUnusable and records nothing. A budget refusal leaves the
// approval unused. So an approval pays at most once, across processes.
//
// The caller supplies the payment fields; ID, Created, Updated, State,
// Owner and LeaseUntil are set by the ledger, and the outcome fields
// (Transaction, Settlement, Note) start empty. The returned Record is what
// was stored, and carries the proof of the reservation that the policy
// needs before it lets the signer sign (Record.Reservation).
func (l *Ledger) Reserve(ctx context.Context, r Record, limits []Limit) (Record, error) {
	if l.damage != nil {
		return Record{}, l.damage
	}
	in, err := l.incoming(r, limits, Reserved)
	if err != nil {
		return Record{}, err
	}
	var out Record
	err = l.write(ctx, func(ctx context.Context, tx *wtx) error {
		var err error
		out, err = l.reserve(ctx, tx, in, limits)
		return err
	})
	if err != nil {
		return Record{}, err
	}
	// Committed: from here on the record is counted, so it may back one
	// signature.
	out.held = holdOf(out).h
	return out, nil
}

// incoming checks the caller's fields of a payment about to be recorded
// (and the limits it is held to) and returns the record to insert, in
// state, owned by this process: Reserve's and RecordSent's common start.
func (l *Ledger) incoming(r Record, limits []Limit, state State) (Record, error) {
	if err := validateRecord(&r); err != nil {
		return Record{}, err
	}
	var use *ApprovalUse
	if r.Approval != nil {
		u := *r.Approval // a copy: validateUse normalises its ID
		if err := validateUse(&u); err != nil {
			return Record{}, err
		}
		use = &u
	}
	var payload *Payload
	if r.Payload != nil {
		if !validRequestKey(r.Payload.RequestKey) || !validPaymentID(r.Payload.PaymentID) {
			return Record{}, invalid("payload: request key must be 64 lower-case hex digits, payment id 16 to 128 of [A-Za-z0-9_-]")
		}
		payload = &Payload{RequestKey: r.Payload.RequestKey, PaymentID: r.Payload.PaymentID}
	}
	if err := validateLimits(limits); err != nil {
		return Record{}, err
	}
	return Record{
		URL: r.URL, Host: r.Host, Network: r.Network, Asset: r.Asset, Token: r.Token,
		Decimals: r.Decimals, Amount: new(big.Int).Set(r.Amount), USDNano: r.USDNano,
		PayTo: r.PayTo, Payer: r.Payer, Nonce: r.Nonce, ValidBefore: r.ValidBefore,
		State: state, Owner: l.owner, Approval: use, Payload: payload,
	}, nil
}

func (l *Ledger) reserve(ctx context.Context, tx *wtx, r Record, limits []Limit) (Record, error) {
	now := l.now()
	var dup int64
	err := tx.QueryRowContext(ctx, qFindNonce, addressText(r.Payer), nonceText(r.Nonce)).Scan(&dup)
	switch {
	case err == nil:
		return Record{}, fmt.Errorf("%w: record %d", ErrDuplicateNonce, dup)
	case !errors.Is(err, sql.ErrNoRows):
		return Record{}, fmt.Errorf("ledger: reserve: %w", err)
	}
	for _, lim := range limits {
		if lim.MaxUSDNano == 0 && lim.MaxCount == 0 {
			continue // nothing to enforce; skip the query
		}
		if lim.Host != "" && lim.Host != r.Host {
			continue // this payment does not add to another host's sum
		}
		spent, count, err := sum(ctx, tx, lim, now)
		if err != nil {
			return Record{}, fmt.Errorf("ledger: reserve: %s: %w", lim.Name, err)
		}
		if (lim.MaxUSDNano > 0 && !fits(spent, r.USDNano, lim.MaxUSDNano)) ||
			(lim.MaxCount > 0 && count >= lim.MaxCount) {
			return Record{}, &BudgetError{Limit: lim, SpentUSDNano: spent, Count: count, RequestUSDNano: r.USDNano}
		}
	}
	r.Created = time.Unix(0, now.UnixNano())
	r.Updated = r.Created
	r.LeaseUntil = time.Unix(0, now.Add(l.lease).UnixNano())
	r.ID, err = tx.insertID(ctx, qInsert,
		r.Created.UnixNano(), r.Updated.UnixNano(), r.URL, r.Host, r.Network, addressText(r.Asset), r.Token,
		int64(r.Decimals), r.Amount.String(), r.USDNano, addressText(r.PayTo), addressText(r.Payer), nonceText(r.Nonce), r.ValidBefore,
		string(r.State), r.Owner, r.LeaseUntil.UnixNano())
	if err != nil {
		return Record{}, fmt.Errorf("ledger: reserve: %w", err)
	}
	if r.Payload != nil {
		if err := reservePayload(ctx, tx, r, now); err != nil {
			return Record{}, err
		}
	}
	// After the budgets and the insert: a refused budget leaves the
	// approval unused, and the approval needs the record's ID.
	if r.Approval != nil {
		if err := l.useApproval(ctx, tx, r, now); err != nil {
			return Record{}, err
		}
	}
	return r, nil
}

// queryer is what sum needs: a write transaction in Reserve, a read
// transaction in Usage.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Bucket spans of the sums table, in ns (the schema's triggers use the
// same literals).
const (
	minuteNS = int64(time.Minute)
	hourNS   = int64(time.Hour)
)

// sum returns the counted nano-USD and number of records under lim at now.
//
// A rolling window holds the records created in (now-Window, now]; a
// record exactly Window old no longer counts. Records stamped after now (a
// process with a clock ahead) count too: never under-count.
func sum(ctx context.Context, q queryer, lim Limit, now time.Time) (spent int64, count int, err error) {
	var row *sql.Row
	if lim.Window == 0 {
		row = q.QueryRowContext(ctx, qSumLifetime, lim.Host)
	} else {
		// from is the first counted instant. A window reaching before
		// 1970 holds every record (all are stamped after it).
		from := int64(0)
		if n := now.UnixNano(); n > int64(lim.Window) {
			from = n - int64(lim.Window) + 1
		}
		m, h := ceilTo(from, minuteNS), ceilTo(from, hourNS)
		if lim.Host == "" {
			row = q.QueryRowContext(ctx, qSumWindow, "", h, m, from)
		} else {
			row = q.QueryRowContext(ctx, qSumWindowHost, lim.Host, h, m, from)
		}
	}
	if err := row.Scan(&spent, &count); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return 0, 0, nil // no counted record for that host yet
		}
		return 0, 0, err
	}
	return spent, count, nil
}

// ceilTo rounds t up to a multiple of span (t >= 0).
func ceilTo(t, span int64) int64 {
	c := t / span * span
	if c < t {
		c += span
	}
	return c
}

// Usage reports what counts against each limit now, from one consistent
// snapshot.
func (l *Ledger) Usage(ctx context.Context, limits []Limit) ([]Usage, error) {
	if err := validateLimits(limits); err != nil {
		return nil, err
	}
	l.caughtUp(ctx)
	tx, err := l.rdb.BeginTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger: usage: %w", err)
	}
	defer tx.Rollback()
	now := l.now()
	out := make([]Usage, 0, len(limits))
	for _, lim := range limits {
		spent, count, err := sum(ctx, tx, lim, now)
		if err != nil {
			return nil, fmt.Errorf("ledger: usage: %s: %w", lim.Name, err)
		}
		u := Usage{Limit: lim, SpentUSDNano: spent, Count: count}
		if lim.MaxUSDNano > spent {
			u.LeftUSDNano = lim.MaxUSDNano - spent
		}
		out = append(out, u)
	}
	return out, nil
}
