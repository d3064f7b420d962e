package localnet

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/tidwall/gjson"
)

// idRoutes is DefaultRoutes with the payment-identifier extension on every
// priced v2 route.
func idRoutes(pi PaymentIdentifier) []Route {
	routes := DefaultRoutes()
	for i := range routes {
		if routes[i].Version == 2 && routes[i].priced() {
			cfg := pi
			routes[i].PaymentIdentifier = &cfg
		}
	}
	return routes
}

// withPaymentID returns o with id put into the payment-identifier
// extension the server advertised, as a client adds it to its echo.
func withPaymentID(t testing.TB, o offer, id any) offer {
	t.Helper()
	var ext map[string]map[string]any
	if err := json.Unmarshal(o.extensions, &ext); err != nil || ext["payment-identifier"] == nil {
		t.Fatalf("402 without the payment-identifier extension: %s", o.extensions)
	}
	ext["payment-identifier"]["info"].(map[string]any)["id"] = id
	o.extensions = mustJSON(t, ext)
	return o
}

// signedPayment reads the 402 of url and signs a payment for it whose
// PAYMENT-SIGNATURE carries id (nil: the echo without one).
func signedPayment(t testing.TB, p *payer, method, url string, body []byte, id any) (header string, a authorization) {
	t.Helper()
	resp, data := do(t, method, url, body, nil)
	o := read402(t, resp, data)
	if id != nil {
		o = withPaymentID(t, o, id)
	}
	a, sig := authorize(t, p, o, payOptions{})
	_, header = buildPaymentHeader(t, o, a, sig, payOptions{})
	return header, a
}

// send makes one request with the PAYMENT-SIGNATURE header over client,
// returning the transport error rather than failing on it.
func send(client *http.Client, method, url string, body []byte, header string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("PAYMENT-SIGNATURE", header)
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp, data, err
}

// sendOK is send on the default client, failing the test on a transport
// error.
func sendOK(t testing.TB, method, url string, body []byte, header string) (*http.Response, []byte) {
	t.Helper()
	resp, data, err := send(http.DefaultClient, method, url, body, header)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp, data
}

// noKeepAlive is a client on which a dropped connection is an error: with
// keep-alives, net/http resends a GET that was lost on a reused connection.
func noKeepAlive() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}

// sameResponse asserts that b replays a: status, PAYMENT-RESPONSE,
// content type and body.
func sameResponse(t *testing.T, a *http.Response, aBody []byte, b *http.Response, bBody []byte) {
	t.Helper()
	for _, h := range []string{"Payment-Response", "Content-Type"} {
		if a.Header.Get(h) != b.Header.Get(h) {
			t.Errorf("%s differs: %q then %q", h, a.Header.Get(h), b.Header.Get(h))
		}
	}
	if a.StatusCode != b.StatusCode || !bytes.Equal(aBody, bBody) {
		t.Errorf("replay %d %s, want %d %s", b.StatusCode, bBody, a.StatusCode, aBody)
	}
}

func TestPaymentIdentifierAdvertised(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{Routes: idRoutes(PaymentIdentifier{Required: true})})
	resp, body := do(t, "GET", n.APIURL+"/v2/weather?city=Paris", nil, nil)
	o := read402(t, resp, body)
	want := `{"info":{"required":true},"schema":{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",` +
		`"properties":{"required":{"type":"boolean"},"id":{"type":"string","minLength":16,"maxLength":128}},"required":["required"]}}`
	if got := gjson.GetBytes(o.extensions, "payment-identifier").Raw; got != want {
		t.Errorf("extensions.payment-identifier\n got %s\nwant %s", got, want)
	}
	if !gjson.GetBytes(o.extensions, "bazaar.info").Exists() {
		t.Errorf("bazaar extension lost: %s", o.extensions)
	}
	// A route without the option says nothing about it.
	m := startNetwork(t, NetworkConfig{})
	resp, body = do(t, "GET", m.APIURL+"/v2/weather?city=Paris", nil, nil)
	if o := read402(t, resp, body); gjson.GetBytes(o.extensions, "payment-identifier").Exists() {
		t.Errorf("advertised without the option: %s", o.extensions)
	}
}

