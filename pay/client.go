package pay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/x402-mcp/x402-mcp/internal/netguard"
	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/policy"
	"github.com/x402-mcp/x402-mcp/tokens"
)

// Limits on what the agent may send.
const (
	MaxRequestBody   = 1 << 20
	MaxHeaders       = 32
	maxHeaderName    = 128
	maxHeaderValue   = 4096
	maxURL           = 4096
	maxRedirects     = 5
	DefaultMaxBody   = 256 << 10
	DefaultTimeout   = 60 * time.Second
	defaultUserAgent = "x402-mcp"
)

// Signer produces EIP-3009 signatures; it only signs what a policy permit
// covers (see package signer).
type Signer interface {
	Address() common.Address
	Sign(*policy.Permit) ([]byte, error)
}

// Config sets up a Client.
type Config struct {
	Registry *tokens.Registry
	Policy   policy.Policy
	// Signer may be nil: quotes and free fetches still work.
	Signer Signer
	// Ledger records every payment and enforces the budgets; required
	// with a Signer.
	Ledger *ledger.Ledger
	// MaxResponseBytes bounds the body returned to the agent.
	MaxResponseBytes int64
	// Timeout bounds one call, both requests included.
	Timeout time.Duration
	// Transport is the HTTP transport; nil builds the guarded one: it
	// refuses private destinations (see AllowPrivate) and ignores
	// HTTP(S)_PROXY, since a proxy would hide the destination from the
	// guard. Only tests set it.
	Transport http.RoundTripper
	// AllowPrivate lists the private addresses (loopback, RFC 1918,
	// link-local, ...) the operator lets requests reach; every other
	// private destination is refused at connect time, redirects and DNS
	// answers included. Unused with a Transport of the caller's.
	AllowPrivate []netip.Prefix
	// AllowPrivateSource names where AllowPrivate is set (the config
	// file), for refusals to point at.
	AllowPrivateSource string
	Logger             *slog.Logger
	UserAgent          string
	// Approvals says how a payment above the approval threshold may be
	// approved when the MCP client cannot ask the human.
	Approvals Approvals
	// CheckAuthorization, when set, asks the token whether an
	// authorization was used (EIP-3009 authorizationState), for a payment
	// whose outcome is unknown (see resend.go).
	CheckAuthorization ledger.AuthorizationChecker
	// KnownTerms is how long the terms seen for a method and URL (a
	// quote, a 402) let Fetch pay on its first request (see known.go);
	// 0 turns it off.
	KnownTerms time.Duration
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// Client quotes and pays for HTTP resources. It is safe for concurrent use.
type Client struct {
	cfg       Config
	transport http.RoundTripper
	// paidTransport carries the requests that carry a payment: a fresh
	// connection each, never an idle one. Go's transport silently re-sends
	// an idempotent request whose reused connection turns out dead; for a
	// paid request that would send the signature twice behind our back,
	// and the second copy's answer ("nonce already used") would be read as
	// the answer to the first.
	paidTransport http.RoundTripper
	log           *slog.Logger
	// known holds recent 402s; nil when Config.KnownTerms is 0.
	known *knownTerms
}

// New checks cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	if cfg.Registry == nil {
		return nil, errors.New("pay: no token registry")
	}
	if cfg.Signer != nil && cfg.Ledger == nil {
		return nil, errors.New("pay: a wallet without a ledger: every payment must be recorded")
	}
	if cfg.KnownTerms < 0 {
		return nil, errors.New("pay: negative KnownTerms")
	}
	if cfg.Approvals.OutOfBand && cfg.Approvals.TTL <= 0 {
		return nil, errors.New("pay: out-of-band approvals need a TTL")
	}
	if err := cfg.Policy.Validate(); err != nil {
		return nil, fmt.Errorf("pay: policy: %w", err)
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = DefaultMaxBody
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = defaultUserAgent
	}
	c := &Client{cfg: cfg, transport: cfg.Transport, log: cfg.Logger}
	if cfg.KnownTerms > 0 && cfg.Signer != nil {
		c.known = &knownTerms{ttl: cfg.KnownTerms, m: make(map[string]knownEntry)}
	}
	if c.transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// A proxy would dial in our place, and the guard would see only
		// the proxy's address; environment proxies are not used.
		t.Proxy = nil
		guard := netguard.Guard{Allow: cfg.AllowPrivate}
		t.DialContext = guard.DialContext(net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second})
		t.ResponseHeaderTimeout = cfg.Timeout
		t.MaxResponseHeaderBytes = 64 << 10
		c.transport = t
	}
	c.paidTransport = c.transport
	if t, ok := c.transport.(*http.Transport); ok {
		pt := t.Clone()
		pt.DisableKeepAlives = true
		c.paidTransport = pt
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Policy is the policy in force.
func (c *Client) Policy() policy.Policy { return c.cfg.Policy }

// MaxResponseBytes is the most of a response body a fetch returns.
func (c *Client) MaxResponseBytes() int64 { return c.cfg.MaxResponseBytes }

// Payer is the wallet address, or the zero address without a signer.
func (c *Client) Payer() common.Address {
	if c.cfg.Signer == nil {
		return common.Address{}
	}
	return c.cfg.Signer.Address()
}

// Request is what the agent asks to fetch.
type Request struct {
	Method  string
	URL     string
	Headers map[string]string
	Body    []byte
	// MaxPrice is the agent's cap for this call in USD; unset means none.
	MaxPrice policy.USD
	// HumanApproved is the binding of a payment a human approved (see
	// ApprovalNeededError). The flow pays a payment that needs approval
	// only if its binding is exactly this.
	HumanApproved *[32]byte
}

// forbiddenHeaders are set by this client or the transport; an agent
// supplying them could smuggle a payment or confuse framing.
var forbiddenHeaders = map[string]bool{
	"host": true, "content-length": true, "transfer-encoding": true, "connection": true,
	"upgrade": true, "te": true, "trailer": true, "keep-alive": true,
	"proxy-authorization": true, "proxy-connection": true,
	"x-payment": true, "payment-signature": true, "payment-required": true,
	"x-payment-response": true, "payment-response": true,
}

var allowedMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true,
	http.MethodPut: true, http.MethodPatch: true, http.MethodDelete: true,
}

