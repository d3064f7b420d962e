package localnet

import (
	"bytes"
	"container/list"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

const (
	// Header names of the two protocol versions. net/http canonicalises
	// incoming names, so lookups through Header.Values are case-insensitive.
	headerPaymentRequired  = "PAYMENT-REQUIRED"   // v2 402
	headerPaymentSignature = "PAYMENT-SIGNATURE"  // v2 payment
	headerPaymentResponse  = "PAYMENT-RESPONSE"   // v2 settlement
	headerXPayment         = "X-PAYMENT"          // v1 payment
	headerXPaymentResponse = "X-PAYMENT-RESPONSE" // v1 settlement

	// maxPaymentHeaderBytes bounds a payment header; an honest one is under
	// 2 KiB, and 16 KiB is where common proxies stop forwarding headers.
	maxPaymentHeaderBytes = 16 << 10
	// defaultMaxTimeoutSeconds is what reference servers offer by default.
	defaultMaxTimeoutSeconds = 300
	// facilitatorTimeout bounds one call to the facilitator; settling waits
	// for a block, which the local chain produces within a second or two.
	facilitatorTimeout = 60 * time.Second
)

// Route is one endpoint of the paid API.
type Route struct {
	// Method and Path select the route; Path is matched exactly, without the
	// query string.
	Method, Path string
	// Version is the x402 version the route speaks: 1 or 2.
	Version int
	// Price is in the token's atomic units; nil or zero makes the route free.
	Price *big.Int
	// Description and MimeType describe the resource in the 402.
	Description, MimeType string
	// Handler produces the resource once payment is verified.
	Handler http.HandlerFunc
	// Bazaar is the bazaar "info" object describing how to call the route:
	// input (type http, method, queryParams or bodyType+body) and output
	// (type, example). v2 routes send it as extensions.bazaar.info; both
	// versions list it as discovery metadata.
	Bazaar json.RawMessage
	// BazaarSchema is the JSON Schema of Bazaar that v2 routes send beside
	// it (extensions.bazaar.schema): where a server says which query
	// parameters and body fields are required.
	BazaarSchema json.RawMessage
	// OutputSchema is what v1 routes send as each option's outputSchema
	// (its "input" declares query parameters and body fields, each with
	// "required"); nil sends none.
	OutputSchema json.RawMessage
	// MaxTimeoutSeconds is offered in the option; 0 means 300.
	MaxTimeoutSeconds int
	// Accepts, when set, rewrites the offered options before they are sent
	// (numbers arrive as float64, as encoding/json decodes them). The paid
	// API then matches payments against the rewritten options, which lets a
	// test play a hostile or odd server.
	Accepts func(opts []map[string]any) []map[string]any
	// AlwaysRequirePayment makes the route answer 402 even to a valid
	// payment, without settling: a server that takes the signature and asks
	// again.
	AlwaysRequirePayment bool
	// PaymentIdentifier, on a priced v2 route, advertises and honours the
	// payment-identifier extension (see PaymentIdentifier); nil ignores it.
	PaymentIdentifier *PaymentIdentifier
}

func (rt *Route) priced() bool { return rt.Price != nil && rt.Price.Sign() > 0 }

// PaidAPI is an HTTP server that sells its routes through x402, v1 or v2 per
// route, verifying and settling every payment through a facilitator over
// HTTP like a reference resource server. It is an http.Handler; all methods
// are safe for concurrent use.
type PaidAPI struct {
	chain          *Chain
	facilitatorURL string
	payTo          common.Address
	routes         []Route
	client         *http.Client

	hitsMu sync.Mutex
	hits   map[string]int

	// The payment-identifier store: ids by value, idOrder oldest first.
	idsMu   sync.Mutex
	ids     map[string]*idEntry
	idOrder *list.List
	maxIDs  int

	dropMu sync.Mutex
	drops  int // see DropAfterSettle
	asks   int // see AskAgain

	requestsMu sync.Mutex
	requests   map[string]int // see Requests
}

// NewPaidAPI returns a paid API selling routes for payment to payTo in the
// chain's token, using the facilitator at facilitatorURL. It panics on an
// invalid route table (see Start for an error instead), like http.ServeMux
// does on conflicting patterns: the table is code, not input.
func NewPaidAPI(chain *Chain, facilitatorURL string, payTo common.Address, routes []Route) *PaidAPI {
	if err := validateRoutes(routes); err != nil {
		panic(err)
	}
	return &PaidAPI{
		chain:          chain,
		facilitatorURL: strings.TrimSuffix(facilitatorURL, "/"),
		payTo:          payTo,
		routes:         append([]Route(nil), routes...),
		client: &http.Client{
			Timeout: facilitatorTimeout,
			// A transport of its own: no proxy from the environment (the
			// facilitator is on loopback), and enough idle connections that a
			// burst of payments reuses them instead of exhausting ports.
			Transport: &http.Transport{
				Proxy:               nil,
				MaxIdleConnsPerHost: 64,
				IdleConnTimeout:     30 * time.Second,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		hits:     make(map[string]int),
		requests: make(map[string]int),
		ids:      make(map[string]*idEntry),
		idOrder:  list.New(),
		maxIDs:   maxPaymentIDs,
	}
}

func validateRoutes(routes []Route) error {
	seen := make(map[string]bool)
	for i, rt := range routes {
		switch {
		case rt.Method == "" || !strings.HasPrefix(rt.Path, "/"):
			return fmt.Errorf("localnet: route %d: method and an absolute path are required", i)
		case rt.Handler == nil:
			return fmt.Errorf("localnet: route %s %s: no handler", rt.Method, rt.Path)
		case rt.Price != nil && rt.Price.Sign() < 0:
			return fmt.Errorf("localnet: route %s %s: negative price", rt.Method, rt.Path)
		case rt.priced() && rt.Version != 1 && rt.Version != 2:
			return fmt.Errorf("localnet: route %s %s: version %d; want 1 or 2", rt.Method, rt.Path, rt.Version)
		case len(rt.Bazaar) > 0 && !json.Valid(rt.Bazaar), len(rt.BazaarSchema) > 0 && !json.Valid(rt.BazaarSchema):
			return fmt.Errorf("localnet: route %s %s: bazaar metadata is not valid JSON", rt.Method, rt.Path)
		case len(rt.OutputSchema) > 0 && !json.Valid(rt.OutputSchema):
			return fmt.Errorf("localnet: route %s %s: outputSchema is not valid JSON", rt.Method, rt.Path)
		case rt.MaxTimeoutSeconds < 0:
			return fmt.Errorf("localnet: route %s %s: negative MaxTimeoutSeconds", rt.Method, rt.Path)
		case rt.PaymentIdentifier != nil && (!rt.priced() || rt.Version != 2):
			return fmt.Errorf("localnet: route %s %s: payment-identifier is an extension of priced v2 routes", rt.Method, rt.Path)
		case rt.PaymentIdentifier != nil && rt.PaymentIdentifier.InFlightWait < 0:
			return fmt.Errorf("localnet: route %s %s: negative PaymentIdentifier.InFlightWait", rt.Method, rt.Path)
		}
		key := rt.Method + " " + rt.Path
		if seen[key] {
			return fmt.Errorf("localnet: route %s registered twice", key)
		}
		seen[key] = true
	}
	return nil
}

// Requests returns how many requests, paid or not, reached the routes at
// path: a client that pays on its first request makes one per purchase,
// one that waits for the 402 makes two.
func (p *PaidAPI) Requests(path string) int {
	p.requestsMu.Lock()
	defer p.requestsMu.Unlock()
	return p.requests[path]
}

// AskAgain makes the next n requests that carry a payment header, on any
// priced route, answer 402 with the route's unchanged terms, without
// verifying or settling the payment: a server that loses a valid payment
// and asks for it again (as AlwaysRequirePayment does every time).
func (p *PaidAPI) AskAgain(n int) {
	p.dropMu.Lock()
	defer p.dropMu.Unlock()
	p.asks = n
}

// takeAsk reports whether this paid request is one AskAgain refuses.
func (p *PaidAPI) takeAsk() bool {
	p.dropMu.Lock()
	defer p.dropMu.Unlock()
	if p.asks <= 0 {
		return false
	}
	p.asks--
	return true
}

// Hits returns how many times the handler of the route at path ran.
func (p *PaidAPI) Hits(path string) int {
	p.hitsMu.Lock()
	defer p.hitsMu.Unlock()
	return p.hits[path]
}

// DiscoveryItems returns the discovery listing of every priced route, with
// resource URLs under baseURL (e.g. "http://127.0.0.1:1234").
func (p *PaidAPI) DiscoveryItems(baseURL string) ([]DiscoveryItem, error) {
	baseURL = strings.TrimSuffix(baseURL, "/")
	var items []DiscoveryItem
	for i := range p.routes {
		rt := &p.routes[i]
		if !rt.priced() {
			continue
		}
		url := baseURL + rt.Path
		opts, err := p.options(rt, url)
		if err != nil {
			return nil, err
		}
		meta, err := withDescription(rt.Bazaar, rt.Description)
		if err != nil {
			return nil, fmt.Errorf("route %s: bazaar metadata: %w", rt.Path, err)
		}
		items = append(items, DiscoveryItem{
			Resource:    url,
			Type:        "http",
			X402Version: rt.Version,
			Accepts:     opts,
			Metadata:    meta,
		})
	}
	return items, nil
}

// withDescription adds the route's description to its discovery metadata:
// v2 options carry none of their own, and a listing without one tells an
// agent nothing about what it would buy.
func withDescription(bazaar json.RawMessage, description string) (json.RawMessage, error) {
	if description == "" {
		return bazaar, nil
	}
	m := map[string]json.RawMessage{}
	if len(bazaar) > 0 {
		if err := json.Unmarshal(bazaar, &m); err != nil {
			return nil, err
		}
	}
	d, err := json.Marshal(description)
	if err != nil {
		return nil, err
	}
	m["description"] = d
	return json.Marshal(m)
}

// closeIdle drops the idle connections to the facilitator, so a stopped
// network leaves no goroutines behind.
func (p *PaidAPI) closeIdle() {
	p.client.CloseIdleConnections()
}

// ServeHTTP implements http.Handler.
func (p *PaidAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var rt *Route
	pathKnown := false
	for i := range p.routes {
		if p.routes[i].Path != r.URL.Path {
			continue
		}
		pathKnown = true
		if p.routes[i].Method == r.Method {
			rt = &p.routes[i]
			break
		}
	}
	if pathKnown {
		p.requestsMu.Lock()
		p.requests[r.URL.Path]++
		p.requestsMu.Unlock()
	}
	if rt == nil {
		if pathKnown {
			writeJSON(w, http.StatusMethodNotAllowed, errorResponse{Error: "method not allowed"})
		} else {
			writeJSON(w, http.StatusNotFound, errorResponse{Error: "not found"})
		}
		return
	}
	if !rt.priced() {
		p.run(rt, w, r)
		return
	}
	if rt.Version == 1 {
		p.serveV1(w, r, rt)
	} else {
		p.serveV2(w, r, rt)
	}
}

func (p *PaidAPI) run(rt *Route, w http.ResponseWriter, r *http.Request) {
	p.hitsMu.Lock()
	p.hits[rt.Path]++
	p.hitsMu.Unlock()
	rt.Handler(w, r)
}

// --- v2 -----------------------------------------------------------------

func (p *PaidAPI) serveV2(w http.ResponseWriter, r *http.Request, rt *Route) {
	url := requestURL(r)
	opts, err := p.options(rt, url)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorResponse{Error: err.Error()})
		return
	}
	refuse := func(msg, _ string) { p.requireV2(w, rt, url, opts, msg) }

	// A v2 server reads only PAYMENT-SIGNATURE; X-PAYMENT is not looked at.
	payload, present, err := paymentHeader(r, headerPaymentSignature)
	switch {
	case !present || rt.AlwaysRequirePayment || p.takeAsk():
		refuse("PAYMENT-SIGNATURE header is required", "")
		return
	case err != nil:
		refuse(err.Error(), "")
		return
	}
	var pp struct {
		X402Version int             `json:"x402Version"`
		Accepted    json.RawMessage `json:"accepted"`
	}
	if err := json.Unmarshal(payload, &pp); err != nil {
		refuse("invalid payment payload: "+err.Error(), "")
		return
	}
	if pp.X402Version != 2 {
		refuse(fmt.Sprintf("x402Version %d payment sent to a v2 resource", pp.X402Version), "")
		return
	}

	// A payment id is looked up before anything is verified: a resend of a
	// payment that settled would no longer verify.
	var entry *idEntry
	if pi := rt.PaymentIdentifier; pi != nil {
		var resettle, answered bool
		if entry, resettle, answered = p.lookupPaymentID(w, r, pi, payload); answered {
			return
		}
		if entry != nil {
			// Whatever happens below, including a panicking handler, the
			// entry must not stay in flight.
			defer p.finishID(entry, nil, payResult{})
		}
		if resettle {
			rec := newBufferedResponse()
			p.deliver(w, rec, p.settleAndAnswer(r.Context(), rec, entry.unsettled), entry)
			return
		}
	}

	// From here on the answer is buffered, so it can be stored for the
	// payment id and withheld by DropAfterSettle.
	rec := newBufferedResponse()
	refuse = func(msg, _ string) { p.requireV2(rec, rt, url, opts, msg) }
	// The option is found by deep equality with what the client says it
	// accepted, as the reference server does: any change to the option,
	// even a number turned into a string, is a different option.
	var chosen json.RawMessage
	for _, o := range opts {
		if jsonEqual(pp.Accepted, o) {
			chosen = o
			break
		}
	}
	var res payResult
	if chosen == nil {
		refuse("No matching payment requirements", "")
	} else {
		res = p.serveWithPayment(rec, r, rt, 2, payload, chosen, p.network(chosen), headerPaymentResponse, refuse)
	}
	p.deliver(w, rec, res, entry)
}

// --- v1 -----------------------------------------------------------------

func (p *PaidAPI) serveV1(w http.ResponseWriter, r *http.Request, rt *Route) {
	url := requestURL(r)
	opts, err := p.options(rt, url)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorResponse{Error: err.Error()})
		return
	}
	refuse := func(msg, payer string) { requireV1(w, opts, msg, payer) }

	// A v1 server reads only X-PAYMENT.
	payload, present, err := paymentHeader(r, headerXPayment)
	switch {
	case !present || rt.AlwaysRequirePayment || p.takeAsk():
		refuse("X-PAYMENT header is required", "")
		return
	case err != nil:
		refuse(err.Error(), "")
		return
	}
	var pp struct {
		X402Version int    `json:"x402Version"`
		Scheme      string `json:"scheme"`
		Network     string `json:"network"`
	}
	if err := json.Unmarshal(payload, &pp); err != nil {
		refuse("invalid payment payload: "+err.Error(), "")
		return
	}
	if pp.X402Version != 1 {
		refuse(fmt.Sprintf("x402Version %d payment sent to a v1 resource", pp.X402Version), "")
		return
	}
	// v1 payloads do not repeat the option; the reference server picks the
	// one with the same scheme and network. Both spellings of the local
	// network name the same chain.
	var chosen json.RawMessage
	for _, o := range opts {
		var head struct{ Scheme, Network string }
		if json.Unmarshal(o, &head) == nil && head.Scheme == pp.Scheme && p.sameNetwork(head.Network, pp.Network) {
			chosen = o
			break
		}
	}
	if chosen == nil {
		refuse("No matching payment requirements", "")
		return
	}
	rec := newBufferedResponse()
	refuse = func(msg, payer string) { requireV1(rec, opts, msg, payer) }
	p.deliver(w, rec, p.serveWithPayment(rec, r, rt, 1, payload, chosen, p.network(chosen), headerXPaymentResponse, refuse), nil)
}

