package localnet

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// The payment-identifier extension (x402 specs/extensions/payment_identifier.md)
// lets a client that lost the response to a paid request send the identical
// payment again and get that response back, instead of paying twice. The
// paid API implements the resource-server side:
//
//   - the id is looked up before the payment is verified: a resend of a
//     settled payment would fail verification (its nonce is used);
//   - the id is bound to the exact request — method, path and query, body,
//     and the decoded payment payload — so a lookup, which runs before any
//     signature is checked, cannot hand one request's response to another;
//   - what is stored is the response as it was sent, PAYMENT-RESPONSE
//     included, and only once the payment's fate was decided by /settle: a
//     refusal, a failed handler or an unanswered /settle charged nothing
//     for certain or is unknown, and storing it would block a retry.

const (
	extPaymentIdentifier = "payment-identifier"

	// DefaultInFlightWait is how long a resend waits for the first request
	// with its payment id to finish when PaymentIdentifier.InFlightWait is 0.
	DefaultInFlightWait = 10 * time.Second

	// maxPaymentIDs bounds the ids a paid API remembers; the oldest entry
	// whose request has finished goes first.
	maxPaymentIDs = 10_000

	minPaymentIDLen = 16
	maxPaymentIDLen = 128
)

// paymentIdentifierSchema is the JSON Schema of the extension's info that
// the specification has servers send with it.
var paymentIdentifierSchema = rawJSON(`{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",` +
	`"properties":{"required":{"type":"boolean"},"id":{"type":"string","minLength":16,"maxLength":128}},"required":["required"]}`)

// PaymentIdentifier configures the payment-identifier extension on a v2
// route: its 402 advertises extensions["payment-identifier"] and a payment
// carrying extensions["payment-identifier"].info.id is deduplicated:
//
//   - an id that is not 16-128 characters of A-Z a-z 0-9 _ - is 400 Bad
//     Request, and so is no id when Required;
//   - the same id with the identical request and payment replays the
//     stored response (status, headers with PAYMENT-RESPONSE, body) without
//     verifying, running the handler or settling again;
//   - the same id with any other request or payment is 409 Conflict;
//   - a resend while the first request with its id is still being served
//     waits for it (at most InFlightWait) and gets its response, or else
//     503 Service Unavailable with Retry-After: 1;
//   - a payment whose settlement came back settlement_pending keeps its
//     id: the resend settles it again (the facilitator reconciles the
//     broadcast transaction) and, once it settled, gets the resource
//     produced the first time — the handler does not run twice.
//
// Routes without it ignore the extension, like servers that do not support
// it. The store is in memory, per PaidAPI, bounded, and cleared by
// ForgetPaymentIDs.
type PaymentIdentifier struct {
	// Required is advertised as info.required and refuses payments without
	// an id.
	Required bool
	// InFlightWait bounds a resend's wait for the first request with its
	// id; 0 means DefaultInFlightWait.
	InFlightWait time.Duration
}

func (pi *PaymentIdentifier) wait() time.Duration {
	if pi.InFlightWait == 0 {
		return DefaultInFlightWait
	}
	return pi.InFlightWait
}

type paymentIdentifierExtension struct {
	Info struct {
		Required bool `json:"required"`
	} `json:"info"`
	Schema json.RawMessage `json:"schema"`
}

func advertisePaymentIdentifier(pi *PaymentIdentifier) *paymentIdentifierExtension {
	ext := &paymentIdentifierExtension{Schema: paymentIdentifierSchema}
	ext.Info.Required = pi.Required
	return ext
}

