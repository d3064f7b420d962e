package pay

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/x402-mcp/x402-mcp/x402"
)

// Paying on the first request. When this client has seen the terms for the
// same method and URL a moment ago (a quote, a 402), Fetch sends the
// payment with its first request and saves the unpaid round trip. Only the
// network round trip is saved: the terms are read, chosen and judged by
// the very functions that judge a fresh 402, and pre-payment happens only
// when that verdict is "allowed" with nothing missing — never for a payment
// that needs a human's approval, a denied one or one the ledger refuses
// (those take the ordinary path and its fresh 402, which decides). It is
// off for a host with a payment of unknown outcome.
//
// What was sent counts as spent until proven otherwise. If the server
// answers 402 anyway: on the very terms that were signed, the same
// authorization is re-sent once (it can settle at most once); on other
// terms, the first payment is left unknown (counted until the chain proves
// it unused), stops standing for the request, and the new terms are judged
// afresh as in the ordinary flow, whose one paid attempt ends the call.

// Bounds of the known-terms cache: entries, and bytes of one 402 (header
// and body) kept.
const (
	maxKnownTerms     = 256
	maxKnownTermBytes = 16 << 10
)

// knownTerms remembers recent 402s by method and URL.
type knownTerms struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]knownEntry
}

type knownEntry struct {
	header string // PAYMENT-REQUIRED, "" for a v1 402
	body   []byte
	seen   time.Time
}

func knownKey(method string, u *url.URL) string { return method + " " + u.String() }

// remember keeps the 402 resp, the answer to an unpaid method request for
// u, if it can be paid on first request next time: it came from u itself
// (no redirect), with the same method, and the client could pick an option
// from it.
func (k *knownTerms) remember(method string, u *url.URL, resp *response, q *Quote, now time.Time) {
	if k == nil {
		return
	}
	key := knownKey(method, u)
	header := resp.header.Get(x402.HeaderPaymentRequired)
	if resp.status != http.StatusPaymentRequired || resp.truncated || q == nil || q.Chosen == nil ||
		resp.method != method || resp.url.String() != u.String() || len(header)+len(resp.body) > maxKnownTermBytes {
		k.forget(method, u)
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.m[key]; !ok && len(k.m) >= maxKnownTerms {
		k.evict(now)
	}
	k.m[key] = knownEntry{header: header, body: bytes.Clone(resp.body), seen: now}
}

// evict drops the expired entries, or else the oldest one. k.mu is held.
func (k *knownTerms) evict(now time.Time) {
	var oldest string
	var at time.Time
	for key, e := range k.m {
		if now.Sub(e.seen) >= k.ttl {
			delete(k.m, key)
			continue
		}
		if oldest == "" || e.seen.Before(at) {
			oldest, at = key, e.seen
		}
	}
	if len(k.m) >= maxKnownTerms {
		delete(k.m, oldest)
	}
}

func (k *knownTerms) forget(method string, u *url.URL) {
	if k == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, knownKey(method, u))
}

// lookup returns the remembered 402 for method and u as a response, or nil
// when there is none younger than the TTL.
func (k *knownTerms) lookup(method string, u *url.URL, now time.Time) *response {
	if k == nil {
		return nil
	}
	k.mu.Lock()
	e, ok := k.m[knownKey(method, u)]
	k.mu.Unlock()
	if !ok || now.Sub(e.seen) >= k.ttl || now.Before(e.seen) {
		return nil
	}
	h := http.Header{}
	if e.header != "" {
		h.Set(x402.HeaderPaymentRequired, e.header)
	}
	return &response{url: u, method: method, status: http.StatusPaymentRequired, header: h, body: e.body}
}