func (p *PaidAPI) sameNetwork(a, b string) bool {
	canon := func(n string) string {
		if n == V1NetworkName {
			return p.chain.Network()
		}
		return n
	}
	return canon(a) == canon(b)
}

// network reads an option's network for the settlement header of a failure
// the facilitator did not answer.
func (p *PaidAPI) network(opt json.RawMessage) string {
	var o struct{ Network string }
	_ = json.Unmarshal(opt, &o)
	return o.Network
}

// --- verify, serve, settle ----------------------------------------------

// payResult is what became of a paid request.
type payResult struct {
	// decided: /settle answered, success or a final failure, so the
	// response sent is the payment's answer for good.
	decided bool
	// settled: the payment settled.
	settled bool
	// pending: /settle answered settlement_pending; this is what settling
	// again needs.
	pending *unsettled
}

// unsettled is a verified payment whose resource was produced and is held
// back until the payment settles.
type unsettled struct {
	req            facilitatorRequest
	output         *bufferedResponse
	network        string
	responseHeader string
}

// serveWithPayment is the common tail of both versions: verify, run the
// handler into a buffer, settle, and release the response only once the
// money moved. refuse answers a fresh 402 in the route's version.
func (p *PaidAPI) serveWithPayment(w http.ResponseWriter, r *http.Request, rt *Route, version int,
	payload, requirements json.RawMessage, network, responseHeader string, refuse func(msg, payer string)) payResult {
	body := facilitatorRequest{X402Version: version, PaymentPayload: payload, PaymentRequirements: requirements}

	var vr verifyResponse
	if err := p.callFacilitator(r.Context(), "/verify", body, &vr); err != nil {
		refuse("payment verification failed: "+err.Error(), "")
		return payResult{}
	}
	if !vr.IsValid {
		reason := vr.InvalidReason
		if reason == "" {
			reason = "payment is invalid"
		}
		refuse(reason, vr.Payer)
		return payResult{}
	}

	buf := newBufferedResponse()
	p.run(rt, buf, r)
	if buf.status == 0 {
		buf.status = http.StatusOK
	}
	if buf.status >= 400 {
		// The resource was not delivered, so it is not charged for; the
		// authorization stays unused.
		buf.flush(w)
		return payResult{}
	}
	return p.settleAndAnswer(r.Context(), w, &unsettled{req: body, output: buf, network: network, responseHeader: responseHeader})
}

