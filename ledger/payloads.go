package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// A payload is what was sent for a payment: the payment header, exactly as
// it left, and the request it paid for. It lets a repeated request re-send
// the same signed authorization — which can settle at most once, whatever
// happens — instead of signing a new one while the first may still settle.

// Payload is the part of a payment that a retry re-sends.
type Payload struct {
	// RequestKey identifies the request paid for (64 lower-case hex
	// digits): the same key is the same request.
	RequestKey string
	// PaymentID is the payment-identifier id sent with it, "" without.
	PaymentID string
	// HeaderName and HeaderValue are the payment header as sent; empty
	// until the record is marked sent.
	HeaderName, HeaderValue string
}

// maxHeaderValue bounds a stored payment header (an honest one is under
// 4 KiB; the paid API refuses more than 16 KiB).
const maxHeaderValue = 32 << 10

// InFlightError is Reserve's refusal of a second payment for a request
// whose earlier payment (Record) is still reserved, sent or unknown and
// not past its validBefore: it may still settle, so another must not be
// signed. Nothing was recorded.
type InFlightError struct {
	Record Record
}

func (e *InFlightError) Error() string {
	return fmt.Sprintf("ledger: payment %d for the same request is still %s and valid until %s",
		e.Record.ID, e.Record.State, time.Unix(e.Record.ValidBefore, 0).UTC().Format(time.RFC3339))
}

func validRequestKey(k string) bool {
	if len(k) != 64 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func validPaymentID(id string) bool {
	if id == "" {
		return true
	}
	if len(id) < 16 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

const (
	// The newest payment of a request that may still be in flight, or that
	// settled without delivering.
	qInFlight = `SELECT ` + prefixedRecordColumns + `, p.payment_id, p.header_name, p.header_value
		FROM payloads p JOIN records r ON r.id = p.record_id
		WHERE p.request_key = ? AND p.delivered = 0 AND r.state IN ('reserved', 'sent', 'unknown', 'settled')
		ORDER BY r.id DESC LIMIT 1`
	qDelivered     = `UPDATE payloads SET delivered = 1 WHERE record_id = ?`
	qInsertPayload = `INSERT INTO payloads (record_id, request_key, payment_id) VALUES (?, ?, ?)`
	qSetHeader     = `UPDATE payloads SET header_name = ?, header_value = ? WHERE record_id = ?`
)

// reservePayload, inside Reserve's transaction, refuses a payment for a
// request whose earlier payment may still settle (or settled without
// delivering, within its window), and records the new payment's request
// key and id.
func reservePayload(ctx context.Context, tx *wtx, r Record, now time.Time) error {
	prior, _, ok, err := inFlight(ctx, tx, r.Payload.RequestKey)
	if err != nil {
		return fmt.Errorf("ledger: reserve: %w", err)
	}
	if ok && prior.ValidBefore > now.Unix()-int64(InFlightMargin/time.Second) {
		return &InFlightError{Record: prior}
	}
	if _, err := tx.ExecContext(ctx, qInsertPayload, r.ID, r.Payload.RequestKey, r.Payload.PaymentID); err != nil {
		return fmt.Errorf("ledger: reserve: payload: %w", err)
	}
	return nil
}

// InFlightMargin is how long past its validBefore an unresolved payment
// still blocks a new one for the same request: the chain's clock may run
// behind ours.
const InFlightMargin = 2 * time.Minute

type rowQueryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func inFlight(ctx context.Context, q rowQueryer, key string) (Record, Payload, bool, error) {
	rows, err := q.QueryContext(ctx, qInFlight, key)
	if err != nil {
		return Record{}, Payload{}, false, err
	}
	defer rows.Close()
	if !rows.Next() {
		return Record{}, Payload{}, false, rows.Err()
	}
	p := Payload{RequestKey: key}
	r, err := scanRecordWith(rows, &p.PaymentID, &p.HeaderName, &p.HeaderValue)
	if err != nil {
		return Record{}, Payload{}, false, err
	}
	return r, p, true, rows.Err()
}

// InFlight returns the newest payment for the request with key requestKey
// that did not deliver the resource — still reserved, sent or unknown, or
// settled without delivering — with what was sent for it; ok=false when
// there is none. Whether it may still settle or be re-sent depends on its
// ValidBefore (and the chain): the caller decides.
func (l *Ledger) InFlight(ctx context.Context, requestKey string) (Record, Payload, bool, error) {
	if !validRequestKey(requestKey) {
		return Record{}, Payload{}, false, invalid("request key must be 64 lower-case hex digits")
	}
	l.caughtUp(ctx)
	r, p, ok, err := inFlight(ctx, l.rdb, requestKey)
	if err != nil {
		return Record{}, Payload{}, false, fmt.Errorf("ledger: in flight: %w", err)
	}
	return r, p, ok, nil
}

// MarkSentPayload is MarkSent for a record reserved with a Payload: it also
// stores the payment header exactly as it is about to be sent, in the same
// transaction, so that a retry can re-send it.
func (l *Ledger) MarkSentPayload(ctx context.Context, id int64, headerName, headerValue string) error {
	if headerName == "" || len(headerName) > 64 || headerValue == "" || len(headerValue) > maxHeaderValue || !printable(headerValue) {
		return invalid("payment header must be a name and a printable value of at most %d bytes", maxHeaderValue)
	}
	return l.write(ctx, func(ctx context.Context, tx *wtx) error {
		if err := l.moveTx(ctx, tx, id, change{to: Sent, from: []State{Reserved}, ownerOnly: true, renew: true}); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, qSetHeader, headerName, headerValue, id)
		if err != nil {
			return fmt.Errorf("ledger: record %d: payload: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("ledger: record %d was reserved without a payload", id)
		}
		return nil
	})
}

// SettleDelivered is Settle and MarkDelivered in one transaction: the
// usual end of a paid request.
func (l *Ledger) SettleDelivered(ctx context.Context, id int64, tx string, settlement []byte) error {
	return l.settle(ctx, id, tx, settlement, true)
}

// MarkDelivered records that the resource was delivered for payment id:
// it no longer stands for its request (a later identical request is a new
// purchase).
func (l *Ledger) MarkDelivered(ctx context.Context, id int64) error {
	return l.write(ctx, func(ctx context.Context, tx *wtx) error {
		_, err := tx.ExecContext(ctx, qDelivered, id)
		return err
	})
}

// MarkUnknownSuperseded is MarkUnknown for a payment the server answered
// by asking for other terms: in the same transaction it stops standing for
// its request (as a delivered one does), so that the request may be judged
// and paid afresh on the new terms instead of being held to this payment.
// The record stays counted until Reconcile proves it unused.
func (l *Ledger) MarkUnknownSuperseded(ctx context.Context, id int64, note string) error {
	n := cleanLine(note, maxNote)
	err := l.write(ctx, func(ctx context.Context, tx *wtx) error {
		if err := l.moveTx(ctx, tx, id, change{to: Unknown, from: []State{Sent, Unknown}, note: &n, endLease: true}); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, qDelivered, id)
		return err
	})
	if err != nil {
		return err
	}
	l.nudge()
	return nil
}
