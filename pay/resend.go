package pay

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/x402"
)

// A signed EIP-3009 authorization settles at most once: its nonce is burnt
// on chain. So when a paid request ends without a known outcome (no answer,
// a 5xx, a settlement still pending) and the agent asks again, the safe
// retry re-sends that same payment — same signature, same nonce, same
// payment id — never a new one while the first may still settle.
//
// "The same request" is the request key: the method, the URL that asked for
// payment, the body's digest and the payer. The terms the server asks now
// must also be the ones that were signed (scheme, network, token, amount,
// payee); if they changed, nothing is re-sent and nothing new is signed
// until the earlier payment can no longer settle. Biased to safety: a
// request that merely looks different (another query string, another body)
// is another request.

// ReasonSettlementPending is the settlement error reason of a facilitator
// that broadcast the transfer but has not seen it confirmed.
const ReasonSettlementPending = "settlement_pending"

// earlier finds the earlier payment for the same request as q and r, if
// one may still settle: p is that payment, to be re-sent exactly as it was.
// With p nil, handled says the call must stop with err (the payment is in
// flight elsewhere, the counterpart now asks for other terms, or it was
// used after all), and not handled that a new payment may be made.
func (c *Client) earlier(ctx context.Context, q *Quote, r *Request, counterpart string) (p *pending, handled bool, err error) {
	key := q.requestKey(r, c.cfg.Signer.Address())
	rec, pl, ok, err := c.cfg.Ledger.InFlight(ctx, hex.EncodeToString(key[:]))
	if err != nil {
		return nil, true, fmt.Errorf("pay: reading earlier payments: %w", err)
	}
	if !ok {
		return nil, false, nil
	}
	now := c.cfg.Now().Unix()
	if rec.ValidBefore+int64(ledger.InFlightMargin.Seconds()) <= now {
		// Past its window: the token refuses it now. One that settled
		// without delivering has been reported; a new call is a new
		// purchase. One of unknown outcome that was used was paid: say
		// so once, and record it.
		if rec.State != ledger.Settled && c.usedOnChain(ctx, rec) {
			return nil, true, &PaymentFailedError{Receipt: receiptOf(rec), NonceUsed: true, Resent: true}
		}
		return nil, false, nil
	}
	if rec.State == ledger.Reserved || pl.HeaderValue == "" || rec.State == ledger.Sent && rec.LeaseUntil.After(c.cfg.Now()) {
		// Another call (here or in another process sharing the ledger)
		// is making or waiting on it right now; it settles the outcome.
		return nil, true, &InFlightError{Record: rec}
	}
	if o := q.Chosen; o == nil || !sameTerms(rec, o) {
		return nil, true, &InFlightError{Record: rec, Why: "the " + counterpart + " now asks for other terms"}
	}
	return &pending{quote: q, record: rec, headerName: pl.HeaderName, headerValue: pl.HeaderValue, paymentID: pl.PaymentID,
		receipt: receiptOf(rec), resent: true}, true, nil
}

// resume handles a request whose earlier payment is still reserved, sent
// or unknown. handled is false when there is none, or when it can no
// longer settle and was not used: then a new payment may be made.
func (c *Client) resume(ctx context.Context, first *response, q *Quote, r *Request) (res *Result, handled bool, err error) {
	if c.cfg.Signer == nil || c.cfg.Ledger == nil || q.Free || q.Required == nil {
		return nil, false, nil
	}
	p, handled, err := c.earlier(ctx, q, r, "server")
	if p == nil {
		return nil, handled, err
	}
	body := r.Body
	if first.method != r.Method {
		body = nil
	}
	c.log.Info("payment re-sent", "host", q.Host, "amount", p.receipt.Amount, "token", p.receipt.Token,
		"network", p.receipt.Network, "nonce", p.receipt.NonceHex(), "ledger_id", p.record.ID, "payment_id", p.paymentID)
	second, err := c.send(ctx, first.method, first.url, r, body, p.headerName, p.headerValue)
	if err != nil {
		c.unknown(p, nil, "no answer to the re-sent payment (timeout or reset): "+err.Error())
		return nil, true, &PaymentFailedError{Receipt: p.receipt, ServerError: err.Error(), Resent: true}
	}
	res, err = c.finish(second, p)
	return res, true, err
}

// usedOnChain asks the token, where an RPC endpoint is configured, whether
// the record's authorization was used; a used one is recorded as settled.
func (c *Client) usedOnChain(ctx context.Context, rec ledger.Record) bool {
	if c.cfg.CheckAuthorization == nil {
		return false
	}
	used, ok, err := c.cfg.CheckAuthorization(ctx, rec.Network, rec.Asset, rec.Payer, rec.Nonce)
	if err != nil || !ok || !used {
		return false
	}
	bctx, cancel := bookkeeping()
	defer cancel()
	if err := c.cfg.Ledger.Settle(bctx, rec.ID, rec.Transaction, nil); err != nil {
		c.log.Error("ledger: cannot record a settlement found on chain", "ledger_id", rec.ID, "err", err)
	}
	return true
}

// sameTerms reports whether the option asks for exactly what rec paid.
func sameTerms(rec ledger.Record, o *Option) bool {
	return o.Token != nil && o.Wire.Amount != nil &&
		o.Token.Network == rec.Network && o.Token.Address == rec.Asset &&
		o.Wire.Amount.Cmp(rec.Amount) == 0 && o.Wire.PayTo == rec.PayTo
}

func receiptOf(rec ledger.Record) *Receipt {
	return &Receipt{Amount: rec.Amount, Decimals: rec.Decimals, Token: rec.Token, Asset: rec.Asset,
		Network: rec.Network, PayTo: rec.PayTo, Payer: rec.Payer, Nonce: rec.Nonce, ValidBefore: rec.ValidBefore,
		Transaction: rec.Transaction, LedgerID: rec.ID}
}

func tokensAmount(rec ledger.Record) string {
	if rec.Amount == nil {
		return ""
	}
	return tokens.FormatUnits(rec.Amount, rec.Decimals)
}

// nonceUsed reads a refusal of a re-sent payment as "its authorization was
// already used". Only the wording to the agent depends on it, never money.
func nonceUsed(serverError string, st *x402.Settlement) bool {
	text := strings.ToLower(serverError)
	if st != nil {
		text += " " + strings.ToLower(st.ErrorReason) + " " + strings.ToLower(st.ErrorMessage)
	}
	return strings.Contains(text, "nonce") && (strings.Contains(text, "used") || strings.Contains(text, "already"))
}