// settleAndAnswer settles u and answers with its resource, or with a 402
// carrying only the settlement header when it did not settle.
func (p *PaidAPI) settleAndAnswer(ctx context.Context, w http.ResponseWriter, u *unsettled) payResult {
	// Settlement outlives a client that hung up: the handler already ran,
	// and a half-finished settlement is worse than a finished one.
	sr, answered := p.settle(context.WithoutCancel(ctx), u)
	settlement, err := marshalJSON(sr)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorResponse{Error: err.Error()})
		return payResult{}
	}
	w.Header().Set(u.responseHeader, base64.StdEncoding.EncodeToString(settlement))
	if !sr.Success {
		// The handler's output is withheld: it was not paid for.
		writeJSON(w, http.StatusPaymentRequired, struct{}{})
		switch {
		case sr.ErrorReason == reasonSettlementPending:
			return payResult{pending: u}
		case !answered:
			return payResult{}
		}
		return payResult{decided: true}
	}
	u.output.flush(w)
	return payResult{decided: true, settled: true}
}

// settle asks the facilitator to settle u, and asks once more when the
// answer is settlement_pending with a transaction, as the reference
// resource servers do: the facilitator then reconciles that transaction
// instead of sending another. answered is false when no answer came, so
// the outcome is unknown.
func (p *PaidAPI) settle(ctx context.Context, u *unsettled) (sr settleResponse, answered bool) {
	for attempt := 0; ; attempt++ {
		sr = settleResponse{}
		if err := p.callFacilitator(ctx, "/settle", u.req, &sr); err != nil {
			return settleResponse{ErrorReason: reasonUnexpectedSettle, ErrorMessage: err.Error(), Network: u.network}, false
		}
		if attempt > 0 || sr.Success || sr.ErrorReason != reasonSettlementPending || sr.Transaction == "" {
			return sr, true
		}
	}
}

