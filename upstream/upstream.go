// Package upstream connects to the MCP servers the operator configures as
// upstreams ([[upstreams]] in the config file), lists their tools and
// forwards calls to them, reading their answers in both forms of x402 over
// MCP into pay.ToolAnswers. It pays nothing itself: package pay decides and
// signs, package tools re-exports the upstream tools.
//
// Invariants:
//   - An upstream that is down, slow or misbehaving gives an error for the
//     calls that need it and never blocks or crashes the server: it is
//     connected in the background and again, at most every retryEvery,
//     when a call needs it; every call has a deadline.
//   - Everything an upstream sends is bounded (tools listed, schema and
//     description sizes, result size) and its words are shown only through
//     the one display cleaner, marked as the upstream's.
//   - A stdio upstream is a child process of this one, stopped by Close.
package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/x402-mcp/x402-mcp/pay"
	"github.com/x402-mcp/x402-mcp/x402"
)

// Bounds on what an upstream sends.
const (
	MaxTools          = 128
	MaxDescription    = 1024
	MaxSchemaBytes    = 64 << 10
	MaxResultBytes    = 4 << 20
	maxToolName       = 64
	connectTimeout    = 30 * time.Second
	retryEvery        = 5 * time.Second
	listTimeout       = 30 * time.Second
	defaultCallTimout = 60 * time.Second
)

// Tool metadata keys of the price hint some paid MCP servers declare
// (Cloudflare's agents SDK): the tool asks for payment, and about what it
// costs in USD. Not part of the x402 specification, so it is a hint: the
// price paid is always the one the upstream asks at call time.
const (
	metaPaymentRequired = "agents-x402/paymentRequired"
	metaPriceUSD        = "agents-x402/priceUSD"
)

// Config is one configured upstream.
type Config struct {
	// Name names it in tool names (<name>__<tool>) and, for a stdio
	// upstream, in the policy (mcp:<name>).
	Name string
	// URL is a streamable HTTP endpoint; Command (with Args) a program
	// speaking MCP on stdio. Exactly one is set.
	URL     string
	Command string
	Args    []string
	// Env is the stdio program's environment (NAME=value).
	Env []string
	// Headers are sent with every HTTP request to URL (an API key, say).
	Headers map[string]string
	// Timeout bounds one call; zero is 60 seconds.
	Timeout time.Duration
}

// Tool is a tool an upstream lists.
type Tool struct {
	// Name is the upstream's name for it.
	Name string
	// Title and Description are the upstream's words, cleaned and bounded.
	Title, Description string
	// InputSchema and OutputSchema are the upstream's JSON Schemas as
	// listed (OutputSchema nil when it declares none).
	InputSchema, OutputSchema json.RawMessage
	// Priced says the upstream declares that the tool asks for payment;
	// PriceUSD is the price it declares, cleaned, "" when none.
	Priced   bool
	PriceUSD string
}

// Server is one upstream MCP server.
type Server struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	client    *client.Client
	tools     []Tool
	lastTry   time.Time
	lastErr   error
	connected chan struct{} // closed once the first listing is in (or failed)
	closed    bool
	onChange  []func()
}

// New returns the upstream, not yet connected; see Start.
func New(cfg Config, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultCallTimout
	}
	return &Server{cfg: cfg, log: log.With("upstream", cfg.Name), connected: make(chan struct{})}
}

// Name is the upstream's configured name.
func (s *Server) Name() string { return s.cfg.Name }

// URL is the upstream's HTTP endpoint, "" for a stdio upstream.
func (s *Server) URL() string { return s.cfg.URL }

// OnChange registers f to run (in its own goroutine) whenever the tool
// list changes.
func (s *Server) OnChange(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onChange = append(s.onChange, f)
}

// Start connects in the background.
func (s *Server) Start() {
	go func() {
		if _, err := s.conn(context.Background()); err != nil {
			s.log.Warn("upstream not reachable; will retry when a tool is called", "err", err)
		}
	}()
}

