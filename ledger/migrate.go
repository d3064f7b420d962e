package ledger

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
)

// CopyReport says what CopyTo did.
type CopyReport struct {
	Records, SkippedRecords     int // copied, and already in the destination
	Approvals, SkippedApprovals int
}

// CopyTo copies every record of src (all states and fields, with its
// payload) and every approval into dst, typically a SQLite ledger into a
// new PostgreSQL one. It is idempotent: a record whose (payer, nonce) dst
// already holds, and an approval whose ID it holds, are skipped, so running
// it again copies nothing twice. The records go in through dst's triggers,
// so its sums count them as src's do (a Failed record counts nothing), and
// their creation times are kept, so rolling windows see them where they
// were. Records get dst's ids; approvals name their record by its new id.
//
// It is one write transaction on dst: all or nothing. Stop the processes
// that write src first, or what they record meanwhile is left behind
// (running CopyTo again picks it up).
func CopyTo(ctx context.Context, src, dst *Ledger) (CopyReport, error) {
	var rep CopyReport
	if src == dst {
		return rep, invalid("CopyTo: source and destination are the same ledger")
	}
	src.caughtUp(ctx)
	recs, payloads, err := src.allRecords(ctx)
	if err != nil {
		return rep, err
	}
	as, err := readApprovals(src.rdb.QueryContext(ctx, `SELECT `+approvalColumns+` FROM approvals ORDER BY rowid`))
	if err != nil {
		return rep, fmt.Errorf("ledger: copy: approvals: %w", err)
	}
	err = dst.write(ctx, func(ctx context.Context, tx *wtx) error {
		rep = CopyReport{}
		ids := make(map[int64]int64, len(recs)) // src id → dst id
		for i, r := range recs {
			var have int64
			switch err := tx.QueryRowContext(ctx, qFindNonce, addressText(r.Payer), nonceText(r.Nonce)).Scan(&have); {
			case err == nil:
				ids[r.ID] = have
				rep.SkippedRecords++
				continue
			case !isNoRows(err):
				return fmt.Errorf("ledger: copy: record %d: %w", r.ID, err)
			}
			id, err := tx.insertID(ctx, qInsert,
				r.Created.UnixNano(), r.Updated.UnixNano(), r.URL, r.Host, r.Network, addressText(r.Asset), r.Token,
				int64(r.Decimals), r.Amount.String(), r.USDNano, addressText(r.PayTo), addressText(r.Payer), nonceText(r.Nonce), r.ValidBefore,
				string(r.State), r.Owner, r.LeaseUntil.UnixNano())
			if err == nil {
				_, err = tx.ExecContext(ctx, `UPDATE records SET tx = ?, settlement = ?, note = ? WHERE id = ?`,
					r.Transaction, r.Settlement, r.Note, id)
			}
			if p := payloads[i]; err == nil && p != nil {
				_, err = tx.ExecContext(ctx, `INSERT INTO payloads (record_id, request_key, payment_id, header_name, header_value, delivered)
					VALUES (?, ?, ?, ?, ?, ?)`, id, p.RequestKey, p.PaymentID, p.HeaderName, p.HeaderValue, p.delivered)
			}
			if err != nil {
				return fmt.Errorf("ledger: copy: record %d: %w", r.ID, err)
			}
			ids[r.ID] = id
			rep.Records++
		}
		for _, a := range as {
			var n int
			if err := tx.QueryRowContext(ctx, qApprovalIDExists, a.ID).Scan(&n); err != nil {
				return fmt.Errorf("ledger: copy: approval %s: %w", a.ID, err)
			}
			if n > 0 {
				rep.SkippedApprovals++
				continue
			}
			if err := copyApproval(ctx, tx, a, ids); err != nil {
				return fmt.Errorf("ledger: copy: approval %s: %w", a.ID, err)
			}
			rep.Approvals++
		}
		return nil
	})
	return rep, err
}

// copyApproval inserts a as pending and moves it along the transitions the
// triggers allow to its state: pending → approved | denied → used.
func copyApproval(ctx context.Context, tx *wtx, a Approval, ids map[int64]int64) error {
	if _, err := tx.ExecContext(ctx, qApprovalInsert, a.ID,
		hex.EncodeToString(a.Binding[:]), hex.EncodeToString(a.RequestKey[:]),
		a.Method, a.URL, a.Host, a.Network, addressText(a.Asset), a.Token, int64(a.Decimals),
		a.Amount.String(), a.USDNano, addressText(a.PayTo), a.Requester,
		a.Created.UnixNano(), a.Expires.UnixNano()); err != nil {
		return err
	}
	if a.State == ApprovalPending {
		return nil
	}
	decided := ApprovalApproved
	if a.State == ApprovalDenied {
		decided = ApprovalDenied
	}
	if _, err := tx.ExecContext(ctx, `UPDATE approvals SET state = ?, decided = ? WHERE id = ?`,
		string(decided), a.Decided.UnixNano(), a.ID); err != nil {
		return err
	}
	if a.State != ApprovalUsed {
		return nil
	}
	id, ok := ids[a.RecordID]
	if !ok {
		return fmt.Errorf("its record %d is not in the source", a.RecordID)
	}
	_, err := tx.ExecContext(ctx, `UPDATE approvals SET state = 'used', record_id = ? WHERE id = ?`, id, a.ID)
	return err
}

// copiedPayload is a payload as CopyTo reads it, delivered flag included.
type copiedPayload struct {
	Payload
	delivered int64
}

// allRecords reads every record, oldest first, with its payload (nil
// when it has none).
func (l *Ledger) allRecords(ctx context.Context) ([]Record, []*copiedPayload, error) {
	rows, err := l.rdb.QueryContext(ctx, `SELECT `+prefixedRecordColumns+`,
		p.record_id IS NOT NULL, coalesce(p.request_key, ''), coalesce(p.payment_id, ''),
		coalesce(p.header_name, ''), coalesce(p.header_value, ''), coalesce(p.delivered, 0)
		FROM records r LEFT JOIN payloads p ON p.record_id = r.id ORDER BY r.id`)
	if err != nil {
		return nil, nil, fmt.Errorf("ledger: copy: records: %w", err)
	}
	defer rows.Close()
	var (
		recs []Record
		ps   []*copiedPayload
	)
	for rows.Next() {
		var has bool
		p := &copiedPayload{}
		r, err := scanRecordWith(rows, &has, &p.RequestKey, &p.PaymentID, &p.HeaderName, &p.HeaderValue, &p.delivered)
		if err != nil {
			return nil, nil, err
		}
		if !has {
			p = nil
		}
		recs = append(recs, r)
		ps = append(ps, p)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("ledger: copy: records: %w", err)
	}
	return recs, ps, nil
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
