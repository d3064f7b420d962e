package ledger

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// ApprovalState is where an approval is in its life. Expiry is not a
// state: it is computed from Expires (see Approval.Status), so no process
// has to be alive to expire anything.
type ApprovalState string

const (
	ApprovalPending  ApprovalState = "pending"  // waiting for a human
	ApprovalApproved ApprovalState = "approved" // may pay its terms once, until it expires
	ApprovalDenied   ApprovalState = "denied"   // final
	ApprovalUsed     ApprovalState = "used"     // a payment consumed it; final
)

func (s ApprovalState) valid() bool {
	switch s {
	case ApprovalPending, ApprovalApproved, ApprovalDenied, ApprovalUsed:
		return true
	}
	return false
}

// statusExpired is what Status says for a pending or approved approval
// past its expiry.
const statusExpired = "expired"

// Approval is a request for a human's permission to make one payment,
// bound to its exact terms.
type Approval struct {
	ID         string   // "ap-" and 8 base32 letters, random; set by the ledger
	Binding    [32]byte // hash of the exact payment terms (computed by pay); the approval pays only this
	RequestKey [32]byte // hash of the request, so a repeat of the same call finds it even if terms changed

	Method string
	URL    string
	Host   string // normalised like Record.Host

	Network  string
	Asset    common.Address
	Token    string
	Decimals uint8
	Amount   *big.Int // atomic units
	USDNano  int64
	PayTo    common.Address

	// Requester says who asked (MCP client name, server pid); display
	// only. The ledger cleans it to one bounded line.
	Requester string

	Created time.Time // set by the ledger
	Expires time.Time // Created + the ttl given to RequestApproval
	State   ApprovalState
	Decided time.Time // zero until approved or denied
	// RecordID is the payment record that used it, 0 until used.
	RecordID int64
}

// ApprovalUse names the approval a payment consumes (Record.Approval).
// Binding must equal the approval's: an approval pays only the terms it
// was granted for.
type ApprovalUse struct {
	ID      string
	Binding [32]byte
}

// Expired reports whether a pending or approved approval has passed its
// expiry at now. A decided-and-final one (denied, used) never expires.
func (a Approval) Expired(now time.Time) bool {
	return (a.State == ApprovalPending || a.State == ApprovalApproved) && !now.Before(a.Expires)
}

// Status is the state as people see it: "expired" for a pending or
// approved approval past Expires, else State.
func (a Approval) Status(now time.Time) string {
	if a.Expired(now) {
		return statusExpired
	}
	return string(a.State)
}

// Bounds on approvals, beyond those records share (validate.go).
const (
	// maxApprovalTTL keeps an approval from sitting usable for longer than
	// a human can be expected to remember granting it.
	maxApprovalTTL = 7 * 24 * time.Hour
	maxMethod      = 16
	maxRequester   = 200
	// idTries bounds the retries on an ID collision: 40 random bits make
	// even one unlikely, so reaching it means a broken random source.
	idTries = 8
)

// reApprovalID is compiled on first use, like the patterns in validate.go.
var reApprovalID = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^ap-[a-z2-7]{8}$`) })

// newApprovalID draws an ID a human can type: 40 random bits as 8
// lower-case base32 letters (no 0/1/8/9 to mistake for o/l/b/g).
func newApprovalID() string {
	var b [5]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return "ap-" + strings.ToLower(base32.StdEncoding.EncodeToString(b[:]))
}

// approvalID normalises an ID a human typed: case and surrounding space
// carry no meaning.
func approvalID(id string) (string, bool) {
	id = strings.ToLower(strings.TrimSpace(id))
	return id, reApprovalID().MatchString(id)
}

func notFound(id string) error {
	return fmt.Errorf("%w: %q", ErrApprovalNotFound, clip(id, 40))
}

const approvalColumns = `id, binding, request_key, method, url, host, network, asset, token,
	decimals, amount, usd_nano, pay_to, requester, created, expires, state, decided, record_id`

const (
	qApprovalByID      = `SELECT ` + approvalColumns + ` FROM approvals WHERE id = ?`
	qApprovalIDExists  = `SELECT count(*) FROM approvals WHERE id = ?`
	qApprovalByBinding = `SELECT ` + approvalColumns + ` FROM approvals
		WHERE binding = ? AND state = 'pending' AND expires > ? ORDER BY created DESC, rowid DESC LIMIT 1`
	qApprovalInsert = `INSERT INTO approvals (id, binding, request_key, method, url, host, network,
		asset, token, decimals, amount, usd_nano, pay_to, requester, created, expires, state)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')`
	// Conditional: nothing changes unless it is still pending and unexpired
	// when the write lock is held, whoever else decides at the same moment.
	qDecide = `UPDATE approvals SET state = ?1, decided = ?2
		WHERE id = ?3 AND state = 'pending' AND expires > ?2`
)

