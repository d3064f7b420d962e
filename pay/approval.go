package pay

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/x402"
)

// hashFields hashes length-prefixed fields under a domain label, so no two
// different lists of fields hash alike.
func hashFields(label string, fields ...[]byte) [32]byte {
	h := sha256.New()
	for _, f := range append([][]byte{[]byte(label)}, fields...) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write(f)
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// requestKey identifies what is bought, whatever it costs: the method, the
// URL that asked for payment, the body and the payer. A repeated call has
// the same key, so an approval given out of band can be found again, and a
// change of terms since then can be named.
func (q *Quote) requestKey(r *Request, payer common.Address) [32]byte {
	body := sha256.Sum256(r.Body)
	return hashFields("x402-mcp request v1", []byte(r.Method), []byte(q.URL), body[:], payer.Bytes())
}

// binding identifies one payment for a human's approval: what is bought
// (the request key) and the terms that are paid (scheme, network, token,
// amount, payee, and the payment flow, which says whether a request that
// fails is paid all the same). An approval is good only for a payment with
// the same binding. Other fields of the option (its window, extra data a
// server may vary per request) are left out: they move no money, and the
// policy caps the window anyway.
func (q *Quote) binding(r *Request, payer common.Address) [32]byte {
	key := q.requestKey(r, payer)
	o := q.Chosen
	flow := o.Wire.PaymentFlow
	if flow == "" {
		flow = x402.FlowAuthorization // absent means the default flow
	}
	return hashFields("x402-mcp approval v3", key[:], []byte(o.Wire.Scheme), []byte(o.Token.Network),
		o.Token.Address.Bytes(), []byte(o.Wire.Amount.String()), o.Wire.PayTo.Bytes(), []byte(flow))
}

// Ask is what a human is shown before approving a payment (see Terms).
type Ask struct {
	Method string
	// URL is the whole URL as WireURL shows it, as the ledger keeps it.
	URL string
	// Host and Target are what a human reads of it (see ShowURL).
	Host, Target string
	Amount       string // whole tokens
	AmountAtomic string
	USD          string // about, in USD; "" when unknown
	Token        string
	Asset        string
	Network      string
	PayTo        string
	// BudgetAfter says, per budget, what would be left after this payment.
	BudgetAfter []string
}

func (c *Client) ask(ctx context.Context, q *Quote, r *Request) (Ask, error) {
	o := q.Chosen
	// The URL is the agent's (and the server's, after redirects): a human
	// deciding a payment reads the host it goes to first, then the path
	// and query in their wire form, clipped (ShowURL), so no bidi or
	// zero-width character, look-alike host or long query makes it read as
	// another.
	host, target := ShowURL(q.URL)
	a := Ask{Method: r.Method, URL: x402.Display(WireURL(q.URL), 3*maxURL), Host: host, Target: target, Amount: tokens.FormatUnits(o.Wire.Amount, o.Token.Decimals), AmountAtomic: o.Wire.Amount.String(),
		Token: o.Token.Symbol, Asset: o.Token.Address.Hex(), Network: o.Token.Network, PayTo: o.Wire.PayTo.Hex()}
	usage, err := c.cfg.Ledger.Usage(ctx, c.limits(q.Host))
	if err != nil {
		return a, fmt.Errorf("pay: reading the budgets: %w", err)
	}
	price := usdNanoCeil(o.Wire.Amount, *o.Token)
	if price > 0 {
		a.USD = ledger.FormatUSDNano(price)
	}
	for _, u := range usage {
		if u.Limit.MaxUSDNano > 0 {
			left := u.Limit.MaxUSDNano - u.SpentUSDNano - price
			if left < 0 {
				left = 0
			}
			a.BudgetAfter = append(a.BudgetAfter, fmt.Sprintf("%s: %s USD left of %s after this payment", u.Limit.Name, ledger.FormatUSDNano(left), ledger.FormatUSDNano(u.Limit.MaxUSDNano)))
		}
	}
	return a, nil
}

// Approvals configures how a payment above the approval threshold gets the
// human's approval when the MCP client cannot ask them.
type Approvals struct {
	// OutOfBand records pending approvals in the ledger, for the human to
	// decide with `x402-mcp approve`/`deny`. Off, such payments are paid
	// only through elicitation.
	OutOfBand bool
	// TTL is how long an approval stays valid, pending or approved;
	// required with OutOfBand (the config supplies its default).
	TTL time.Duration
}

// approved decides whether a payment that needs the human's approval has
// it: an elicited answer bound to exactly this payment (r.HumanApproved),
// or an approval given out of band for exactly these terms, which the
// reservation will consume. Otherwise it says what is missing, as an
// *ApprovalNeededError, or that the human refused, as an
// *ApprovalDeniedError.
func (c *Client) approved(ctx context.Context, q *Quote, r *Request) (*ledger.ApprovalUse, error) {
	payer := c.cfg.Signer.Address()
	binding := q.binding(r, payer)
	if r.HumanApproved != nil && *r.HumanApproved == binding {
		return nil, nil
	}
	need := &ApprovalNeededError{Quote: q, Binding: binding, RequestKey: q.requestKey(r, payer), Changed: r.HumanApproved != nil}
	if c.cfg.Approvals.OutOfBand && r.HumanApproved == nil {
		// An approval for exactly these terms pays, whatever came after it
		// (the price may have moved away and back).
		usable, ok, err := c.cfg.Ledger.UsableApproval(ctx, need.RequestKey, binding)
		if err != nil {
			return nil, fmt.Errorf("pay: reading approvals: %w", err)
		}
		if ok {
			return &ledger.ApprovalUse{ID: usable.ID, Binding: binding}, nil
		}
		// Otherwise the newest one for this request says why not.
		prior, ok, err := c.cfg.Ledger.LatestApproval(ctx, need.RequestKey)
		if err != nil {
			return nil, fmt.Errorf("pay: reading approvals: %w", err)
		}
		switch {
		case !ok || prior.Expired(c.cfg.Now()):
		case prior.State == ledger.ApprovalDenied && prior.Binding == binding:
			return nil, &ApprovalDeniedError{Quote: q, Approval: prior}
		case (prior.State == ledger.ApprovalApproved || prior.State == ledger.ApprovalPending) && prior.Binding != binding:
			// Approved or asked for other terms: the server changed its
			// price or payee since. That approval pays nothing.
			need.Prior = &prior
		}
	}
	ask, err := c.ask(ctx, q, r)
	if err != nil {
		return nil, err
	}
	need.Ask = ask
	return nil, need
}

// RequestApproval records in the ledger that the payment need describes
// waits for a human's approval, so that `x402-mcp approvals` lists it, and
// returns it. An identical request still pending is returned instead of a
// new one. requester names who asked, for the human (display only).
func (c *Client) RequestApproval(ctx context.Context, need *ApprovalNeededError, requester string) (ledger.Approval, error) {
	if !c.cfg.Approvals.OutOfBand {
		return ledger.Approval{}, ErrOutOfBandOff
	}
	o := need.Quote.Chosen
	ttl := c.cfg.Approvals.TTL
	a, err := c.cfg.Ledger.RequestApproval(ctx, ledger.Approval{
		Binding: need.Binding, RequestKey: need.RequestKey,
		Method: need.Ask.Method, URL: need.Ask.URL, Host: need.Quote.Host,
		Network: o.Token.Network, Asset: o.Token.Address, Token: o.Token.Symbol, Decimals: o.Token.Decimals,
		Amount: new(big.Int).Set(o.Wire.Amount), USDNano: usdNanoCeil(o.Wire.Amount, *o.Token), PayTo: o.Wire.PayTo,
		Requester: requester,
	}, ttl)
	if err != nil {
		return ledger.Approval{}, fmt.Errorf("pay: recording the approval request: %w", err)
	}
	return a, nil
}
