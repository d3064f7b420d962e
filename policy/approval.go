package policy

import (
	"errors"
	"math/big"
	"sync/atomic"

	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/x402"
)

// ErrNotApproved is returned for an approval this package did not issue.
var ErrNotApproved = errors.New("policy: no approval was issued for this payment")

// ErrApprovalUsed is returned when an approval is consumed a second time.
var ErrApprovalUsed = errors.New("policy: approval already used")

// Approval is the policy engine's permission to sign one authorization. Its
// fields are unexported so that code outside this package cannot make one
// that passes Consume.
type Approval struct {
	issued bool
	used   atomic.Bool
	token  tokens.Token
	auth   x402.Authorization
}

// Token is the registry token the approval is for (its EIP-712 domain).
func (a *Approval) Token() tokens.Token { return a.token }

// Authorization returns a copy of the approved authorization.
func (a *Approval) Authorization() x402.Authorization {
	c := a.auth
	c.Value = new(big.Int).Set(a.auth.Value)
	c.ValidAfter = new(big.Int).Set(a.auth.ValidAfter)
	c.ValidBefore = new(big.Int).Set(a.auth.ValidBefore)
	return c
}

// Consume marks the approval used. It fails for an approval this package did
// not issue and for every call after the first, so each approval yields at
// most one signature.
func (a *Approval) Consume() error {
	if a == nil || !a.issued {
		return ErrNotApproved
	}
	if !a.used.CompareAndSwap(false, true) {
		return ErrApprovalUsed
	}
	return nil
}
