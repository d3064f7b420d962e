package pay

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/x402-mcp/x402-mcp/internal/netguard"
	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/policy"
	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/x402"
)

// validAfterSlack puts validAfter comfortably in the past: tokens require
// block.timestamp > validAfter, and "now" fails a facilitator's simulation.
const validAfterSlack = 10 * time.Minute

// Result is what a fetch returns.
type Result struct {
	URL         string
	Status      int
	ContentType string
	Body        []byte
	Truncated   bool
	// Payment is set when this call paid.
	Payment *Receipt
	// Judgement is the verdict the call acted on: free, or the verdict on
	// the terms it paid.
	Judgement Judgement
}

// Receipt describes a payment that was made.
//
// Its values are kept as the payment made them (atomic units, addresses,
// the nonce's bytes) and formatted only where they are shown.
type Receipt struct {
	Amount      *big.Int // atomic units
	Decimals    uint8
	Token       string // symbol
	Asset       common.Address
	Network     string
	PayTo       common.Address
	Payer       common.Address
	Nonce       [32]byte
	ValidBefore int64
	// Transaction is the settlement transaction hash, empty when the
	// server sent no settlement.
	Transaction string
	Settled     bool
	// LedgerID is the payment's record in the ledger.
	LedgerID int64
}

// AmountText is the amount in whole tokens, e.g. "0.01".
func (r *Receipt) AmountText() string {
	if r.Amount == nil {
		return ""
	}
	return tokens.FormatUnits(r.Amount, r.Decimals)
}

// NonceHex is the authorization's nonce as 0x and 64 hex digits.
func (r *Receipt) NonceHex() string { return x402.NonceHex(r.Nonce) }

// unpaid makes the first request and returns the response with the body
// read up to limit.
type response struct {
	url       *url.URL
	method    string
	status    int
	header    http.Header
	body      []byte
	truncated bool
}

func (c *Client) send(ctx context.Context, method string, u *url.URL, r *Request, body []byte, payName, payValue string) (*response, error) {
	hr, err := c.newHTTPRequest(ctx, method, u, r, body)
	if err != nil {
		return nil, err
	}
	if payName != "" {
		hr.Header.Set(payName, payValue)
	}
	resp, err := c.httpClient(u, payName).Do(hr)
	if err != nil {
		var refused *netguard.RefusedError
		if errors.As(err, &refused) {
			c.log.Warn("refused a private destination", "host", x402.Display(refused.Host, 100), "ip", refused.IP, "rule", refused.What)
			return nil, &PrivateAddressError{Host: refused.Host, IP: refused.IP, What: refused.What, Source: c.cfg.AllowPrivateSource}
		}
		return nil, &RequestError{Msg: fmt.Sprintf("request to %s failed", u.Host), Err: errors.Unwrap(err)}
	}
	defer resp.Body.Close()
	limit := c.cfg.MaxResponseBytes
	if resp.StatusCode == http.StatusPaymentRequired && limit < x402.MaxBodyBytes {
		limit = x402.MaxBodyBytes
	}
	b, trunc, err := readBounded(resp.Body, limit)
	if err != nil {
		return nil, &RequestError{Msg: fmt.Sprintf("reading the response from %s failed", u.Host), Err: err}
	}
	return &response{url: resp.Request.URL, method: resp.Request.Method, status: resp.StatusCode, header: resp.Header, body: b, truncated: trunc}, nil
}

// Quote makes the unpaid request and reports what paying would involve,
// with the verdict Fetch would act on. It signs nothing, and it sends only
// GET or HEAD: a quote is read-only (hosts approve it without asking), and
// another method may change something on the server even unpaid. For
// other methods it returns *WriteMethodError without sending anything; see
// QuoteListed. A free GET resource is fetched in the process.
func (c *Client) Quote(ctx context.Context, r Request) (*Quote, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	u, err := r.validate()
	if err != nil {
		return nil, err
	}
	if !readOnly(r.Method) {
		return nil, &WriteMethodError{Method: r.Method}
	}
	resp, err := c.send(ctx, r.Method, u, &r, r.Body, "", "")
	if err != nil {
		return nil, err
	}
	q, err := c.quote(resp, &r)
	if err != nil {
		return nil, err
	}
	c.known.remember(r.Method, u, resp, q, c.cfg.Now())
	return q, c.judge(ctx, q)
}

