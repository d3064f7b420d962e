package pay

import (
	"fmt"
	"strings"

	"github.com/x402-mcp/x402-mcp/policy"
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

// UnpayableError means the 402 offered nothing this client will pay:
// unknown tokens, unsupported schemes or networks, malformed options, or a
// malformed 402 altogether. Nothing was signed.
type UnpayableError struct {
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
	Verdict policy.Verdict
}

func (e *DeniedError) Error() string {
	return "payment denied by policy: " + strings.Join(e.Verdict.Reasons, "; ")
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
	Status      int
	Receipt     *Receipt
	Settlement  *x402.Settlement
	ServerError string
	Body        string
}

func (e *PaymentFailedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "payment was signed and sent, but the server answered %d", e.Status)
	if e.Settlement != nil && !e.Settlement.Success {
		reason := e.Settlement.ErrorReason
		if reason == "" {
			reason = e.Settlement.ErrorMessage
		}
		fmt.Fprintf(&b, " with a failed settlement (%q)", clip(reason, 200))
	} else if e.ServerError != "" {
		fmt.Fprintf(&b, " (%q)", clip(e.ServerError, 200))
	}
	return b.String()
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// ApprovalNeededError means the payment is above the operator's approval
// threshold: a human must approve exactly this payment (Binding) first.
// Nothing was reserved or signed.
type ApprovalNeededError struct {
	Quote   *Quote
	Binding [32]byte
	Ask     Ask
	// Changed is set when an approval was given for another payment: the
	// server changed what it asks for since.
	Changed bool
}

func (e *ApprovalNeededError) Error() string {
	return fmt.Sprintf("payment of %s %s to %s needs the user's approval", e.Ask.Amount, e.Ask.Token, e.Ask.Host)
}
