package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"

	"github.com/tidwall/gjson"

	"github.com/x402-mcp/x402-mcp/localnet"
)

// startDemoUpstream serves the local network's paid MCP server over
// streamable HTTP on loopback and adds it to the demo's config as upstream
// "tools".
func startDemoUpstream(n *localnet.Network, cfgPath string) (string, func(), error) {
	_, h := localnet.PaidMCPHandler(localnet.PaidMCPConfigFor(n))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	url := "http://" + ln.Addr().String() + "/mcp"
	f, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = fmt.Fprintf(f, "\n[[upstreams]]\nname = \"tools\"\nurl = %q\n", url)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		srv.Close()
		return "", nil, err
	}
	return url, func() { srv.Close() }, nil
}

// paidTool calls the upstream's priced weather tool through x402-mcp and
// shows the payment; it returns the amount paid.
func (d *demoRun) paidTool(ctx context.Context) (*big.Int, error) {
	d.step("tools__weather {\"city\":\"Porto\"} (0.01 USDC: a tool of the upstream MCP server, paid with x402 over MCP)")
	r, err := d.call(ctx, "tools__weather", map[string]any{"city": "Porto"})
	if err != nil {
		return nil, err
	}
	if r.IsError {
		return nil, fmt.Errorf("tools__weather failed: %s", resultText(r))
	}
	d.line("%s", clipLine(structuredJSON(r), 90))
	var p gjson.Result
	if r.Meta != nil {
		if v, ok := r.Meta.AdditionalFields["x402-mcp/payment"]; ok {
			p = gjson.Parse(jsonString(v))
		}
	}
	if p.Get("transaction").String() == "" {
		return nil, fmt.Errorf("tools__weather returned no settled payment: %s", resultText(r))
	}
	d.line("paid %s %s to %s, transaction %s", p.Get("amount"), p.Get("token"), p.Get("pay_to"), p.Get("transaction"))
	amt, ok := new(big.Int).SetString(p.Get("amount_atomic").String(), 10)
	if !ok {
		return nil, fmt.Errorf("tools__weather: unreadable amount")
	}
	return amt, nil
}

// jsonString is v as JSON text, "" when it cannot be encoded.
func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}