// TestPaymentIdentifierReplay: the identical payment with the same id gets
// the stored response back — even though its authorization is now used —
// without verification, handler or settlement.
func TestPaymentIdentifierReplay(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{Routes: idRoutes(PaymentIdentifier{})})
	p := newPayer(t, n, 1_000_000)
	url := n.APIURL + "/v2/summarize"
	text := []byte(`{"text":"Never pay twice. Resend the same payment."}`)
	header, a := signedPayment(t, p, "POST", url, text, "pay_0123456789abcdef")

	first, firstBody := sendOK(t, "POST", url, text, header)
	checkSettled(t, n, p, paid{auth: a, resp: first, body: firstBody}, "PAYMENT-RESPONSE", 30_000)
	verifies, settles := n.Facilitator.VerifyCalls(), n.Facilitator.SettleCalls()

	for range 2 {
		again, againBody := sendOK(t, "POST", url, text, header)
		sameResponse(t, first, firstBody, again, againBody)
	}
	if n.API.Hits("/v2/summarize") != 1 || n.Facilitator.VerifyCalls() != verifies || n.Facilitator.SettleCalls() != settles {
		t.Errorf("replay ran something: hits %d, verify %d->%d, settle %d->%d", n.API.Hits("/v2/summarize"),
			verifies, n.Facilitator.VerifyCalls(), settles, n.Facilitator.SettleCalls())
	}
	checkOneTransfer(t, n, p, a, 30_000)
}

// TestPaymentIdentifierConflict: an id bound to one request and payment
// is refused with 409 for any other.
func TestPaymentIdentifierConflict(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{Routes: idRoutes(PaymentIdentifier{})})
	p := newPayer(t, n, 1_000_000)
	const id = "order-42_retry-safe"
	url := n.APIURL + "/v2/weather?city=Paris"
	header, a := signedPayment(t, p, "GET", url, nil, id)
	if resp, body := sendOK(t, "GET", url, nil, header); resp.StatusCode != 200 {
		t.Fatalf("first payment: %d %s", resp.StatusCode, body)
	}

	// A new signature under the same id.
	other, b := signedPayment(t, p, "GET", url, nil, id)
	// The same payment for another query.
	for name, tc := range map[string]struct{ url, header string }{
		"new signature": {url, other},
		"other query":   {n.APIURL + "/v2/weather?city=Oslo", header},
	} {
		resp, body := sendOK(t, "GET", tc.url, nil, tc.header)
		if resp.StatusCode != http.StatusConflict || resp.Header.Get("Payment-Response") != "" || !gjson.GetBytes(body, "error").Exists() {
			t.Errorf("%s: %d %s, want 409", name, resp.StatusCode, body)
		}
	}
	if authorizationUsed(t, n, p, b.Nonce) {
		t.Error("the conflicting payment was settled")
	}
	if n.API.Hits("/v2/weather") != 1 {
		t.Errorf("Hits %d", n.API.Hits("/v2/weather"))
	}
	checkOneTransfer(t, n, p, a, 10_000)
}

// TestPaymentIdentifierOptional: on a route where the id is optional, a
// payment without one is served as usual, and its resend is a new request.
func TestPaymentIdentifierOptional(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{Routes: idRoutes(PaymentIdentifier{})})
	p := newPayer(t, n, 1_000_000)
	url := n.APIURL + "/v2/weather?city=Turin"
	header, a := signedPayment(t, p, "GET", url, nil, nil)
	resp, body := sendOK(t, "GET", url, nil, header)
	checkSettled(t, n, p, paid{auth: a, resp: resp, body: body}, "PAYMENT-RESPONSE", 10_000)
	resp, body = sendOK(t, "GET", url, nil, header)
	if o := read402(t, resp, body); o.error != reasonNonceUsed {
		t.Errorf("resend without an id: %q", o.error)
	}
	checkOneTransfer(t, n, p, a, 10_000)
}