// quote reads the answer to the unpaid request. A 402 that cannot be read
// gives a quote with nothing payable, saying why.
func (c *Client) quote(resp *response, r *Request) (*Quote, error) {
	host, err := policy.NormalizeHost(resp.url)
	if err != nil {
		return nil, &RequestError{Msg: "the host that answered cannot be paid", Err: err}
	}
	q := &Quote{URL: resp.url.String(), Host: host, Status: resp.status}
	if resp.status != http.StatusPaymentRequired {
		q.Free = true
		return q, nil
	}
	if resp.truncated {
		q.unreadable = []string{fmt.Sprintf("the 402 body is larger than %d bytes", x402.MaxBodyBytes)}
		return q, nil
	}
	pr, err := x402.ParseResponse(resp.header, resp.body)
	if err != nil {
		q.unreadable = []string{err.Error()}
		return q, nil
	}
	q.Required = pr
	q.Options = assess(pr, c.cfg.Registry, c.cfg.Policy, policy.Request{URL: q.URL, Host: q.Host, MaxPrice: r.MaxPrice}, c.Payer())
	q.Chosen = choose(q.Options)
	if in, ok := x402.InputsFromRequired(pr); ok {
		q.Inputs = &in
		// The paid retry goes to the URL that asked for payment, with the
		// body the agent gave.
		q.Missing = in.Missing(resp.url.Query(), r.Body)
	}
	return q, nil
}

// Fetch gets the resource, paying for it if the server asks and the policy
// allows. It makes at most one payment (but see known.go), and every
// payment is recorded and counted in the ledger, in the transaction that
// signs it, before it is sent.
func (c *Client) Fetch(ctx context.Context, r Request) (*Result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	u, err := r.validate()
	if err != nil {
		return nil, err
	}
	// Terms seen a moment ago for this method and URL: pay on the first
	// request (see known.go).
	if res, handled, err := c.prepay(ctx, u, &r); handled {
		return res, err
	}
	first, err := c.send(ctx, r.Method, u, &r, r.Body, "", "")
	if err != nil {
		return nil, err
	}
	if first.status != http.StatusPaymentRequired {
		c.known.forget(r.Method, u)
		return resultOf(first, nil, Judgement{Verdict: VerdictFree}), nil
	}
	q, err := c.quote(first, &r)
	if err != nil {
		return nil, err
	}
	c.known.remember(r.Method, u, first, q, c.cfg.Now())
	return c.payFor(ctx, first, q, &r)
}

// payFor pays for the request r whose unpaid answer was the 402 first,
// read as q: at most one signature, one paid attempt.
func (c *Client) payFor(ctx context.Context, first *response, q *Quote, rp *Request) (*Result, error) {
	r := *rp
	// A payment for this same request that may still settle is re-sent,
	// never signed anew (see resend.go).
	if res, handled, err := c.resume(ctx, first, q, &r); handled {
		return res, err
	}
	use, err := c.decide(ctx, q, &r)
	if err != nil {
		return nil, err
	}
	// One durable write: every budget checked, the record inserted as
	// sent with the header it holds, signed inside that transaction. The
	// header leaves only once it is committed.
	p, err := c.authorize(ctx, q, &r, use)
	if err != nil {
		return nil, err
	}
	// The retry repeats the request to the URL that issued the 402. If a
	// redirect turned the method into GET, the body went with it.
	body := r.Body
	if first.method != r.Method {
		body = nil
	}
	c.log.Info("payment signed", "host", q.Host, "amount", p.receipt.AmountText(), "token", p.receipt.Token,
		"network", p.receipt.Network, "pay_to", p.receipt.PayTo.Hex(), "nonce", p.receipt.NonceHex(), "ledger_id", p.record.ID)
	second, err := c.send(ctx, first.method, first.url, &r, body, p.headerName, p.headerValue)
	if err != nil {
		// The signature may have reached the server: report, never re-sign.
		c.unknown(p, nil, "no answer to the paid request (timeout or reset): "+err.Error())
		return nil, &PaymentFailedError{Receipt: p.receipt, ServerError: err.Error()}
	}
	return c.finish(second, p)
}