// Ready waits until the first connection attempt ended or ctx is done.
func (s *Server) Ready(ctx context.Context) {
	select {
	case <-s.connected:
	case <-ctx.Done():
	}
}

// Tools is the upstream's current tool list (nil until connected).
func (s *Server) Tools() []Tool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.tools)
}

// Tool is the listed tool called name.
func (s *Server) Tool(name string) (Tool, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.tools, func(t Tool) bool { return t.Name == name })
	if i < 0 {
		return Tool{}, false
	}
	return s.tools[i], true
}

// Close stops the connection, and a stdio upstream's process.
func (s *Server) Close() error {
	s.mu.Lock()
	c := s.client
	s.client, s.closed = nil, true
	s.mu.Unlock()
	if c != nil {
		return c.Close()
	}
	return nil
}

// UnavailableError says the upstream cannot be reached now.
type UnavailableError struct {
	Name string
	Err  error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("upstream %s is not available: %s", e.Name, x402.Display(e.Err.Error(), 300))
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// conn returns the connected client, connecting first if needed (at most
// once every retryEvery).
func (s *Server) conn(ctx context.Context) (*client.Client, error) {
	s.mu.Lock()
	if s.client != nil {
		c := s.client
		s.mu.Unlock()
		return c, nil
	}
	if s.closed {
		s.mu.Unlock()
		return nil, &UnavailableError{Name: s.cfg.Name, Err: errors.New("closed")}
	}
	if s.lastErr != nil && time.Since(s.lastTry) < retryEvery {
		err := s.lastErr
		s.mu.Unlock()
		return nil, &UnavailableError{Name: s.cfg.Name, Err: err}
	}
	s.lastTry = time.Now()
	s.mu.Unlock()

	c, err := s.connect(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.connected:
	default:
		defer close(s.connected)
	}
	if err != nil {
		s.lastErr = err
		return nil, &UnavailableError{Name: s.cfg.Name, Err: err}
	}
	if s.client != nil || s.closed {
		// Another call connected meanwhile, or Close ran.
		c.Close()
		if s.closed {
			return nil, &UnavailableError{Name: s.cfg.Name, Err: errors.New("closed")}
		}
		return s.client, nil
	}
	s.client, s.lastErr = c, nil
	return c, nil
}

// connect starts a client, initialises it and reads the tool list.
func (s *Server) connect(ctx context.Context) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	var c *client.Client
	var err error
	if s.cfg.URL != "" {
		// No redirects: a paid call carries its payment in the body, and a
		// 307 would send it (and the headers file's credential) to
		// whatever host the redirect names. Calls are bounded by their
		// contexts; the transport bounds the wait for headers.
		hc := &http.Client{
			Transport: &http.Transport{Proxy: nil, ResponseHeaderTimeout: s.cfg.Timeout, MaxResponseHeaderBytes: 64 << 10,
				IdleConnTimeout: 90 * time.Second},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return errors.New("the upstream redirected; x402-mcp does not follow redirects of an upstream (configure its final URL)")
			},
		}
		opts := []transport.StreamableHTTPCOption{
			transport.WithHTTPBasicClient(hc),
			transport.WithContinuousListening(),
		}
		if len(s.cfg.Headers) > 0 {
			opts = append(opts, transport.WithHTTPHeaders(s.cfg.Headers))
		}
		var t *transport.StreamableHTTP
		if t, err = transport.NewStreamableHTTP(s.cfg.URL, opts...); err == nil {
			c = client.NewClient(extensionTransport{t})
			// Start's context would bound the listening stream, not
			// just the start: the connection outlives connect.
			err = c.Start(context.Background())
		}
	} else {
		// The child's stderr is drained into a bounded buffer by the
		// transport; its stdout is the protocol.
		t := transport.NewStdioWithOptions(s.cfg.Command, s.cfg.Env, s.cfg.Args)
		// The child lives as long as the connection, not as connect's
		// context; Close stops it.
		if err = t.Start(context.Background()); err == nil {
			c = client.NewClient(extensionTransport{t})
		}
	}
	if err != nil {
		return nil, err
	}
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == string(mcp.MethodNotificationToolsListChanged) {
			go s.refresh()
		}
	})
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "x402-mcp", Version: "upstream"}
	init.Params.Capabilities.Extensions = map[string]any{ExtensionPayment: map[string]any{}}
	if _, err := c.Initialize(ctx, init); err != nil {
		c.Close()
		return nil, fmt.Errorf("initialize: %w", err)
	}
	tools, err := s.list(ctx, c)
	if err != nil {
		c.Close()
		return nil, err
	}
	s.setTools(tools)
	return c, nil
}

