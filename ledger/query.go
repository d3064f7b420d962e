package ledger

import (
	"context"
	"fmt"
	"math/big"
	"time"
)

const recordColumns = `id, created, updated, url, host, network, asset, token, decimals, amount,
	usd_nano, pay_to, payer, nonce, valid_before, state, tx, settlement, note, owner, lease_until`

// prefixedRecordColumns are recordColumns of the table aliased r.
const prefixedRecordColumns = `r.id, r.created, r.updated, r.url, r.host, r.network, r.asset, r.token, r.decimals, r.amount,
	r.usd_nano, r.pay_to, r.payer, r.nonce, r.valid_before, r.state, r.tx, r.settlement, r.note, r.owner, r.lease_until`

// Recent returns the n newest records, newest first. n is capped at 1000;
// n < 1 returns none.
func (l *Ledger) Recent(ctx context.Context, n int) ([]Record, error) {
	if n < 1 {
		return nil, nil
	}
	n = min(n, maxRecent)
	return l.query(ctx, `SELECT `+recordColumns+` FROM records ORDER BY id DESC LIMIT ?`, n)
}

// Pending returns the records still in flight or ambiguous (reserved,
// sent, unknown), oldest first.
func (l *Ledger) Pending(ctx context.Context) ([]Record, error) {
	return l.query(ctx, `SELECT `+recordColumns+` FROM records
		WHERE state IN ('reserved', 'sent', 'unknown') ORDER BY id`)
}

// Get returns one record.
func (l *Ledger) Get(ctx context.Context, id int64) (Record, error) {
	rs, err := l.query(ctx, `SELECT `+recordColumns+` FROM records WHERE id = ?`, id)
	if err != nil {
		return Record{}, err
	}
	if len(rs) == 0 {
		return Record{}, fmt.Errorf("%w: %d", ErrNotFound, id)
	}
	return rs[0], nil
}

func (l *Ledger) query(ctx context.Context, q string, args ...any) ([]Record, error) {
	l.caughtUp(ctx)
	rows, err := l.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("ledger: query: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: query: %w", err)
	}
	return out, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanRecord(s scanner) (Record, error) {
	return scanRecordWith(s)
}

// scanRecordWith scans recordColumns followed by extra columns into extra.
func scanRecordWith(s scanner, extra ...any) (Record, error) {
	var (
		r                       Record
		created, updated, lease int64
		decimals                int64
		amount, state           string
		asset, payTo, payer     string
		nonce                   string
	)
	err := s.Scan(append([]any{&r.ID, &created, &updated, &r.URL, &r.Host, &r.Network, &asset, &r.Token,
		&decimals, &amount, &r.USDNano, &payTo, &payer, &nonce, &r.ValidBefore, &state,
		&r.Transaction, &r.Settlement, &r.Note, &r.Owner, &lease}, extra...)...)
	if err != nil {
		return Record{}, fmt.Errorf("ledger: read record: %w", err)
	}
	var ok bool
	if r.Amount, ok = new(big.Int).SetString(amount, 10); !ok {
		// The CHECK constraint makes this unreachable unless the file was
		// edited by hand; say which record rather than return a nil Amount.
		return Record{}, fmt.Errorf("ledger: record %d: bad amount %q", r.ID, amount)
	}
	if r.Asset, err = parseAddress(asset); err != nil {
		return Record{}, fmt.Errorf("ledger: record %d: asset: %w", r.ID, err)
	}
	if r.PayTo, err = parseAddress(payTo); err != nil {
		return Record{}, fmt.Errorf("ledger: record %d: payTo: %w", r.ID, err)
	}
	if r.Payer, err = parseAddress(payer); err != nil {
		return Record{}, fmt.Errorf("ledger: record %d: payer: %w", r.ID, err)
	}
	if r.Nonce, err = parseNonce(nonce); err != nil {
		return Record{}, fmt.Errorf("ledger: record %d: %w", r.ID, err)
	}
	r.State = State(state)
	if !r.State.valid() {
		return Record{}, fmt.Errorf("ledger: record %d: bad state %q", r.ID, state)
	}
	r.Decimals = uint8(decimals)
	r.Created = time.Unix(0, created)
	r.Updated = time.Unix(0, updated)
	r.LeaseUntil = time.Unix(0, lease)
	return r, nil
}

// Unresolved reports whether host has a payment whose outcome is unknown:
// Unknown, or Sent by a process whose lease has run out. It does not wait
// for this process's deferred writes (see SettleLater): they only move a
// record from Sent or Unknown to Settled, so skipping them can only make
// the answer more cautious, never less.
func (l *Ledger) Unresolved(ctx context.Context, host string) (bool, error) {
	var yes bool
	err := l.rdb.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM records
		WHERE host = ? AND (state = 'unknown' OR (state = 'sent' AND lease_until <= ?)))`, host, l.now().UnixNano()).Scan(&yes)
	if err != nil {
		return false, fmt.Errorf("ledger: unresolved: %w", err)
	}
	return yes, nil
}