// validate normalises r and returns the parsed URL.
func (r *Request) validate() (*url.URL, error) {
	if r.Method == "" {
		r.Method = http.MethodGet
	}
	r.Method = strings.ToUpper(r.Method)
	if !allowedMethods[r.Method] {
		return nil, &RequestError{Msg: fmt.Sprintf("method %q is not supported; use GET, HEAD, POST, PUT, PATCH or DELETE", clip(r.Method, 16))}
	}
	if len(r.URL) > maxURL {
		return nil, &RequestError{Msg: fmt.Sprintf("url is longer than %d bytes", maxURL)}
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		return nil, &RequestError{Msg: "url is not valid", Err: errors.Unwrap(err)}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, &RequestError{Msg: fmt.Sprintf("url scheme %q is not http or https", clip(u.Scheme, 16))}
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, &RequestError{Msg: "url has no host"}
	}
	if u.User != nil {
		// "https://trusted.com@evil.com/" reads as one host and goes to
		// another; credentials in URLs have no place in paying.
		return nil, &RequestError{Msg: "url must not contain user info (user@host)"}
	}
	if len(r.Body) > MaxRequestBody {
		return nil, &RequestError{Msg: fmt.Sprintf("body is larger than %d bytes", MaxRequestBody)}
	}
	if len(r.Headers) > MaxHeaders {
		return nil, &RequestError{Msg: fmt.Sprintf("more than %d headers", MaxHeaders)}
	}
	for k, v := range r.Headers {
		if k == "" || len(k) > maxHeaderName || !isToken(k) {
			return nil, &RequestError{Msg: fmt.Sprintf("header name %q is not valid", clip(k, 40))}
		}
		if forbiddenHeaders[strings.ToLower(k)] {
			return nil, &RequestError{Msg: fmt.Sprintf("header %q is set by x402-mcp and cannot be supplied", k)}
		}
		if len(v) > maxHeaderValue || strings.ContainsAny(v, "\r\n\x00") {
			return nil, &RequestError{Msg: fmt.Sprintf("header %q has an invalid or oversized value", k)}
		}
	}
	return u, nil
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func (c *Client) newHTTPRequest(ctx context.Context, method string, u *url.URL, r *Request, body []byte) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hr, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, &RequestError{Msg: "cannot build the request", Err: err}
	}
	for k, v := range r.Headers {
		hr.Header.Set(k, v)
	}
	if hr.Header.Get("Accept") == "" {
		// Some x402 servers answer browser-like requests with an HTML
		// paywall instead of a machine-readable 402.
		hr.Header.Set("Accept", "application/json, */*;q=0.5")
	}
	hr.Header.Set("User-Agent", c.cfg.UserAgent)
	return hr, nil
}

// httpClient returns a client whose redirects never carry payment headers
// to an origin other than issuer.
func (c *Client) httpClient(issuer *url.URL, paymentHeader string) *http.Client {
	transport := c.transport
	if paymentHeader != "" {
		transport = c.paidTransport
	}
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("stopped after %d redirects", maxRedirects)
			}
			if paymentHeader != "" && !sameOrigin(req.URL, issuer) {
				req.Header.Del(paymentHeader)
			}
			return nil
		},
	}
}

func sameOrigin(a, b *url.URL) bool {
	return a.Scheme == b.Scheme && strings.EqualFold(a.Host, b.Host)
}

// readBounded reads at most limit bytes and reports whether more followed.
func readBounded(r io.Reader, limit int64) ([]byte, bool, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(b)) > limit {
		return b[:limit], true, nil
	}
	return b, false, nil
}
