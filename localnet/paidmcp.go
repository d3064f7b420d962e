package localnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// PaidMCP is an MCP server selling tools through x402 over MCP, in the
// tool-result form of the specification (specs/transports-v2/mcp.md in
// the x402 repository): an unpaid call of a priced tool answers isError
// with the PaymentRequired object as structuredContent and as the text of
// its first content block; a call carrying _meta["x402/payment"] is
// verified with the facilitator, run, settled, and answered with the
// settlement in _meta["x402/payment-response"]. A tool that fails after
// verification is not settled. Priced tools declare their price in the
// tool's _meta the way Cloudflare's agents SDK does.
//
// Tools: weather (priced, 0.01), forecast (priced, 0.03), report (priced,
// 0.50), broken (priced, fails after verification), crash_once (priced;
// the first paid call settles and then kills the process: a stdio
// upstream dying mid-call; needs PaidMCPConfig.CrashFile) and echo (free).
type PaidMCP struct {
	cfg PaidMCPConfig
	fac *PaidAPI // only its facilitator client is used

	mu    sync.Mutex
	calls map[string]int
	// extension counts the payment_required results sent.
	extension int
}

// ExtensionAnswers says how many unpaid calls were answered with the
// extension's payment_required result.
func (p *PaidMCP) ExtensionAnswers() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.extension
}

// markerPaymentRequired marks, in a tool result's _meta, a PaymentRequired
// that PaidMCPHandler sends as a payment_required result.
const markerPaymentRequired = "localnet/payment-required"

// advertisesExtension reports whether the request (or, for a session
// begun with initialize, the session) advertises org.x402/payment.
func advertisesExtension(ctx context.Context) bool {
	var caps *mcp.ClientCapabilities
	if info := mcpserver.RequestProtocolInfoFromContext(ctx); info != nil && info.ClientCapabilities != nil {
		caps = info.ClientCapabilities
	} else if s, ok := mcpserver.ClientSessionFromContext(ctx).(mcpserver.SessionWithClientInfo); ok {
		c := s.GetClientCapabilities()
		caps = &c
	}
	if caps == nil {
		return false
	}
	_, ok := caps.Extensions["org.x402/payment"]
	return ok
}

// PaidMCPConfig says what PaidMCP asks to be paid.
type PaidMCPConfig struct {
	FacilitatorURL string
	Network        string // CAIP-2
	Asset          common.Address
	TokenName      string
	TokenVersion   string
	PayTo          common.Address
	// CrashFile, when set, arms crash_once: the first paid call that finds
	// no file there creates it and exits the process after settling.
	CrashFile string
	// Extension makes the server dual-mode: a client that advertises the
	// experimental org.x402/payment extension gets unpaid calls answered
	// with a payment_required result (over streamable HTTP only; see
	// PaidMCPHandler).
	Extension bool
}

// PaidMCPConfigFor is the configuration selling in n's token to n's payee.
func PaidMCPConfigFor(n *Network) PaidMCPConfig {
	return PaidMCPConfig{FacilitatorURL: n.FacilitatorURL, Network: n.Chain.Network(), Asset: n.Chain.TokenAddress(),
		TokenName: n.Chain.TokenName(), TokenVersion: n.Chain.TokenVersion(), PayTo: n.PayTo}
}

// Prices of the paid MCP server's tools, in atomic units.
const (
	MCPWeatherPrice  = 10000
	MCPForecastPrice = 30000
	MCPReportPrice   = 500000
)