// paymentID reads extensions["payment-identifier"].info.id from a v2
// payment payload (already checked by checkJSON). No extension, or one
// without an id, is "". Keys are matched exactly, not case-folded as
// encoding/json would match struct fields.
func paymentID(payload []byte) (string, error) {
	var pp map[string]json.RawMessage
	if err := json.Unmarshal(payload, &pp); err != nil {
		return "", fmt.Errorf("invalid payment payload: %v", err)
	}
	var exts map[string]json.RawMessage
	if raw, ok := pp["extensions"]; !ok || string(raw) == "null" {
		return "", nil
	} else if err := json.Unmarshal(raw, &exts); err != nil {
		return "", errors.New("payment payload extensions must be an object")
	}
	raw, ok := exts[extPaymentIdentifier]
	if !ok {
		return "", nil
	}
	var ext map[string]json.RawMessage
	if err := json.Unmarshal(raw, &ext); err != nil {
		return "", errors.New("extensions.payment-identifier must be an object")
	}
	var info map[string]json.RawMessage
	if raw, ok := ext["info"]; !ok || string(raw) == "null" {
		return "", nil
	} else if err := json.Unmarshal(raw, &info); err != nil {
		return "", errors.New("extensions.payment-identifier.info must be an object")
	}
	rawID, ok := info["id"]
	if !ok || string(rawID) == "null" {
		return "", nil
	}
	var id string
	if err := json.Unmarshal(rawID, &id); err != nil {
		return "", errors.New("extensions.payment-identifier.info.id must be a string")
	}
	if !validPaymentID(id) {
		return "", fmt.Errorf("extensions.payment-identifier.info.id (%d bytes) must be %d to %d characters of A-Z, a-z, 0-9, _ and -",
			len(id), minPaymentIDLen, maxPaymentIDLen)
	}
	return id, nil
}

func validPaymentID(id string) bool {
	if len(id) < minPaymentIDLen || len(id) > maxPaymentIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// requestFingerprint hashes what a payment id is bound to: method, path and
// query, body and the decoded payment payload. It reads the body (bounded)
// and puts it back for the handler.
func requestFingerprint(w http.ResponseWriter, r *http.Request, payload []byte) ([sha256.Size]byte, error) {
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
		if err != nil {
			return [sha256.Size]byte{}, err
		}
		body = b
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	h := sha256.New()
	for _, part := range [][]byte{[]byte(r.Method), []byte(r.URL.RequestURI()), body, payload} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum, nil
}

// lookupPaymentID reads the payment's id and looks it up. answered says it
// answered the request itself: 400, 409, 503, or the stored response.
// Otherwise entry is nil for a payment without an id, or the entry the
// caller now holds and must finishID; resettle says the entry's payment
// only needs settling again.
func (p *PaidAPI) lookupPaymentID(w http.ResponseWriter, r *http.Request, pi *PaymentIdentifier, payload []byte) (entry *idEntry, resettle, answered bool) {
	id, err := paymentID(payload)
	switch {
	case err != nil:
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: err.Error()})
		return nil, false, true
	case id == "" && pi.Required:
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: "this resource requires extensions.payment-identifier.info.id in the payment"})
		return nil, false, true
	case id == "":
		return nil, false, false
	}
	fp, err := requestFingerprint(w, r, payload)
	if err != nil {
		status := http.StatusBadRequest
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		writeJSON(w, status, errorResponse{Error: "reading request body: " + err.Error()})
		return nil, false, true
	}
	c, e := p.claimID(r.Context(), id, fp, pi.wait())
	switch c {
	case claimReplay:
		e.response.flush(w)
	case claimConflict:
		writeJSON(w, http.StatusConflict, errorResponse{Error: "payment identifier already used for a different request or payment"})
	case claimBusy:
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, errorResponse{Error: "a request with this payment identifier is still being served; resend the same payment later"})
	default:
		return e, c == claimResettle, false
	}
	return nil, false, true
}

// --- the store ----------------------------------------------------------

type idState int

const (
	idInFlight idState = iota // a request holding the id is being served
	idStored                  // response holds the answer to replay
	idPending                 // settlement came back pending; unsettled can settle again
)

// idEntry is what the paid API remembers of one payment id. Its fields
// are guarded by PaidAPI.idsMu; response and unsettled are not changed once
// set, so they may be read after the lock is released.
type idEntry struct {
	id          string
	fingerprint [sha256.Size]byte
	state       idState
	done        chan struct{} // closed when the request holding the entry finishes
	finished    bool          // done is closed
	response    *bufferedResponse
	unsettled   *unsettled
	elem        *list.Element
}

type claim int

const (
	claimNew      claim = iota // first request with the id: serve it
	claimReplay                // send entry.response
	claimConflict              // 409
	claimBusy                  // 503: the first request is still being served
	claimResettle              // settle entry.unsettled again
)