// TestPaymentIdentifierBoundToBody: the same payment and id with another
// request body is a different request.
func TestPaymentIdentifierBoundToBody(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{Routes: idRoutes(PaymentIdentifier{})})
	p := newPayer(t, n, 1_000_000)
	url := n.APIURL + "/v2/summarize"
	text := []byte(`{"text":"One. Two."}`)
	header, a := signedPayment(t, p, "POST", url, text, "pay_body_bound_000001")
	if resp, body := sendOK(t, "POST", url, text, header); resp.StatusCode != 200 {
		t.Fatalf("first: %d %s", resp.StatusCode, body)
	}
	if resp, body := sendOK(t, "POST", url, []byte(`{"text":"Three."}`), header); resp.StatusCode != http.StatusConflict {
		t.Errorf("other body: %d %s, want 409", resp.StatusCode, body)
	}
	checkOneTransfer(t, n, p, a, 30_000)
}

// TestPaymentIdentifierRequiredAndMalformed: a missing id where one is
// required and a malformed id are 400 before anything is verified.
func TestPaymentIdentifierRequiredAndMalformed(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{Routes: idRoutes(PaymentIdentifier{Required: true})})
	p := newPayer(t, n, 1_000_000)
	url := n.APIURL + "/v2/weather?city=Lima"
	for name, id := range map[string]any{
		"no id":       nil,
		"15 chars":    strings.Repeat("a", 15),
		"129 chars":   strings.Repeat("a", 129),
		"space":       "pay 0123456789abcdef",
		"dot":         "pay.0123456789abcdef",
		"non-ASCII":   "pay_0123456789abcdé",
		"number":      1234567890123456789,
		"object":      map[string]any{"id": "pay_0123456789abcdef"},
		"empty":       "",
		"slash":       "pay/0123456789abcdef",
		"percent-esc": "pay%200123456789abcd",
	} {
		header, _ := signedPayment(t, p, "GET", url, nil, id)
		resp, body := sendOK(t, "GET", url, nil, header)
		if resp.StatusCode != http.StatusBadRequest || !gjson.GetBytes(body, "error").Exists() {
			t.Errorf("%s: %d %s, want 400", name, resp.StatusCode, body)
		}
	}
	if n.Facilitator.VerifyCalls() != 0 || n.API.Hits("/v2/weather") != 0 {
		t.Fatalf("a refused id reached verification (%d) or the handler (%d)", n.Facilitator.VerifyCalls(), n.API.Hits("/v2/weather"))
	}
	for _, id := range []string{strings.Repeat("Z", 16), strings.Repeat("_-9aZ", 25) + "abc"} {
		header, _ := signedPayment(t, p, "GET", url, nil, id)
		if resp, body := sendOK(t, "GET", url, nil, header); resp.StatusCode != 200 {
			t.Errorf("id of %d chars: %d %s", len(id), resp.StatusCode, body)
		}
	}
}