// refresh re-reads the tool list after the upstream said it changed.
func (s *Server) refresh() {
	s.mu.Lock()
	c := s.client
	s.mu.Unlock()
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), listTimeout)
	defer cancel()
	tools, err := s.list(ctx, c)
	if err != nil {
		s.log.Warn("cannot re-read the upstream's tools", "err", err)
		return
	}
	s.setTools(tools)
}

func (s *Server) setTools(tools []Tool) {
	s.mu.Lock()
	changed := !slices.EqualFunc(s.tools, tools, sameTool)
	s.tools = tools
	fs := slices.Clone(s.onChange)
	s.mu.Unlock()
	if changed {
		for _, f := range fs {
			go f()
		}
	}
}

func sameTool(a, b Tool) bool {
	return a.Name == b.Name && a.Title == b.Title && a.Description == b.Description && bytes.Equal(a.InputSchema, b.InputSchema) &&
		bytes.Equal(a.OutputSchema, b.OutputSchema) && a.Priced == b.Priced && a.PriceUSD == b.PriceUSD
}

// list reads the tools, keeping the first MaxTools usable ones.
func (s *Server) list(ctx context.Context, c *client.Client) ([]Tool, error) {
	res, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		return nil, fmt.Errorf("tools/list: %w", err)
	}
	var out []Tool
	for _, t := range res.Tools {
		if len(out) == MaxTools {
			s.log.Warn("upstream lists more tools than are re-exported", "max", MaxTools)
			break
		}
		tool, err := readTool(t)
		if err != nil {
			s.log.Warn("upstream tool skipped", "tool", x402.Display(t.Name, maxToolName), "err", err)
			continue
		}
		out = append(out, tool)
	}
	return out, nil
}