// pending is a signed payment ready to send.
type pending struct {
	quote       *Quote
	record      ledger.Record
	headerName  string
	headerValue string
	// paymentID is the payment-identifier id sent with it, "" when the
	// server does not advertise the extension.
	paymentID string
	receipt   *Receipt
	// resent says this is an earlier payment sent again (see resend.go).
	resent bool
}

// decide reads the 402 and picks what to pay, or says why nothing will be:
// it acts on the same Judgement that Quote reports. Nothing is recorded or
// signed.
func (c *Client) decide(ctx context.Context, q *Quote, r *Request) (*ledger.ApprovalUse, error) {
	if err := c.judgeBudgets(ctx, q, false); err != nil {
		return nil, err
	}
	j := q.Judgement
	if len(q.Missing) > 0 && (j.Verdict == VerdictAllowed || j.Verdict == VerdictNeedsApproval) {
		// The server would answer the paid request with an error: paying
		// for it would waste the money.
		return nil, &MissingInputsError{Quote: q, Missing: q.Missing}
	}
	switch j.Verdict {
	case VerdictUnpayable:
		if q.Chosen != nil && c.cfg.Signer == nil {
			return nil, NoWalletError{}
		}
		return nil, &UnpayableError{Quote: q, Required: q.Required, Reasons: j.Reasons}
	case VerdictDenied:
		return nil, &DeniedError{Quote: q, Reasons: j.Reasons}
	case VerdictNeedsApproval:
		return c.approved(ctx, q, r)
	}
	return nil, nil
}

// authorize records the payment in the ledger as sent — every budget
// checked, the approval (if any) consumed, in one write transaction — and,
// inside that transaction, obtains the policy's permit for the exact
// authorization against the ledger's reservation, signs it and encodes
// the header that the record stores. When it returns nil the record is
// committed and the header may leave; on any error nothing was recorded
// and the signature, if one was made, is dropped unsent.
func (c *Client) authorize(ctx context.Context, q *Quote, r *Request, use *ledger.ApprovalUse) (*pending, error) {
	p, auth, now, err := c.newPayment(q)
	if err != nil {
		return nil, err
	}
	tok := *q.Chosen.Token
	if advertised, _ := x402.PaymentIDAdvertised(q.Required); advertised {
		if p.paymentID, err = newPaymentID(); err != nil {
			return nil, err
		}
	}
	key := q.requestKey(r, c.cfg.Signer.Address())
	humanApproved := use != nil || r.HumanApproved != nil
	var signErr error // sign's own refusal, passed on as it is
	p.record, err = c.cfg.Ledger.RecordSent(ctx, ledger.Record{
		URL: q.URL, Host: q.Host, Network: tok.Network, Asset: tok.Address, Token: tok.Symbol, Decimals: tok.Decimals,
		Amount: auth.Value, USDNano: usdNanoCeil(auth.Value, tok), PayTo: auth.To, Payer: auth.From,
		Nonce: p.receipt.Nonce, ValidBefore: p.receipt.ValidBefore, Approval: use,
		Payload: &ledger.Payload{RequestKey: hex.EncodeToString(key[:]), PaymentID: p.paymentID},
	}, c.limits(q.Host), func(res ledger.Reservation) (string, string, error) {
		name, value, err := c.sign(p, r, auth, now, humanApproved, res)
		signErr = err
		return name, value, err
	})
	var over *ledger.BudgetError
	var inFlight *ledger.InFlightError
	switch {
	case errors.As(err, &inFlight):
		// Another call paid for this same request a moment ago.
		return nil, &InFlightError{Record: inFlight.Record}
	case errors.As(err, &over):
		// The budgets were not read before (see judge): this is where a
		// full one refuses, in the same words.
		reasons := []string{budgetReason(over)}
		q.Judgement.Verdict, q.Judgement.Reasons = VerdictDenied, reasons
		return nil, &DeniedError{Quote: q, Reasons: reasons}
	case errors.Is(err, ledger.ErrApprovalUnusable):
		// Another process paid it first, or it expired in between.
		return nil, &ApprovalUnusableError{ID: use.ID, Err: err}
	case err != nil && err == signErr:
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("pay: recording the payment in the ledger: %w", err)
	}
	p.headerName, p.headerValue = p.record.Payload.HeaderName, p.record.Payload.HeaderValue
	p.receipt.LedgerID = p.record.ID
	return p, nil
}