// NewPaidMCP returns the server's tools on an mcp-go server.
func NewPaidMCP(cfg PaidMCPConfig) (*PaidMCP, *mcpserver.MCPServer) {
	p := &PaidMCP{cfg: cfg, calls: map[string]int{}}
	p.fac = &PaidAPI{facilitatorURL: strings.TrimSuffix(cfg.FacilitatorURL, "/"), client: &http.Client{Timeout: facilitatorTimeout}}
	s := mcpserver.NewMCPServer("localnet-paid-mcp", "1.0.0", mcpserver.WithToolCapabilities(true))
	cityIn := mcp.WithString("city", mcp.Required(), mcp.Description("City name"))
	forecastOut := json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"},"forecast":{"type":"string"}},"required":["city","forecast"]}`)
	s.AddTool(priced(mcp.NewTool("weather", mcp.WithDescription("Current weather for a city."), cityIn,
		mcp.WithRawOutputSchema(forecastOut)), "0.01"), p.paid("weather", MCPWeatherPrice, forecast("sunny")))
	s.AddTool(priced(mcp.NewTool("forecast", mcp.WithDescription("Three-day forecast for a city."), cityIn,
		mcp.WithRawOutputSchema(forecastOut)), "0.03"), p.paid("forecast", MCPForecastPrice, forecast("sun, then rain")))
	s.AddTool(priced(mcp.NewTool("report", mcp.WithDescription("A long market report."), cityIn), "0.50"),
		p.paid("report", MCPReportPrice, forecast("a long report")))
	s.AddTool(priced(mcp.NewTool("broken", mcp.WithDescription("Always fails after the payment is verified.")), "0.01"),
		p.paid("broken", MCPWeatherPrice, func(context.Context, mcp.CallToolRequest) *mcp.CallToolResult {
			return mcp.NewToolResultError("the weather station is offline")
		}))
	s.AddTool(priced(mcp.NewTool("crash_once", mcp.WithDescription("Dies after settling the first paid call."), cityIn,
		mcp.WithRawOutputSchema(forecastOut)), "0.01"), p.paid("crash_once", MCPWeatherPrice, forecast("stormy")))
	s.AddTool(mcp.NewTool("echo", mcp.WithDescription("Free: says back what it is given."), mcp.WithString("text", mcp.Required())),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			p.count("echo")
			return mcp.NewToolResultText(req.GetString("text", "")), nil
		})
	return p, s
}

// Calls says how often tool ran (paid or free), not counting unpaid calls
// of a priced tool.
func (p *PaidMCP) Calls(tool string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[tool]
}

func (p *PaidMCP) count(tool string) {
	p.mu.Lock()
	p.calls[tool]++
	p.mu.Unlock()
}

func priced(t mcp.Tool, usd string) mcp.Tool {
	t.Meta = &mcp.Meta{AdditionalFields: map[string]any{"agents-x402/paymentRequired": true, "agents-x402/priceUSD": usd}}
	return t
}

func forecast(text string) func(context.Context, mcp.CallToolRequest) *mcp.CallToolResult {
	return func(_ context.Context, req mcp.CallToolRequest) *mcp.CallToolResult {
		city := req.GetString("city", "")
		return mcp.NewToolResultStructured(map[string]any{"city": city, "forecast": text}, city+": "+text)
	}
}

// requirements is the PaymentRequired object for tool.
func (p *PaidMCP) requirements(tool string, price int64, msg string) (map[string]any, json.RawMessage, error) {
	opt, err := marshalJSON(v2Option{Scheme: "exact", Network: p.cfg.Network, Amount: fmt.Sprint(price), Asset: p.cfg.Asset.Hex(),
		PayTo: p.cfg.PayTo.Hex(), MaxTimeoutSeconds: defaultMaxTimeoutSeconds, Extra: tokenDomain{Name: p.cfg.TokenName, Version: p.cfg.TokenVersion}})
	if err != nil {
		return nil, nil, err
	}
	pr := map[string]any{
		"x402Version": 2,
		"error":       msg,
		"resource":    map[string]any{"url": "mcp://tool/" + tool, "description": "tool " + tool, "mimeType": "application/json"},
		"accepts":     []json.RawMessage{opt},
	}
	return pr, opt, nil
}

func paymentRequired(pr map[string]any, settlement any) *mcp.CallToolResult {
	text, _ := json.Marshal(pr)
	res := &mcp.CallToolResult{IsError: true, StructuredContent: pr, Content: []mcp.Content{mcp.NewTextContent(string(text))}}
	if settlement != nil {
		res.Meta = &mcp.Meta{AdditionalFields: map[string]any{"x402/payment-response": settlement}}
	}
	return res
}