// RequestApproval records a pending approval for a's terms, expiring ttl
// from now. ID, Created, Expires and State are set by the ledger; Decided
// and RecordID start zero. If an unexpired pending approval with the same
// Binding exists it is returned instead, so an agent repeating a call
// before the human answers does not pile up requests.
func (l *Ledger) RequestApproval(ctx context.Context, a Approval, ttl time.Duration) (Approval, error) {
	if err := validateApproval(&a); err != nil {
		return Approval{}, err
	}
	if ttl <= 0 || ttl > maxApprovalTTL {
		return Approval{}, invalid("approval ttl %v must be positive and at most %v", ttl, maxApprovalTTL)
	}
	in := a
	in.Amount = new(big.Int).Set(a.Amount)
	in.Requester = cleanLine(a.Requester, maxRequester)
	in.State, in.Decided, in.RecordID = ApprovalPending, time.Time{}, 0
	var out Approval
	err := l.write(ctx, func(ctx context.Context, tx *wtx) error {
		now := l.now()
		have, err := readApprovals(tx.QueryContext(ctx, qApprovalByBinding, hex.EncodeToString(in.Binding[:]), now.UnixNano()))
		if err != nil {
			return fmt.Errorf("ledger: request approval: %w", err)
		}
		if len(have) > 0 {
			out = have[0]
			return nil
		}
		a := in
		if a.ID, err = freeApprovalID(ctx, tx); err != nil {
			return err
		}
		a.Created = time.Unix(0, now.UnixNano())
		a.Expires = time.Unix(0, now.Add(ttl).UnixNano())
		if _, err := tx.ExecContext(ctx, qApprovalInsert, a.ID,
			hex.EncodeToString(a.Binding[:]), hex.EncodeToString(a.RequestKey[:]),
			a.Method, a.URL, a.Host, a.Network, addressText(a.Asset), a.Token, int64(a.Decimals),
			a.Amount.String(), a.USDNano, addressText(a.PayTo), a.Requester,
			a.Created.UnixNano(), a.Expires.UnixNano()); err != nil {
			return fmt.Errorf("ledger: request approval: %w", err)
		}
		out = a
		return nil
	})
	if err != nil {
		return Approval{}, err
	}
	return out, nil
}

// freeApprovalID draws IDs until one is unused. It runs under the write
// lock, so no other process can take the ID before the insert.
func freeApprovalID(ctx context.Context, tx *wtx) (string, error) {
	for range idTries {
		id := newApprovalID()
		var n int
		if err := tx.QueryRowContext(ctx, qApprovalIDExists, id).Scan(&n); err != nil {
			return "", fmt.Errorf("ledger: request approval: %w", err)
		}
		if n == 0 {
			return id, nil
		}
	}
	return "", errors.New("ledger: request approval: no free approval id; is the random source broken?")
}

// ApprovalByID returns one approval; an error matching ErrApprovalNotFound
// when there is none. The ID is matched ignoring case and surrounding
// space, as a human may type it.
func (l *Ledger) ApprovalByID(ctx context.Context, id string) (Approval, error) {
	norm, ok := approvalID(id)
	if !ok {
		return Approval{}, notFound(id)
	}
	as, err := readApprovals(l.rdb.QueryContext(ctx, qApprovalByID, norm))
	if err != nil {
		return Approval{}, fmt.Errorf("ledger: approval %s: %w", norm, err)
	}
	if len(as) == 0 {
		return Approval{}, notFound(norm)
	}
	return as[0], nil
}