// TestPaymentIdentifierIgnoredWithoutOption: a route that does not offer
// the extension treats a resend as a new payment, which the used nonce
// refuses; nothing is paid twice either way.
func TestPaymentIdentifierIgnoredWithoutOption(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	p := newPayer(t, n, 1_000_000)
	url := n.APIURL + "/v2/weather?city=Rome"
	resp, data := do(t, "GET", url, nil, nil)
	o := read402(t, resp, data)
	// The client adds the extension although the server did not offer it.
	ext := map[string]any{}
	if err := json.Unmarshal(o.extensions, &ext); err != nil {
		t.Fatal(err)
	}
	ext["payment-identifier"] = map[string]any{"info": map[string]any{"required": false, "id": "pay_0123456789abcdef"}}
	o.extensions = mustJSON(t, ext)
	a, sig := authorize(t, p, o, payOptions{})
	_, header := buildPaymentHeader(t, o, a, sig, payOptions{})

	if resp, body := sendOK(t, "GET", url, nil, header); resp.StatusCode != 200 {
		t.Fatalf("first: %d %s", resp.StatusCode, body)
	}
	resp, body := sendOK(t, "GET", url, nil, header)
	if got := read402(t, resp, body); got.error != reasonNonceUsed {
		t.Errorf("resend to a server without the extension: %q", got.error)
	}
	checkOneTransfer(t, n, p, a, 10_000)
}

// TestPaymentIdentifierInFlight: a resend that arrives while the first
// request is still settling waits for it and gets its response.
func TestPaymentIdentifierInFlight(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{Routes: idRoutes(PaymentIdentifier{})})
	p := newPayer(t, n, 1_000_000)
	url := n.APIURL + "/v2/report"
	header, a := signedPayment(t, p, "GET", url, nil, "pay_inflight_0000000001")
	n.Facilitator.SetFault(Fault{After: time.Second, Times: 1})

	type answer struct {
		resp *http.Response
		body []byte
	}
	firstDone := make(chan answer, 1)
	go func() {
		resp, body := sendOK(goroutineTB{t}, "GET", url, nil, header)
		firstDone <- answer{resp, body}
	}()
	eventually(t, 10*time.Second, "the first request never reached /settle", func() bool { return n.Facilitator.SettleCalls() == 1 })
	again, againBody := sendOK(t, "GET", url, nil, header)
	first := <-firstDone
	if first.resp.StatusCode != 200 {
		t.Fatalf("first: %d %s", first.resp.StatusCode, first.body)
	}
	sameResponse(t, first.resp, first.body, again, againBody)
	if n.API.Hits("/v2/report") != 1 || n.Facilitator.VerifyCalls() != 1 || n.Facilitator.SettleCalls() != 1 {
		t.Errorf("hits %d, verify %d, settle %d", n.API.Hits("/v2/report"), n.Facilitator.VerifyCalls(), n.Facilitator.SettleCalls())
	}
	checkOneTransfer(t, n, p, a, 500_000)
}