// newPayment draws the nonce and builds the authorization for the chosen
// option: validAfter in the past, validBefore within the policy's window.
func (c *Client) newPayment(q *Quote) (*pending, x402.Authorization, time.Time, error) {
	opt, tok := q.Chosen.Wire, *q.Chosen.Token
	nonce, err := x402.NewNonce()
	if err != nil {
		return nil, x402.Authorization{}, time.Time{}, err
	}
	now := c.cfg.Now()
	auth := x402.Authorization{
		From:        c.cfg.Signer.Address(),
		To:          opt.PayTo,
		Value:       new(big.Int).Set(opt.Amount),
		ValidAfter:  big.NewInt(now.Add(-validAfterSlack).Unix()),
		ValidBefore: big.NewInt(now.Add(c.cfg.Policy.Window(opt.MaxTimeoutSeconds)).Unix()),
		Nonce:       nonce,
	}
	return &pending{quote: q, receipt: &Receipt{
		Amount:      auth.Value,
		Decimals:    tok.Decimals,
		Token:       tok.Symbol,
		Asset:       tok.Address,
		Network:     tok.Network,
		PayTo:       opt.PayTo,
		Payer:       auth.From,
		Nonce:       nonce,
		ValidBefore: auth.ValidBefore.Int64(),
	}}, auth, now, nil
}

// sign obtains the policy's permit for exactly auth and reservation res,
// signs it and returns the encoded payment header. It runs inside the
// ledger's write transaction (see authorize).
//
// humanApproved says a human's approval came with the call; decide has
// held it to this payment's binding (and the ledger, for an approval given
// out of band, consumes it in the same transaction). The policy checks
// the confirmation again itself.
func (c *Client) sign(p *pending, r *Request, auth x402.Authorization, now time.Time, humanApproved bool, res ledger.Reservation) (name, value string, err error) {
	q := p.quote
	opt, tok := q.Chosen.Wire, *q.Chosen.Token
	confirmed := humanApproved && q.Judgement.Verdict == VerdictNeedsApproval
	permit, err := c.cfg.Policy.Approve(policy.Request{URL: q.URL, Host: q.Host, Token: tok, PayTo: opt.PayTo, Amount: opt.Amount,
		PaymentFlow: opt.PaymentFlow, MaxPrice: r.MaxPrice, Confirmed: confirmed}, auth, res, now)
	if err != nil {
		var d *policy.DeniedError
		if errors.As(err, &d) {
			return "", "", &DeniedError{Quote: q, Reasons: d.Reasons}
		}
		return "", "", err
	}
	sig, err := c.cfg.Signer.Sign(permit)
	if err != nil {
		return "", "", fmt.Errorf("pay: signing: %w", err)
	}
	pr := q.Required
	if p.paymentID != "" {
		if pr, err = x402.WithPaymentID(pr, p.paymentID); err != nil {
			return "", "", fmt.Errorf("pay: adding the payment id: %w", err)
		}
	}
	name, value, err = x402.PaymentHeader(pr, opt, auth, sig)
	if err != nil {
		return "", "", fmt.Errorf("pay: encoding the payment: %w", err)
	}
	return name, value, nil
}