// paid sells run for price.
func (p *PaidMCP) paid(tool string, price int64, run func(context.Context, mcp.CallToolRequest) *mcp.CallToolResult) mcpserver.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		pr, opt, err := p.requirements(tool, price, "Payment required to call "+tool)
		if err != nil {
			return nil, err
		}
		refuse := func(msg string, settlement any) (*mcp.CallToolResult, error) {
			pr["error"] = msg
			res := paymentRequired(pr, settlement)
			if p.cfg.Extension && advertisesExtension(ctx) {
				if res.Meta == nil {
					res.Meta = &mcp.Meta{AdditionalFields: map[string]any{}}
				}
				res.Meta.AdditionalFields[markerPaymentRequired] = true
				p.mu.Lock()
				p.extension++
				p.mu.Unlock()
			}
			return res, nil
		}
		var payment any
		if req.Params.Meta != nil {
			payment = req.Params.Meta.AdditionalFields["x402/payment"]
		}
		if payment == nil {
			return refuse("Payment required to call "+tool, nil)
		}
		payload, err := json.Marshal(payment)
		if err != nil {
			return refuse("invalid payment payload", nil)
		}
		var pp struct {
			X402Version int             `json:"x402Version"`
			Accepted    json.RawMessage `json:"accepted"`
		}
		if err := json.Unmarshal(payload, &pp); err != nil || pp.X402Version != 2 {
			return refuse("invalid payment payload", nil)
		}
		if !jsonEqual(pp.Accepted, opt) {
			return refuse("No matching payment requirements", nil)
		}
		body := facilitatorRequest{X402Version: 2, PaymentPayload: payload, PaymentRequirements: opt}
		var vr verifyResponse
		if err := p.fac.callFacilitator(ctx, "/verify", body, &vr); err != nil {
			return refuse("payment verification failed: "+err.Error(), nil)
		}
		if !vr.IsValid {
			return refuse(vr.InvalidReason, nil)
		}
		p.count(tool)
		res := run(ctx, req)
		if res.IsError {
			// Not delivered, so not charged: the authorization stays unused.
			return res, nil
		}
		var sr settleResponse
		if err := p.fac.callFacilitator(context.WithoutCancel(ctx), "/settle", body, &sr); err != nil {
			sr = settleResponse{ErrorReason: reasonUnexpectedSettle, ErrorMessage: err.Error(), Network: p.cfg.Network}
		}
		if !sr.Success {
			return refuse("Settlement failed", sr)
		}
		if tool == "crash_once" && p.cfg.CrashFile != "" {
			if f, err := os.OpenFile(p.cfg.CrashFile, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err == nil {
				f.Close()
				// Paid and settled, and the answer never leaves.
				os.Exit(3)
			}
		}
		res.Meta = &mcp.Meta{AdditionalFields: map[string]any{"x402/payment-response": sr}}
		return res, nil
	}
}

// ServePaidMCPStdio serves the paid MCP server on stdin and stdout until
// stdin closes.
func ServePaidMCPStdio(cfg PaidMCPConfig) error {
	_, s := NewPaidMCP(cfg)
	err := mcpserver.ServeStdio(s)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// PaidMCPHandler is the paid MCP server over streamable HTTP, at any path.
// With cfg.Extension, a tool result marked as a payment requirement for a
// client advertising org.x402/payment is rewritten on its way out into the
// extension's payment_required result (mcp-go's server has no such result
// type).
func PaidMCPHandler(cfg PaidMCPConfig) (*PaidMCP, http.Handler) {
	p, s := NewPaidMCP(cfg)
	h := mcpserver.NewStreamableHTTPServer(s)
	if !cfg.Extension {
		return p, h
	}
	return p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			h.ServeHTTP(w, r)
			return
		}
		rec := newBufferedResponse()
		h.ServeHTTP(rec, r)
		body := rec.body.Bytes()
		if strings.Contains(rec.header.Get("Content-Type"), "text/event-stream") {
			lines := strings.Split(string(body), "\n")
			for i, l := range lines {
				if d, ok := strings.CutPrefix(l, "data: "); ok {
					lines[i] = "data: " + string(asPaymentRequired([]byte(d)))
				}
			}
			body = []byte(strings.Join(lines, "\n"))
		} else {
			body = asPaymentRequired(body)
		}
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		w.WriteHeader(rec.status)
		w.Write(body)
	})
}

// asPaymentRequired rewrites a JSON-RPC response whose tool result is
// marked as a payment requirement into a payment_required result.
func asPaymentRequired(msg []byte) []byte {
	var env map[string]json.RawMessage
	if json.Unmarshal(msg, &env) != nil || env["result"] == nil {
		return msg
	}
	var res struct {
		StructuredContent json.RawMessage `json:"structuredContent"`
		Meta              map[string]any  `json:"_meta"`
	}
	if json.Unmarshal(env["result"], &res) != nil || res.Meta[markerPaymentRequired] != true {
		return msg
	}
	delete(res.Meta, markerPaymentRequired)
	out := map[string]any{"resultType": "payment_required", "paymentRequired": res.StructuredContent}
	if len(res.Meta) > 0 {
		out["_meta"] = res.Meta
	}
	b, err := json.Marshal(out)
	if err != nil {
		return msg
	}
	env["result"] = b
	if b, err = json.Marshal(env); err != nil {
		return msg
	}
	return b
}