// TestPaymentIdentifierInFlightBusy: past InFlightWait a resend gets a
// retryable 503; once the first request finished, its response.
func TestPaymentIdentifierInFlightBusy(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{Routes: idRoutes(PaymentIdentifier{InFlightWait: 50 * time.Millisecond})})
	p := newPayer(t, n, 1_000_000)
	url := n.APIURL + "/v2/report"
	header, a := signedPayment(t, p, "GET", url, nil, "pay_busy_000000000001")
	n.Facilitator.SetFault(Fault{After: 2 * time.Second, Times: 1})

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sendOK(goroutineTB{t}, "GET", url, nil, header)
	}()
	eventually(t, 10*time.Second, "the first request never reached /settle", func() bool { return n.Facilitator.SettleCalls() == 1 })
	resp, body := sendOK(t, "GET", url, nil, header)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || resp.Header.Get("Payment-Response") != "" {
		t.Errorf("resend while in flight: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	wg.Wait()
	resp, body = sendOK(t, "GET", url, nil, header)
	checkSettled(t, n, p, paid{auth: a, resp: resp, body: body}, "PAYMENT-RESPONSE", 500_000)
	if n.API.Hits("/v2/report") != 1 {
		t.Errorf("Hits %d", n.API.Hits("/v2/report"))
	}
	checkOneTransfer(t, n, p, a, 500_000)
}

// pendingTx decodes a PAYMENT-RESPONSE that must say
// settlement_pending and returns its transaction.
func pendingTx(t *testing.T, n *Network, resp *http.Response, body []byte) common.Hash {
	t.Helper()
	if resp.StatusCode != http.StatusPaymentRequired || string(body) != "{}" || resp.Header.Get("Payment-Required") != "" {
		t.Fatalf("pending answer: %d %s", resp.StatusCode, body)
	}
	s := settlement(t, resp, "PAYMENT-RESPONSE")
	if s.Success || s.ErrorReason != "settlement_pending" || len(s.Transaction) != 66 || s.Network != n.Chain.Network() {
		t.Fatalf("settlement %+v", s)
	}
	return common.HexToHash(s.Transaction)
}

// TestSettlementPendingReachesClient: when the facilitator keeps saying
// settlement_pending (the API asks twice, like the reference servers), the
// client gets a 402 with the pending settlement and its hash; the transfer
// sits unmined. A resend of the same payment, without a payment id, is
// verified again (the nonce is still unused), runs the handler again and
// settles by reconciling that same transaction.
func TestSettlementPendingReachesClient(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	p := newPayer(t, n, 1_000_000)
	url := n.APIURL + "/v2/weather?city=Kyiv"
	header, a := signedPayment(t, p, "GET", url, nil, nil)

	n.Facilitator.SetFault(Fault{Pending: true})
	resp, body := sendOK(t, "GET", url, nil, header)
	tx := pendingTx(t, n, resp, body)
	if n.Facilitator.SettleCalls() != 2 {
		t.Errorf("SettleCalls %d, want 2 (one retry of a pending settlement)", n.Facilitator.SettleCalls())
	}
	if _, err := n.Chain.Client().TransactionReceipt(context.Background(), tx); err != ethereum.NotFound {
		t.Fatalf("receipt of the pending transfer: %v", err)
	}
	if authorizationUsed(t, n, p, a.Nonce) {
		t.Fatal("pending transfer already mined")
	}

	n.Facilitator.ClearFault()
	resp, body = sendOK(t, "GET", url, nil, header)
	checkSettled(t, n, p, paid{auth: a, resp: resp, body: body}, "PAYMENT-RESPONSE", 10_000)
	if s := settlement(t, resp, "PAYMENT-RESPONSE"); s.Transaction != tx.Hex() {
		t.Errorf("settled by %s, want the pending %s", s.Transaction, tx.Hex())
	}
	if n.API.Hits("/v2/weather") != 2 {
		t.Errorf("Hits %d, want 2: without a payment id the resend is served anew", n.API.Hits("/v2/weather"))
	}
	checkOneTransfer(t, n, p, a, 10_000)
}

// TestSettlementPendingRetriedByAPI: one pending answer is absorbed by the
// API's own retry; the client sees the settlement of the broadcast
// transaction.
func TestSettlementPendingRetriedByAPI(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	p := newPayer(t, n, 1_000_000)
	n.Facilitator.SetFault(Fault{Pending: true, Times: 1})
	got := pay(t, p, "GET", n.APIURL+"/v2/weather?city=Nice", nil, payOptions{})
	checkSettled(t, n, p, got, "PAYMENT-RESPONSE", 10_000)
	if b := n.Facilitator.Broadcasts(); len(b) != 1 || settlement(t, got.resp, "PAYMENT-RESPONSE").Transaction != b[0].Tx.Hex() {
		t.Errorf("Broadcasts %v", b)
	}
	if n.Facilitator.SettleCalls() != 2 {
		t.Errorf("SettleCalls %d", n.Facilitator.SettleCalls())
	}
}

// TestPaymentIdentifierSettlementPending: a pending outcome is not stored
// as final. The resend with the same id settles again and releases the
// resource produced the first time; the handler runs once.
func TestPaymentIdentifierSettlementPending(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{Routes: idRoutes(PaymentIdentifier{})})
	p := newPayer(t, n, 1_000_000)
	url := n.APIURL + "/v2/weather?city=Kyiv"
	header, a := signedPayment(t, p, "GET", url, nil, "pay_pending_00000001")

	n.Facilitator.SetFault(Fault{Pending: true})
	resp, body := sendOK(t, "GET", url, nil, header)
	tx := pendingTx(t, n, resp, body)
	// Still pending on a resend while the facilitator says so.
	resp, body = sendOK(t, "GET", url, nil, header)
	if again := pendingTx(t, n, resp, body); again != tx {
		t.Errorf("second pending answer names %s, first %s", again.Hex(), tx.Hex())
	}

	n.Facilitator.ClearFault()
	resp, body = sendOK(t, "GET", url, nil, header)
	checkSettled(t, n, p, paid{auth: a, resp: resp, body: body}, "PAYMENT-RESPONSE", 10_000)
	if s := settlement(t, resp, "PAYMENT-RESPONSE"); s.Transaction != tx.Hex() || gjson.GetBytes(body, "city").String() != "Kyiv" {
		t.Errorf("settled by %s (pending %s), body %s", s.Transaction, tx.Hex(), body)
	}
	if n.API.Hits("/v2/weather") != 1 || n.Facilitator.VerifyCalls() != 1 {
		t.Errorf("hits %d, verify %d; want the first request's verification and output reused", n.API.Hits("/v2/weather"), n.Facilitator.VerifyCalls())
	}
	// Now final: replayed.
	again, againBody := sendOK(t, "GET", url, nil, header)
	sameResponse(t, resp, body, again, againBody)
	checkOneTransfer(t, n, p, a, 10_000)
}