// LatestApproval returns the newest approval for requestKey, whatever its
// state; ok is false when there is none.
func (l *Ledger) LatestApproval(ctx context.Context, requestKey [32]byte) (a Approval, ok bool, err error) {
	as, err := readApprovals(l.rdb.QueryContext(ctx, `SELECT `+approvalColumns+` FROM approvals
		WHERE request_key = ? ORDER BY created DESC, rowid DESC LIMIT 1`, hex.EncodeToString(requestKey[:])))
	if err != nil {
		return Approval{}, false, fmt.Errorf("ledger: latest approval: %w", err)
	}
	if len(as) == 0 {
		return Approval{}, false, nil
	}
	return as[0], true, nil
}

// UsableApproval returns the newest approval for requestKey that is
// approved, unexpired and bound to binding: one that Reserve would accept
// for a payment on exactly those terms. ok=false when there is none.
func (l *Ledger) UsableApproval(ctx context.Context, requestKey, binding [32]byte) (a Approval, ok bool, err error) {
	as, err := readApprovals(l.rdb.QueryContext(ctx, `SELECT `+approvalColumns+` FROM approvals
		WHERE request_key = ? AND binding = ? AND state = 'approved' AND expires > ?
		ORDER BY created DESC, rowid DESC LIMIT 1`,
		hex.EncodeToString(requestKey[:]), hex.EncodeToString(binding[:]), l.now().UnixNano()))
	if err != nil {
		return Approval{}, false, fmt.Errorf("ledger: usable approval: %w", err)
	}
	if len(as) == 0 {
		return Approval{}, false, nil
	}
	return as[0], true, nil
}

// Approvals lists approvals newest first: the pending, unexpired ones, or
// (all) those of every state and status. At most n are returned; n is
// capped at 1000, and n < 1 means that cap.
func (l *Ledger) Approvals(ctx context.Context, all bool, n int) ([]Approval, error) {
	if n < 1 || n > maxRecent {
		n = maxRecent
	}
	var (
		as  []Approval
		err error
	)
	if all {
		as, err = readApprovals(l.rdb.QueryContext(ctx, `SELECT `+approvalColumns+` FROM approvals
			ORDER BY created DESC, rowid DESC LIMIT ?`, n))
	} else {
		as, err = readApprovals(l.rdb.QueryContext(ctx, `SELECT `+approvalColumns+` FROM approvals
			WHERE state = 'pending' AND expires > ? ORDER BY created DESC, rowid DESC LIMIT ?`, l.now().UnixNano(), n))
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: approvals: %w", err)
	}
	return as, nil
}

// Decide moves a pending, unexpired approval to approved (approve) or
// denied, in one write transaction whose UPDATE is conditional on both:
// two humans (or processes) deciding at once cannot both succeed, and an
// approval cannot be approved after it expired. Anything else returns an
// *ApprovalStateError saying its current status, and changes nothing. It
// returns the approval as stored.
func (l *Ledger) Decide(ctx context.Context, id string, approve bool) (Approval, error) {
	norm, ok := approvalID(id)
	if !ok {
		return Approval{}, notFound(id)
	}
	to := ApprovalDenied
	if approve {
		to = ApprovalApproved
	}
	var out Approval
	err := l.write(ctx, func(ctx context.Context, tx *wtx) error {
		now := l.now()
		res, err := tx.ExecContext(ctx, qDecide, string(to), now.UnixNano(), norm)
		if err != nil {
			return fmt.Errorf("ledger: decide approval %s: %w", norm, err)
		}
		changed, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("ledger: decide approval %s: %w", norm, err)
		}
		as, err := readApprovals(tx.QueryContext(ctx, qApprovalByID, norm))
		switch {
		case err != nil:
			return fmt.Errorf("ledger: decide approval %s: %w", norm, err)
		case len(as) == 0:
			return notFound(norm)
		case changed == 0:
			return &ApprovalStateError{ID: norm, Status: as[0].Status(now), To: to}
		}
		out = as[0]
		return nil
	})
	if err != nil {
		return Approval{}, err
	}
	return out, nil
}

