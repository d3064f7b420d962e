package ledger

import (
	"context"
	"fmt"
)

// SignFunc signs the payment that res reserves and returns the payment
// header to send (name and value). RecordSent calls it inside its write
// transaction; it must not touch the ledger.
type SignFunc func(res Reservation) (headerName, headerValue string, err error)

// RecordSent is the paying flow's one durable write before a payment
// leaves: in one write transaction it refuses a duplicate nonce, checks
// every limit (as Reserve does), consumes r.Approval if set, inserts the
// record directly as Sent with its payload, then makes the Reservation and
// calls sign with it, stores the header sign returns with the record, and
// commits. r.Payload is required (its header fields are ignored: sign
// supplies them).
//
// The header may leave the process only after RecordSent returned nil:
// then the record is on disk, counted, and holds exactly what is sent, so
// no crash can hide the payment and a retry can re-send it. If anything
// fails — a limit, the approval, sign itself, or the commit — RecordSent
// returns the error and nothing is recorded; the caller must drop the
// header, which never left the process. Errors are Reserve's, and sign's
// as it returned them.
//
// sign runs while this process holds the ledger's write lock, so it must be
// quick (a policy check and one signature: about 0.1 ms).
func (l *Ledger) RecordSent(ctx context.Context, r Record, limits []Limit, sign SignFunc) (Record, error) {
	if l.damage != nil {
		return Record{}, l.damage
	}
	if sign == nil || r.Payload == nil {
		return Record{}, invalid("RecordSent needs a payload and a sign function")
	}
	in, err := l.incoming(r, limits, Sent)
	if err != nil {
		return Record{}, err
	}
	var out Record
	err = l.write(ctx, func(ctx context.Context, tx *wtx) error {
		rec, err := l.reserve(ctx, tx, in, limits)
		if err != nil {
			return err
		}
		// Inside the transaction, after every check and the insert: the
		// reservation is real if this transaction commits, and the
		// signature it backs is dropped if it does not.
		res := holdOf(rec)
		name, value, err := signSafely(sign, res)
		if err != nil {
			return err
		}
		if name == "" || len(name) > 64 || value == "" || len(value) > maxHeaderValue || !printable(value) {
			return invalid("payment header must be a name and a printable value of at most %d bytes", maxHeaderValue)
		}
		if _, err := tx.ExecContext(ctx, qSetHeader, name, value, rec.ID); err != nil {
			return fmt.Errorf("ledger: record %d: payload: %w", rec.ID, err)
		}
		rec.Payload.HeaderName, rec.Payload.HeaderValue = name, value
		out = rec
		return nil
	})
	if err != nil {
		return Record{}, err
	}
	return out, nil
}

// signSafely runs sign on the writer goroutine, where a panic would stop
// every write of the process: it becomes this payment's error instead (and
// the transaction's savepoint is rolled back, so nothing is recorded).
func signSafely(sign SignFunc, res Reservation) (name, value string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("ledger: the sign function panicked: %v", p)
		}
	}()
	return sign(res)
}