// TestDropAfterSettleStoreSurvives: the server takes the payment and dies
// before answering; restarted with its store, it replays the response.
func TestDropAfterSettleStoreSurvives(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{Routes: idRoutes(PaymentIdentifier{})})
	p := newPayer(t, n, 1_000_000)
	url := n.APIURL + "/v2/weather?city=Oslo"
	header, a := signedPayment(t, p, "GET", url, nil, "pay_crash_000000000001")

	n.API.DropAfterSettle(1)
	if resp, body, err := send(noKeepAlive(), "GET", url, nil, header); err == nil {
		t.Fatalf("answered despite the drop: %d %s", resp.StatusCode, body)
	}
	checkOneTransfer(t, n, p, a, 10_000)

	resp, body := sendOK(t, "GET", url, nil, header)
	checkSettled(t, n, p, paid{auth: a, resp: resp, body: body}, "PAYMENT-RESPONSE", 10_000)
	if n.API.Hits("/v2/weather") != 1 || n.Facilitator.SettleCalls() != 1 {
		t.Errorf("hits %d, settle %d", n.API.Hits("/v2/weather"), n.Facilitator.SettleCalls())
	}
	checkOneTransfer(t, n, p, a, 10_000)
}

// TestDropAfterSettleStoreLost: the same crash, restarted without its
// store: the resend is a new request, refused because its nonce is used.
// The payer paid once and got nothing — what a client must reconcile on
// chain, never by signing again.
func TestDropAfterSettleStoreLost(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{Routes: idRoutes(PaymentIdentifier{})})
	p := newPayer(t, n, 1_000_000)
	url := n.APIURL + "/v2/weather?city=Oslo"
	header, a := signedPayment(t, p, "GET", url, nil, "pay_crash_000000000002")

	n.API.DropAfterSettle(1)
	if _, _, err := send(noKeepAlive(), "GET", url, nil, header); err == nil {
		t.Fatal("answered despite the drop")
	}
	n.API.ForgetPaymentIDs()
	resp, body := sendOK(t, "GET", url, nil, header)
	if o := read402(t, resp, body); o.error != reasonNonceUsed || resp.Header.Get("Payment-Response") != "" {
		t.Errorf("resend after losing the store: %q, PAYMENT-RESPONSE %q", o.error, resp.Header.Get("Payment-Response"))
	}
	checkOneTransfer(t, n, p, a, 10_000)
}