// deliver sends the buffered answer of a paid request, after recording it
// for the payment id (e, when there is one) and unless DropAfterSettle says
// to lose it.
func (p *PaidAPI) deliver(w http.ResponseWriter, rec *bufferedResponse, res payResult, e *idEntry) {
	if e != nil {
		p.finishID(e, rec, res)
	}
	if res.settled && p.takeDrop() {
		// net/http closes the connection without a response, and logs
		// nothing for this value.
		panic(http.ErrAbortHandler)
	}
	rec.flush(w)
}

// callFacilitator POSTs body as JSON to the facilitator and decodes its
// bounded answer into out.
func (p *PaidAPI) callFacilitator(ctx context.Context, path string, body, out any) error {
	data, err := marshalJSON(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.facilitatorURL+path, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxRequestBytes+1))
	if err != nil {
		return fmt.Errorf("reading facilitator %s answer: %w", path, err)
	}
	if len(answer) > maxRequestBytes {
		return fmt.Errorf("facilitator %s answer exceeds %d bytes", path, maxRequestBytes)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("facilitator %s answered %s: %s", path, resp.Status, bytes.TrimSpace(answer[:min(len(answer), 512)]))
	}
	if err := decodeStrict(answer, out); err != nil {
		return fmt.Errorf("facilitator %s answer: %w", path, err)
	}
	return nil
}

// bufferedResponse holds a handler's response until the payment settled,
// and the paid API's answer until it is stored for a payment id.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newBufferedResponse() *bufferedResponse {
	return &bufferedResponse{header: make(http.Header)}
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// flush copies the buffered response to w, keeping any header w already
// has (the settlement header).
func (b *bufferedResponse) flush(w http.ResponseWriter) {
	for k, vs := range b.header {
		w.Header()[k] = append([]string(nil), vs...)
	}
	status := b.status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(b.body.Bytes())
}