// finish reads the answer to the paid retry and records the outcome.
func (c *Client) finish(resp *response, p *pending) (*Result, error) {
	st, stErr := x402.ParseSettlement(resp.header)
	if stErr != nil {
		c.log.Warn("unreadable settlement header", "host", p.quote.Host, "nonce", p.receipt.NonceHex(), "err", stErr)
	}
	alreadySettled := p.record.State == ledger.Settled // a re-sent payment that settled before
	if st != nil && st.Success {
		p.receipt.Settled = true
		p.receipt.Transaction = st.Transaction
		if st.Payer != "" && !strings.EqualFold(st.Payer, p.receipt.Payer.Hex()) {
			c.log.Warn("settlement names another payer", "host", p.quote.Host, "payer", st.Payer)
		}
	}
	ok := resp.status >= 200 && resp.status < 400
	if p.receipt.Settled && !alreadySettled {
		// One commit for the settlement and, when the resource came with
		// it, the delivery.
		c.settled(p, st, ok)
	}
	if !ok || (st != nil && !st.Success) {
		e := &PaymentFailedError{Status: resp.status, Receipt: p.receipt, Settlement: st}
		if resp.status == http.StatusPaymentRequired {
			if pr, err := x402.ParseResponse(resp.header, resp.body); err == nil {
				e.ServerError = pr.Error
			}
		}
		e.Body = clip(string(resp.body), 500)
		e.Resent = p.resent
		e.Pending = st != nil && !st.Success && st.ErrorReason == ReasonSettlementPending
		// A re-sent payment refused as already used was paid before (a
		// reconciler may have recorded it settled meanwhile): the answer
		// was lost, not the money.
		e.NonceUsed = p.resent && (alreadySettled || nonceUsed(e.ServerError, st))
		if !p.receipt.Settled && !alreadySettled {
			// Counted until proven either way: the server, or whoever it
			// gave the authorization to, may still settle it. A pending
			// settlement names its transaction: keep it for reconciling.
			note := fmt.Sprintf("the server answered %d to the paid request", resp.status)
			if st != nil && !st.Success {
				note += fmt.Sprintf(" with a failed settlement (%s)", clip(st.ErrorReason, 100))
			}
			if e.NonceUsed {
				note = "re-sent; the server says the authorization was already used: paid, but the response was lost"
			}
			c.unknown(p, st, note)
		}
		c.log.Warn("payment not accepted", "host", p.quote.Host, "status", resp.status, "nonce", p.receipt.NonceHex())
		return nil, e
	}
	if !p.receipt.Settled && !alreadySettled {
		c.unknown(p, st, "the server delivered without a settlement header")
	}
	if !p.receipt.Settled || alreadySettled {
		c.delivered(p)
	}
	c.log.Info("payment settled", "host", p.quote.Host, "amount", p.receipt.AmountText(), "network", p.receipt.Network,
		"transaction", p.receipt.Transaction, "nonce", p.receipt.NonceHex(), "ledger_id", p.record.ID)
	return resultOf(resp, p.receipt, p.quote.Judgement), nil
}

func resultOf(resp *response, rc *Receipt, j Judgement) *Result {
	return &Result{
		URL:         resp.url.String(),
		Status:      resp.status,
		ContentType: resp.header.Get("Content-Type"),
		Body:        resp.body,
		Truncated:   resp.truncated,
		Payment:     rc,
		Judgement:   j,
	}
}