// TestDropAfterSettleCounts: the hook drops exactly the next n settled
// responses, in v1 and v2 alike, and leaves unpaid answers alone.
func TestDropAfterSettleCounts(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	p := newPayer(t, n, 1_000_000)
	client := noKeepAlive()
	n.API.DropAfterSettle(2)

	// A 402 and a failed handler are not settlements.
	if resp, _ := do(t, "GET", n.APIURL+"/v1/joke", nil, nil); resp.StatusCode != 402 {
		t.Fatalf("unpaid: %d", resp.StatusCode)
	}
	for _, url := range []string{n.APIURL + "/v1/joke", n.APIURL + "/v2/weather?city=Rome", n.APIURL + "/v2/weather?city=Bern"} {
		resp, data := do(t, "GET", url, nil, nil)
		o := read402(t, resp, data)
		a, sig := authorize(t, p, o, payOptions{})
		name, value := buildPaymentHeader(t, o, a, sig, payOptions{})
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set(name, value)
		r, err := client.Do(req)
		if url == n.APIURL+"/v2/weather?city=Bern" {
			if err != nil || r.StatusCode != 200 {
				t.Errorf("third payment: %v %v", r, err)
			}
		} else if err == nil {
			t.Errorf("%s answered %d despite the drop", url, r.StatusCode)
		}
		if err == nil {
			r.Body.Close()
		}
		if !authorizationUsed(t, n, p, a.Nonce) {
			t.Errorf("%s: not settled", url)
		}
	}
	if b := balance(t, n, n.PayTo); b != 20_000+10_000+10_000 {
		t.Errorf("payee balance %d", b)
	}
}

// TestPaymentIdentifierStoreBounded: past the bound the oldest id is
// forgotten, so its resend is served as new.
func TestPaymentIdentifierStoreBounded(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{Routes: idRoutes(PaymentIdentifier{})})
	n.API.idsMu.Lock()
	n.API.maxIDs = 2
	n.API.idsMu.Unlock()
	p := newPayer(t, n, 1_000_000)
	var headers []string
	for _, city := range []string{"Lyon", "Graz", "Bonn"} {
		url := n.APIURL + "/v2/weather?city=" + city
		header, _ := signedPayment(t, p, "GET", url, nil, "pay_bounded_"+city+"_0000")
		if resp, body := sendOK(t, "GET", url, nil, header); resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", city, resp.StatusCode, body)
		}
		headers = append(headers, header)
	}
	resp, body := sendOK(t, "GET", n.APIURL+"/v2/weather?city=Lyon", nil, headers[0])
	if o := read402(t, resp, body); o.error != reasonNonceUsed {
		t.Errorf("evicted id: %q", o.error)
	}
	if resp, body := sendOK(t, "GET", n.APIURL+"/v2/weather?city=Bonn", nil, headers[2]); resp.StatusCode != 200 {
		t.Errorf("kept id: %d %s", resp.StatusCode, body)
	}
	if n.API.Hits("/v2/weather") != 3 {
		t.Errorf("Hits %d", n.API.Hits("/v2/weather"))
	}
}

func TestPaymentIdentifierRouteValidation(t *testing.T) {
	t.Parallel()
	h := func(w http.ResponseWriter, _ *http.Request) {}
	for name, rt := range map[string]Route{
		"v1":       {Method: "GET", Path: "/x", Version: 1, Price: big.NewInt(1), Handler: h, PaymentIdentifier: &PaymentIdentifier{}},
		"free":     {Method: "GET", Path: "/x", Handler: h, PaymentIdentifier: &PaymentIdentifier{}},
		"negative": {Method: "GET", Path: "/x", Version: 2, Price: big.NewInt(1), Handler: h, PaymentIdentifier: &PaymentIdentifier{InFlightWait: -1}},
	} {
		if err := validateRoutes([]Route{rt}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
