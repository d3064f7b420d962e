package pay

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"time"

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
}

// Receipt describes a payment that was made.
type Receipt struct {
	Amount       string // in whole tokens, e.g. "0.01"
	AmountAtomic string
	Token        string // symbol
	Asset        string
	Network      string
	PayTo        string
	Payer        string
	Nonce        string
	ValidBefore  int64
	// Transaction is the settlement transaction hash, empty when the
	// server sent no settlement.
	Transaction string
	Settled     bool
}

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

// Quote makes the unpaid request and reports what paying would involve. It
// signs nothing. Note that a free resource is fetched (and a free POST
// executed) in the process.
func (c *Client) Quote(ctx context.Context, r Request) (*Quote, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	u, err := r.validate()
	if err != nil {
		return nil, err
	}
	resp, err := c.send(ctx, r.Method, u, &r, r.Body, "", "")
	if err != nil {
		return nil, err
	}
	return c.quote(resp, &r)
}

func (c *Client) quote(resp *response, r *Request) (*Quote, error) {
	q := &Quote{URL: resp.url.String(), Host: resp.url.Hostname(), Status: resp.status}
	if resp.status != http.StatusPaymentRequired {
		q.Free = true
		return q, nil
	}
	if resp.truncated {
		return nil, &UnpayableError{Reasons: []string{fmt.Sprintf("the 402 body is larger than %d bytes", x402.MaxBodyBytes)}, Err: x402.ErrTooLarge}
	}
	pr, err := x402.ParseResponse(resp.header, resp.body)
	if err != nil {
		return nil, &UnpayableError{Reasons: []string{err.Error()}, Err: err}
	}
	q.Required = pr
	q.Options = assess(pr, c.cfg.Registry, c.cfg.Policy, policy.Request{URL: q.URL, Host: q.Host, MaxPrice: r.MaxPrice})
	q.Chosen = choose(q.Options)
	return q, nil
}

// Fetch gets the resource, paying for it if the server asks and the policy
// allows. It makes at most one payment.
func (c *Client) Fetch(ctx context.Context, r Request) (*Result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	u, err := r.validate()
	if err != nil {
		return nil, err
	}
	first, err := c.send(ctx, r.Method, u, &r, r.Body, "", "")
	if err != nil {
		return nil, err
	}
	if first.status != http.StatusPaymentRequired {
		return resultOf(first, nil), nil
	}
	p, err := c.prepare(first, &r)
	if err != nil {
		return nil, err
	}

	// The retry repeats the request to the URL that issued the 402. If a
	// redirect turned the method into GET, the body went with it.
	body := r.Body
	if first.method != r.Method {
		body = nil
	}
	c.log.Info("payment signed", "host", p.quote.Host, "amount", p.receipt.Amount, "token", p.receipt.Token,
		"network", p.receipt.Network, "pay_to", p.receipt.PayTo, "nonce", p.receipt.Nonce)
	second, err := c.send(ctx, first.method, first.url, &r, body, p.headerName, p.headerValue)
	if err != nil {
		// The signature may have reached the server: report, never re-sign.
		return nil, &PaymentFailedError{Receipt: p.receipt, ServerError: err.Error()}
	}
	return c.finish(second, p)
}

// pending is a signed payment ready to send.
type pending struct {
	quote       *Quote
	headerName  string
	headerValue string
	receipt     *Receipt
}

// prepare turns a 402 into a signed payment header: parse, choose, policy,
// sign, encode. It is all of the client's own work on a paid fetch.
func (c *Client) prepare(first *response, r *Request) (*pending, error) {
	q, err := c.quote(first, r)
	if err != nil {
		return nil, err
	}
	if q.Chosen == nil {
		reasons := make([]string, 0, len(q.Options))
		for _, o := range q.Options {
			reasons = append(reasons, o.Reason)
		}
		return nil, &UnpayableError{Required: q.Required, Reasons: reasons}
	}
	if !q.Chosen.Verdict.Allowed {
		return nil, &DeniedError{Quote: q, Verdict: q.Chosen.Verdict}
	}
	if c.cfg.Signer == nil {
		return nil, NoWalletError{}
	}
	opt, tok := q.Chosen.Wire, *q.Chosen.Token
	nonce, err := newNonce()
	if err != nil {
		return nil, err
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
	approval, err := c.cfg.Policy.Approve(policy.Request{URL: q.URL, Host: q.Host, Token: tok, PayTo: opt.PayTo, Amount: opt.Amount, MaxPrice: r.MaxPrice}, auth, now)
	if err != nil {
		var d *policy.DeniedError
		if errors.As(err, &d) {
			return nil, &DeniedError{Quote: q, Verdict: policy.Verdict{Reasons: d.Reasons}}
		}
		return nil, err
	}
	sig, err := c.cfg.Signer.Sign(approval)
	if err != nil {
		return nil, fmt.Errorf("pay: signing: %w", err)
	}
	name, value, err := x402.PaymentHeader(q.Required, opt, auth, sig)
	if err != nil {
		return nil, fmt.Errorf("pay: encoding the payment: %w", err)
	}
	return &pending{quote: q, headerName: name, headerValue: value, receipt: &Receipt{
		Amount:       tokens.FormatUnits(opt.Amount, tok.Decimals),
		AmountAtomic: opt.Amount.String(),
		Token:        tok.Symbol,
		Asset:        tok.Address.Hex(),
		Network:      tok.Network,
		PayTo:        opt.PayTo.Hex(),
		Payer:        auth.From.Hex(),
		Nonce:        fmt.Sprintf("0x%x", nonce),
		ValidBefore:  auth.ValidBefore.Int64(),
	}}, nil
}

// finish reads the answer to the paid retry.
func (c *Client) finish(resp *response, p *pending) (*Result, error) {
	st, stErr := x402.ParseSettlement(resp.header)
	if stErr != nil {
		c.log.Warn("unreadable settlement header", "host", p.quote.Host, "nonce", p.receipt.Nonce, "err", stErr)
	}
	if st != nil && st.Success {
		p.receipt.Settled = true
		p.receipt.Transaction = st.Transaction
		if st.Payer != "" && st.Payer != p.receipt.Payer {
			c.log.Warn("settlement names another payer", "host", p.quote.Host, "payer", st.Payer)
		}
	}
	ok := resp.status >= 200 && resp.status < 400
	if !ok || (st != nil && !st.Success) {
		e := &PaymentFailedError{Status: resp.status, Receipt: p.receipt, Settlement: st}
		if resp.status == http.StatusPaymentRequired {
			if pr, err := x402.ParseResponse(resp.header, resp.body); err == nil {
				e.ServerError = pr.Error
			}
		}
		e.Body = clip(string(resp.body), 500)
		c.log.Warn("payment not accepted", "host", p.quote.Host, "status", resp.status, "nonce", p.receipt.Nonce)
		return nil, e
	}
	c.log.Info("payment settled", "host", p.quote.Host, "amount", p.receipt.Amount, "network", p.receipt.Network,
		"transaction", p.receipt.Transaction, "nonce", p.receipt.Nonce)
	return resultOf(resp, p.receipt), nil
}

func resultOf(resp *response, rc *Receipt) *Result {
	return &Result{
		URL:         resp.url.String(),
		Status:      resp.status,
		ContentType: resp.header.Get("Content-Type"),
		Body:        resp.body,
		Truncated:   resp.truncated,
		Payment:     rc,
	}
}
