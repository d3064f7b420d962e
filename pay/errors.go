package pay

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/x402-mcp/x402-mcp/internal/netguard"
	"github.com/x402-mcp/x402-mcp/ledger"

	"github.com/x402-mcp/x402-mcp/x402"
)

// RequestError is a problem with the agent's request itself (bad URL,
// forbidden header) or with reaching the server; nothing was signed.
type RequestError struct {
	Msg string
	Err error
}

func (e *RequestError) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *RequestError) Unwrap() error { return e.Err }

// PrivateAddressError is a request refused before connecting because its
// destination, or a redirect's, is a private address (loopback, RFC 1918,
// link-local, ...) that the operator did not allow. Nothing was sent to it
// and nothing was signed.
type PrivateAddressError struct {
	// Host is the name or address asked for; IP what it resolved to.
	Host string
	IP   netip.Addr
	// What names the rule, e.g. "a loopback address".
	What string
	// Source is where the operator's allow list lives, "" if unknown.
	Source string
}

func (e *PrivateAddressError) Error() string {
	var b strings.Builder
	b.WriteString("refused: ")
	b.WriteString((&netguard.RefusedError{Host: x402.Display(e.Host, 100), IP: e.IP, What: e.What}).Error())
	b.WriteString("; x402-mcp does not reach this machine's or the local network's private services unless the operator lists them in http.allow_private")
	if e.Source != "" {
		fmt.Fprintf(&b, " in %s", e.Source)
	} else {
		b.WriteString(" in the x402-mcp config")
	}
	return b.String()
}

// WriteMethodError is a quote asked for with a method other than GET or
// HEAD: it was not sent, since even unpaid it may change something on the
// server. Nothing was sent or signed.
type WriteMethodError struct {
	Method string
}

func (e *WriteMethodError) Error() string {
	return fmt.Sprintf("a quote sends only GET or HEAD, so this %s was not sent", e.Method)
}

// UnpayableError means the 402 offered nothing this client will pay:
// unknown tokens, unsupported schemes or networks, malformed options, or a
// malformed 402 altogether. Nothing was signed.
type UnpayableError struct {
	// Quote is what was read of the 402, nil when nothing could be.
	Quote *Quote
	// Required is the parsed 402, nil when the 402 itself was unreadable.
	Required *x402.PaymentRequired
	// Reasons has one line per option, or one line for the whole 402.
	Reasons []string
	Err     error
}

func (e *UnpayableError) Error() string {
	return "no payable option in the 402: " + strings.Join(e.Reasons, "; ")
}

func (e *UnpayableError) Unwrap() error { return e.Err }

// DeniedError means the policy refused the best payable option. Nothing was
// signed.
type DeniedError struct {
	Quote   *Quote
	Reasons []string
}

func (e *DeniedError) Error() string {
	return "payment denied by policy: " + strings.Join(e.Reasons, "; ")
}

// NoWalletError means a payment was needed but no key is configured.
type NoWalletError struct{}

func (NoWalletError) Error() string {
	return "this resource requires payment but no wallet key is configured"
}

// PaymentFailedError is returned after a signature was sent and the server
// did not deliver: it answered the paid retry with another 402, an error
// status, or a failed settlement. The authorization may still be settled by
// whoever holds it until ValidBefore, so it is never re-signed here.
type PaymentFailedError struct {
	// Status is the answer's HTTP status; 0 when there was no answer
	// (timeout, reset).
	Status     int
	Receipt    *Receipt
	Settlement *x402.Settlement
	// ServerError and Body are the server's words (its error text, the
	// start of its answer's body), cleaned and clipped for display.
	ServerError string
	Body        string
	// Resent says the payment was one made earlier for the same request,
	// sent again with the same signature (never a new one).
	Resent bool
	// Pending says the facilitator broadcast the settlement but had not
	// seen it confirmed (settlement_pending).
	Pending bool
	// NonceUsed says the server refused a re-sent payment because its
	// authorization was already used: it was paid, the response was lost.
	NonceUsed bool
	// Answered, when set, says in words what the server answered, in place
	// of Status: x402 over MCP has no HTTP status.
	Answered string
}