// readTool checks one listed tool and keeps what is re-exported.
func readTool(t mcp.Tool) (Tool, error) {
	if !validToolName(t.Name) {
		return Tool{}, errors.New("the name is not 1 to 64 letters, digits, '_', '-' or '.'")
	}
	in := t.RawInputSchema
	if in == nil {
		b, err := json.Marshal(t.InputSchema)
		if err != nil {
			return Tool{}, err
		}
		in = b
	}
	out := t.RawOutputSchema
	if out == nil && t.OutputSchema.Type != "" {
		b, err := json.Marshal(t.OutputSchema)
		if err != nil {
			return Tool{}, err
		}
		out = b
	}
	if len(in) > MaxSchemaBytes || len(out) > MaxSchemaBytes {
		return Tool{}, fmt.Errorf("a schema is larger than %d bytes", MaxSchemaBytes)
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(in, &obj) != nil || string(obj["type"]) != `"object"` {
		return Tool{}, errors.New(`the input schema is not a JSON object of type "object"`)
	}
	title := t.Title
	if title == "" {
		title = t.Annotations.Title
	}
	tool := Tool{Name: t.Name, Title: x402.Display(title, 128), Description: x402.Display(t.Description, MaxDescription), InputSchema: in, OutputSchema: out}
	if t.Meta != nil {
		if b, ok := t.Meta.AdditionalFields[metaPaymentRequired].(bool); ok && b {
			tool.Priced = true
		}
		switch p := t.Meta.AdditionalFields[metaPriceUSD].(type) {
		case string:
			tool.PriceUSD = x402.Display(p, 32)
		case float64:
			tool.PriceUSD = strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.6f", p), "0"), ".")
		}
	}
	return tool, nil
}

func validToolName(s string) bool {
	if s == "" || len(s) > maxToolName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Call calls the tool with args (a JSON object), carrying payment (a
// PaymentPayload object) in _meta["x402/payment"] when it is not nil, and
// reads the answer. An error means no usable answer came.
func (s *Server) Call(ctx context.Context, tool string, args json.RawMessage, payment json.RawMessage) (*pay.ToolAnswer, error) {
	c, err := s.conn(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = args
	if payment != nil {
		req.Params.Meta = &mcp.Meta{AdditionalFields: map[string]any{x402.MetaPayment: payment}}
	}
	res, err := c.CallTool(ctx, req)
	if err != nil {
		if errors.Is(err, transport.ErrTransportClosed) || ctx.Err() == nil && isDead(err) {
			s.drop(c)
		}
		return nil, fmt.Errorf("upstream %s: %s", s.cfg.Name, x402.Display(err.Error(), 300))
	}
	return Read(res)
}

// isDead guesses that the connection is gone (a stdio child that exited,
// a closed HTTP session), so the next call reconnects.
func isDead(err error) bool {
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "closed") || strings.Contains(msg, "eof") || strings.Contains(msg, "broken pipe") ||
		strings.Contains(msg, "connection refused") || strings.Contains(msg, "session")
}

// drop forgets a dead client so that the next call reconnects.
func (s *Server) drop(c *client.Client) {
	s.mu.Lock()
	if s.client == c {
		s.client = nil
	}
	s.mu.Unlock()
	c.Close()
}

// Read reads a tool result: the payment requirements if it asks for
// payment (tool-result form: isError with a PaymentRequired object in
// structuredContent, or as JSON in the first text content), the
// settlement in _meta, and the text for messages.
func Read(res *mcp.CallToolResult) (*pay.ToolAnswer, error) {
	raw, err := json.Marshal(res)
	if err != nil {
		return nil, err
	}
	if len(raw) > MaxResultBytes {
		return nil, fmt.Errorf("the upstream's result is larger than %d bytes", MaxResultBytes)
	}
	ans := &pay.ToolAnswer{IsError: res.IsError, Result: res}
	var text strings.Builder
	for _, c := range res.Content {
		if t, ok := c.(mcp.TextContent); ok {
			text.WriteString(t.Text)
		}
	}
	ans.Text = text.String()
	if res.IsError {
		if pr := requirements(res); pr != nil {
			ans.Required, ans.IsError = pr, false
		}
	}
	if res.Meta != nil {
		if v, ok := res.Meta.AdditionalFields[x402.MetaPaymentResponse]; ok && v != nil {
			b, err := json.Marshal(v)
			if err == nil {
				ans.Settlement = b
			}
		}
	}
	return ans, nil
}

// requirements finds a PaymentRequired object in an error result:
// structuredContent first, then the first content block's text, as the
// specification asks clients to look.
func requirements(res *mcp.CallToolResult) json.RawMessage {
	candidates := []json.RawMessage{res.RawStructuredContent}
	if res.RawStructuredContent == nil && res.StructuredContent != nil {
		if b, err := json.Marshal(res.StructuredContent); err == nil {
			candidates[0] = b
		}
	}
	if len(res.Content) > 0 {
		if t, ok := res.Content[0].(mcp.TextContent); ok {
			candidates = append(candidates, json.RawMessage(t.Text))
		}
	}
	for _, c := range candidates {
		var probe struct {
			Version json.RawMessage `json:"x402Version"`
			Accepts json.RawMessage `json:"accepts"`
		}
		if len(c) > 0 && json.Unmarshal(c, &probe) == nil && probe.Version != nil && probe.Accepts != nil {
			return c
		}
	}
	return nil
}