// claimID looks id up, waiting at most wait (or until ctx ends) for a
// request that holds it. claimNew and claimResettle hand the entry to the
// caller, who must finishID it.
func (p *PaidAPI) claimID(ctx context.Context, id string, fp [sha256.Size]byte, wait time.Duration) (claim, *idEntry) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		p.idsMu.Lock()
		e := p.ids[id]
		switch {
		case e == nil:
			e = &idEntry{id: id, fingerprint: fp, state: idInFlight, done: make(chan struct{})}
			p.insertID(e)
			p.idsMu.Unlock()
			return claimNew, e
		case e.fingerprint != fp:
			p.idsMu.Unlock()
			return claimConflict, nil
		case e.state == idStored:
			p.idsMu.Unlock()
			return claimReplay, e
		case e.state == idPending:
			e.state, e.done, e.finished = idInFlight, make(chan struct{}), false
			p.idsMu.Unlock()
			return claimResettle, e
		}
		done := e.done
		p.idsMu.Unlock()
		select {
		case <-done:
			// Look again: the entry is now stored, pending, or gone (the
			// first request charged nothing, so this one is served).
		case <-timer.C:
			return claimBusy, nil
		case <-ctx.Done():
			return claimBusy, nil
		}
	}
}

// insertID adds e, first evicting the oldest finished entries beyond the
// bound. Entries still in flight are never evicted, so the store can pass
// the bound only by the number of requests being served.
func (p *PaidAPI) insertID(e *idEntry) {
	for p.idOrder.Len() >= p.maxIDs {
		var victim *list.Element
		for el := p.idOrder.Front(); el != nil; el = el.Next() {
			if el.Value.(*idEntry).state != idInFlight {
				victim = el
				break
			}
		}
		if victim == nil {
			break
		}
		delete(p.ids, victim.Value.(*idEntry).id)
		p.idOrder.Remove(victim)
	}
	p.ids[e.id] = e
	e.elem = p.idOrder.PushBack(e)
}

// finishID records what became of the request holding e: the response it
// sent when /settle decided the payment, the unsettled payment when
// settlement is pending, or nothing (the entry is dropped) otherwise. It is
// idempotent.
func (p *PaidAPI) finishID(e *idEntry, sent *bufferedResponse, res payResult) {
	p.idsMu.Lock()
	defer p.idsMu.Unlock()
	if e.finished {
		return
	}
	switch {
	case res.pending != nil:
		e.state, e.unsettled = idPending, res.pending
	case res.decided:
		e.state, e.response, e.unsettled = idStored, sent, nil
	default:
		if p.ids[e.id] == e {
			delete(p.ids, e.id)
			p.idOrder.Remove(e.elem)
		}
	}
	e.finished = true
	close(e.done)
}

// ForgetPaymentIDs empties the payment-identifier store, like a restart of
// a server that keeps it in memory: a resend of an earlier payment is then
// served as new (verified again, so a payment that settled is refused with
// invalid_exact_evm_nonce_already_used). Without it, a DropAfterSettle
// "crash" behaves as a restart that kept the store. Requests under way are
// not disturbed; what they would store is lost.
func (p *PaidAPI) ForgetPaymentIDs() {
	p.idsMu.Lock()
	defer p.idsMu.Unlock()
	p.ids = make(map[string]*idEntry)
	p.idOrder = list.New()
}

// DropAfterSettle makes the next n requests whose payment settled lose
// their answer: the paid API settles, stores the response for the payment
// id as usual, then closes the connection without writing anything, as a
// server crashing right after taking the payment would. n <= 0 cancels.
//
// A Go client whose request went out on a reused keep-alive connection
// resends a GET (or any request net/http deems replayable) by itself when
// the connection closes without an answer; a test that wants to see the
// loss uses a transport without keep-alives.
func (p *PaidAPI) DropAfterSettle(n int) {
	p.dropMu.Lock()
	defer p.dropMu.Unlock()
	p.drops = max(n, 0)
}

func (p *PaidAPI) takeDrop() bool {
	p.dropMu.Lock()
	defer p.dropMu.Unlock()
	if p.drops == 0 {
		return false
	}
	p.drops--
	return true
}