func (e *PaymentFailedError) Error() string {
	var b strings.Builder
	what := "payment was signed and sent"
	if e.Resent {
		what = "the earlier payment for this request was sent again (the same signature, not a new one)"
	}
	if e.Status == 0 && e.Answered == "" {
		fmt.Fprintf(&b, "%s, but the server gave no answer (timeout or reset)", what)
		if e.ServerError != "" {
			fmt.Fprintf(&b, ": %s", clip(e.ServerError, 200))
		}
		return b.String()
	}
	if e.Answered != "" {
		fmt.Fprintf(&b, "%s, but %s", what, e.Answered)
	} else {
		fmt.Fprintf(&b, "%s, but the server answered %d", what, e.Status)
	}
	if e.Settlement != nil && !e.Settlement.Success {
		reason := e.Settlement.ErrorReason
		if reason == "" {
			reason = e.Settlement.ErrorMessage
		}
		fmt.Fprintf(&b, " with a failed settlement (its reason, in its own words: %s)", x402.Quoted(reason, 200))
	} else if e.ServerError != "" {
		fmt.Fprintf(&b, " (its error, in its own words: %s)", x402.Quoted(e.ServerError, 200))
	}
	return b.String()
}

// clip bounds and cleans outside text kept in an error or a note, with
// the one display cleaner.
func clip(s string, n int) string { return x402.Display(s, n) }

// ApprovalNeededError means the payment is above the operator's approval
// threshold: a human must approve exactly this payment (Binding) first.
// Nothing was reserved or signed.
type ApprovalNeededError struct {
	Quote   *Quote
	Binding [32]byte
	// RequestKey identifies the request whatever its terms (see
	// RequestApproval).
	RequestKey [32]byte
	Ask        Ask
	// Changed is set when an elicited approval was given for another
	// payment: the server changed what it asks for since.
	Changed bool
	// Prior is an approval given or asked for out of band for the same
	// request on other terms (price, payee, token): it pays nothing now.
	Prior *ledger.Approval
}

func (e *ApprovalNeededError) Error() string {
	return fmt.Sprintf("payment of %s %s to %s needs the user's approval", e.Ask.Amount, e.Ask.Token, e.Ask.Host)
}

// ApprovalDeniedError means the human denied this payment out of band.
// Nothing was reserved or signed.
type ApprovalDeniedError struct {
	Quote    *Quote
	Approval ledger.Approval
}

func (e *ApprovalDeniedError) Error() string {
	return fmt.Sprintf("the user denied this payment (approval %s)", e.Approval.ID)
}

// ApprovalUnusableError means an approval given out of band could not be
// used when the payment was reserved: another process used it first, or
// it expired in between. Nothing was reserved or signed.
type ApprovalUnusableError struct {
	ID  string
	Err error
}

func (e *ApprovalUnusableError) Error() string {
	return fmt.Sprintf("approval %s can no longer be used: %v", e.ID, e.Err)
}

func (e *ApprovalUnusableError) Unwrap() error { return e.Err }

// InFlightError means an earlier payment for the same request may still
// settle, and it cannot be re-sent as it is (it is being made by another
// call right now, or the server now asks for other terms): nothing was
// signed.
type InFlightError struct {
	Record ledger.Record
	// Why says which; empty for "being made right now".
	Why string
}

func (e *InFlightError) Error() string {
	return fmt.Sprintf("an earlier payment for this request (%s %s to %s, payment %d) is %s and may still settle until %s",
		tokensAmount(e.Record), e.Record.Token, e.Record.PayTo.Hex(), e.Record.ID, e.Record.State, time.Unix(e.Record.ValidBefore, 0).UTC().Format(time.RFC3339))
}

// ErrOutOfBandOff is returned by RequestApproval when the operator turned
// out-of-band approval off.
var ErrOutOfBandOff = errors.New("pay: out-of-band approval is off")

// MissingInputsError means the request lacks an input that the server's
// own 402 declares required, so the paid request would fail: nothing was
// reserved or signed.
type MissingInputsError struct {
	Quote   *Quote
	Missing []string
}

func (e *MissingInputsError) Error() string {
	return "the request lacks what the server declares required: " + strings.Join(e.Missing, ", ")
}

// QuoteOf returns the quote a refusal was decided on, nil when there is
// none (the request failed, or the 402 could not be read).
func QuoteOf(err error) *Quote {
	var (
		denied    *DeniedError
		unpayable *UnpayableError
		need      *ApprovalNeededError
		refused   *ApprovalDeniedError
		missing   *MissingInputsError
	)
	switch {
	case errors.As(err, &denied):
		return denied.Quote
	case errors.As(err, &unpayable):
		return unpayable.Quote
	case errors.As(err, &need):
		return need.Quote
	case errors.As(err, &refused):
		return refused.Quote
	case errors.As(err, &missing):
		return missing.Quote
	}
	return nil
}