// prepay pays on the first request when the terms are known and the
// ordinary flow would pay them without asking anyone. handled is false
// when it did not send anything: the caller then takes the ordinary path.
func (c *Client) prepay(ctx context.Context, u *url.URL, r *Request) (res *Result, handled bool, err error) {
	if c.known == nil || c.cfg.Signer == nil || r.HumanApproved != nil {
		return nil, false, nil
	}
	known := c.known.lookup(r.Method, u, c.cfg.Now())
	if known == nil {
		return nil, false, nil
	}
	q, err := c.quote(known, r)
	if err != nil || q.Chosen == nil {
		return nil, false, nil
	}
	// The same judgement as decide's on a fresh 402; anything but a plain
	// "allowed" goes the ordinary way, where a fresh 402 decides.
	if err := c.judgeBudgets(ctx, q, false); err != nil || q.Judgement.Verdict != VerdictAllowed || len(q.Missing) > 0 {
		return nil, false, nil
	}
	if unresolved, err := c.cfg.Ledger.Unresolved(ctx, q.Host); err != nil || unresolved {
		return nil, false, nil
	}
	p, err := c.authorize(ctx, q, r, nil)
	if err != nil {
		// Nothing was recorded or sent: a budget, an earlier payment for
		// this request, anything else is for the ordinary flow to meet
		// on a fresh 402.
		return nil, false, nil
	}
	c.log.Info("payment signed on known terms", "host", q.Host, "amount", p.receipt.AmountText(), "token", p.receipt.Token,
		"network", p.receipt.Network, "pay_to", p.receipt.PayTo.Hex(), "nonce", p.receipt.NonceHex(), "ledger_id", p.record.ID)
	resp, err := c.send(ctx, r.Method, u, r, r.Body, p.headerName, p.headerValue)
	if err != nil {
		c.unknown(p, nil, "no answer to the paid request (timeout or reset): "+err.Error())
		return nil, true, &PaymentFailedError{Receipt: p.receipt, ServerError: err.Error()}
	}
	if resp.status != http.StatusPaymentRequired {
		res, err := c.finish(resp, p)
		if err == nil {
			c.known.touch(r.Method, u, c.cfg.Now()) // the terms were right
		}
		return res, true, err
	}
	// Asked again. The answer may still be a settlement that failed (only
	// a settlement header, no terms): finish reports it.
	again, qerr := c.quote(resp, r)
	if qerr != nil || again.Chosen == nil {
		c.known.forget(r.Method, u)
		res, err := c.finish(resp, p)
		return res, true, err
	}
	if sameOffer(q, again) {
		// The very terms that were signed: the same authorization again,
		// never a new one. It settles at most once.
		c.log.Info("payment re-sent: the server asked again on the terms it was paid", "host", q.Host, "nonce", p.receipt.NonceHex(), "ledger_id", p.record.ID)
		p.resent = true
		second, err := c.send(ctx, r.Method, u, r, r.Body, p.headerName, p.headerValue)
		if err != nil {
			c.unknown(p, nil, "no answer to the re-sent payment (timeout or reset): "+err.Error())
			return nil, true, &PaymentFailedError{Receipt: p.receipt, ServerError: err.Error(), Resent: true}
		}
		res, err := c.finish(second, p)
		return res, true, err
	}
	// Other terms: the first authorization stays counted until the chain
	// proves it unused; the new terms are judged from scratch.
	c.supersede(p, "the server answered 402 to a payment on known terms, asking for other terms; judged afresh")
	c.known.remember(r.Method, u, resp, again, c.cfg.Now())
	res, err = c.payFor(ctx, resp, again, r)
	return res, true, err
}

// touch marks the terms for method and u as seen again at now.
func (k *knownTerms) touch(method string, u *url.URL, now time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if e, ok := k.m[knownKey(method, u)]; ok {
		e.seen = now
		k.m[knownKey(method, u)] = e
	}
}

// sameOffer reports whether two quotes chose the same option, byte for
// byte, in the same protocol version: a payment signed for one is exactly
// what the other asks.
func sameOffer(a, b *Quote) bool {
	return a.Required != nil && b.Required != nil && a.Required.Version == b.Required.Version &&
		a.Chosen != nil && b.Chosen != nil && bytes.Equal(a.Chosen.Wire.Raw, b.Chosen.Wire.Raw) && a.URL == b.URL
}