// useApproval consumes r.Approval for record r, inside Reserve's
// transaction: the UPDATE is conditional on the approval being approved,
// unexpired, bound to the same terms and carrying r's money terms, so of
// any number of payments racing for it in any processes, one changes the
// row and every other finds it used. When nothing changed it returns an
// *ApprovalUnusableError, and Reserve's savepoint undoes the record.
func (l *Ledger) useApproval(ctx context.Context, tx *wtx, r Record, now time.Time) error {
	use := r.Approval
	res, err := tx.ExecContext(ctx, qUseApproval, r.ID, now.UnixNano(), use.ID,
		hex.EncodeToString(use.Binding[:]), r.Amount.String(), r.Network, r.Host, addressText(r.Asset), addressText(r.PayTo))
	if err != nil {
		return fmt.Errorf("ledger: use approval %s: %w", use.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("ledger: use approval %s: %w", use.ID, err)
	} else if n == 1 {
		return nil
	}
	e := &ApprovalUnusableError{ID: use.ID}
	as, err := readApprovals(tx.QueryContext(ctx, qApprovalByID, use.ID))
	switch {
	case err != nil:
		e.Reason = "it could not be read: " + err.Error()
		return e
	case len(as) == 0:
		e.Reason = "there is no such approval"
		return e
	}
	a := as[0]
	e.Status, e.RecordID = a.Status(now), a.RecordID
	switch e.Status {
	case statusExpired:
		e.Reason = "it expired at " + a.Expires.UTC().Format(time.RFC3339)
	case string(ApprovalPending):
		e.Reason = "it is still pending: nobody has approved it"
	case string(ApprovalDenied):
		e.Reason = "it was denied"
	case string(ApprovalUsed):
		e.Reason = fmt.Sprintf("it was already used by payment %d", a.RecordID)
	default:
		e.Reason = "it approves other payment terms"
	}
	return e
}

// readApprovals collects the rows of a query over approvalColumns; it
// takes QueryContext's results as they come, for both the writer's
// transaction and the readers.
func readApprovals(rows *sql.Rows, err error) ([]Approval, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Approval
	for rows.Next() {
		a, err := scanApproval(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func scanApproval(s scanner) (Approval, error) {
	var (
		a                                 Approval
		binding, requestKey, amount, st   string
		asset, payTo                      string
		decimals, created, expires, decid int64
	)
	err := s.Scan(&a.ID, &binding, &requestKey, &a.Method, &a.URL, &a.Host, &a.Network, &asset,
		&a.Token, &decimals, &amount, &a.USDNano, &payTo, &a.Requester, &created, &expires, &st,
		&decid, &a.RecordID)
	if err != nil {
		return Approval{}, fmt.Errorf("ledger: read approval: %w", err)
	}
	// The CHECK constraints make these failures unreachable unless the file
	// was edited by hand; say which approval rather than return nonsense.
	var ok bool
	if a.Amount, ok = new(big.Int).SetString(amount, 10); !ok {
		return Approval{}, fmt.Errorf("ledger: approval %s: bad amount %q", a.ID, amount)
	}
	if a.Asset, err = parseAddress(asset); err != nil {
		return Approval{}, fmt.Errorf("ledger: approval %s: asset: %w", a.ID, err)
	}
	if a.PayTo, err = parseAddress(payTo); err != nil {
		return Approval{}, fmt.Errorf("ledger: approval %s: payTo: %w", a.ID, err)
	}
	if !decodeHash(&a.Binding, binding) || !decodeHash(&a.RequestKey, requestKey) {
		return Approval{}, fmt.Errorf("ledger: approval %s: bad hash", a.ID)
	}
	if a.State = ApprovalState(st); !a.State.valid() {
		return Approval{}, fmt.Errorf("ledger: approval %s: bad state %q", a.ID, st)
	}
	a.Decimals = uint8(decimals)
	a.Created = time.Unix(0, created)
	a.Expires = time.Unix(0, expires)
	if decid != 0 {
		a.Decided = time.Unix(0, decid)
	}
	return a, nil
}

func decodeHash(dst *[32]byte, s string) bool {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(dst) {
		return false
	}
	copy(dst[:], b)
	return true
}
