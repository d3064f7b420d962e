package ledger

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

var (
	// ErrNotFound: no record has that ID.
	ErrNotFound = errors.New("ledger: no such record")
	// ErrBadTransition: the record is not in a state the call may move it
	// from. Returned as a *TransitionError.
	ErrBadTransition = errors.New("ledger: state transition not allowed")
	// ErrNotOwner: the call is reserved to the process that made the
	// reservation (MarkSent, Fail of a reserved record).
	ErrNotOwner = errors.New("ledger: record is held by another process")
	// ErrDuplicateNonce: a record for the same (payer, nonce) exists.
	ErrDuplicateNonce = errors.New("ledger: nonce already recorded for this payer")
	// ErrInvalid: an argument failed validation; nothing was recorded.
	ErrInvalid = errors.New("ledger: invalid input")
	// ErrNotLedger: the file is not an x402-mcp ledger. Open changed nothing.
	ErrNotLedger = errors.New("ledger: not an x402-mcp ledger")
	// ErrTooNew: the file was written by a newer x402-mcp.
	ErrTooNew = errors.New("ledger: ledger file is newer than this program")
	// ErrClosed: the Ledger was closed.
	ErrClosed = errors.New("ledger: closed")
	// ErrApprovalNotFound: no approval has that ID.
	ErrApprovalNotFound = errors.New("ledger: no such approval")
	// ErrApprovalUnusable: Reserve was given an approval that cannot pay
	// for the record (not approved, expired, used, or other terms); nothing
	// was recorded. Returned as an *ApprovalUnusableError.
	ErrApprovalUnusable = errors.New("ledger: approval cannot pay for this payment")
)

// ApprovalStateError is returned by Decide when the approval is not
// pending: a human already decided it, a payment used it, or it expired.
// Nothing was changed.
type ApprovalStateError struct {
	ID     string
	Status string        // as Approval.Status says it: approved, denied, used or expired
	To     ApprovalState // what the call asked for
}

func (e *ApprovalStateError) Error() string {
	if e.Status == statusExpired {
		return fmt.Sprintf("ledger: approval %s has expired and can no longer be %s", e.ID, e.To)
	}
	return fmt.Sprintf("ledger: approval %s is already %s", e.ID, e.Status)
}

// ApprovalUnusableError says why Reserve refused an approval. It matches
// ErrApprovalUnusable with errors.Is.
type ApprovalUnusableError struct {
	ID string
	// Status is the approval's status as Approval.Status says it, or ""
	// when there is no such approval or it could not be read.
	Status   string
	RecordID int64  // the payment that used it, when Status is used
	Reason   string // for people: why it cannot pay
}

func (e *ApprovalUnusableError) Error() string {
	return fmt.Sprintf("ledger: approval %s cannot pay: %s", e.ID, e.Reason)
}

// Is makes errors.Is(err, ErrApprovalUnusable) true.
func (e *ApprovalUnusableError) Is(target error) bool { return target == ErrApprovalUnusable }

// TransitionError says which transition was refused. It matches
// ErrBadTransition with errors.Is.
type TransitionError struct {
	ID   int64
	From State // the record's state when the call was made
	To   State // the state the call asked for
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("ledger: record %d is %s and cannot become %s", e.ID, e.From, e.To)
}

// Is makes errors.Is(err, ErrBadTransition) true.
func (e *TransitionError) Is(target error) bool { return target == ErrBadTransition }

// BudgetError is returned by Reserve when the payment would break a limit.
// Nothing was recorded.
type BudgetError struct {
	Limit          Limit
	SpentUSDNano   int64 // counted within the limit before this payment
	Count          int   // payments counted within the limit before this payment
	RequestUSDNano int64 // this payment
}

func (e *BudgetError) Error() string {
	name := e.Limit.Name
	if name == "" {
		name = "limit"
	}
	if e.moneyExceeded() {
		return fmt.Sprintf("%s: %s USD of %s USD spent; this payment (%s USD) would exceed it",
			name, FormatUSDNano(e.SpentUSDNano), FormatUSDNano(e.Limit.MaxUSDNano), FormatUSDNano(e.RequestUSDNano))
	}
	return fmt.Sprintf("%s: %d of %d payments made; this payment would exceed it",
		name, e.Count, e.Limit.MaxCount)
}

// moneyExceeded tells which half of the limit refused, for the message.
func (e *BudgetError) moneyExceeded() bool {
	return e.Limit.MaxUSDNano > 0 && !fits(e.SpentUSDNano, e.RequestUSDNano, e.Limit.MaxUSDNano)
}

// fits reports whether spent+req <= max without overflowing int64.
func fits(spent, req, max int64) bool {
	if req > math.MaxInt64-spent {
		return false
	}
	return spent+req <= max
}

// FormatUSDNano renders nano-USD as a decimal USD amount with at least two
// decimals and no trailing zeros beyond them: 950000000 → "0.95",
// 1 → "0.000000001". Exact: no floating point.
func FormatUSDNano(n int64) string {
	neg := n < 0
	u := uint64(n)
	if neg {
		u = -u // two's complement: right for math.MinInt64 too
	}
	whole := strconv.FormatUint(u/1e9, 10)
	frac := fmt.Sprintf("%09d", u%1e9)
	frac = strings.TrimRight(frac, "0")
	for len(frac) < 2 {
		frac += "0"
	}
	s := whole + "." + frac
	if neg {
		s = "-" + s
	}
	return s
}
