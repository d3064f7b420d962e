package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/x402-mcp/x402-mcp/localnet"
)

const required = `{"x402Version":2,"error":"pay","accepts":[{"scheme":"exact","network":"eip155:84532","amount":"10000","asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","maxTimeoutSeconds":60,"extra":{"name":"USDC","version":"2"}}]}`

// TestRead reads both places a tool result may carry the requirements,
// and the settlement in _meta.
func TestRead(t *testing.T) {
	structured := &mcp.CallToolResult{IsError: true, RawStructuredContent: json.RawMessage(required), Content: []mcp.Content{mcp.NewTextContent("payment required")}}
	textOnly := &mcp.CallToolResult{IsError: true, Content: []mcp.Content{mcp.NewTextContent(required)}}
	for name, res := range map[string]*mcp.CallToolResult{"structuredContent": structured, "content[0].text": textOnly} {
		a, err := Read(res)
		if err != nil || a.Required == nil || a.IsError {
			t.Errorf("%s: %+v %v", name, a, err)
		}
	}
	// An ordinary tool error is not a payment requirement.
	a, err := Read(mcp.NewToolResultError(`{"x402Version":2}`))
	if err != nil || a.Required != nil || !a.IsError {
		t.Errorf("tool error: %+v %v", a, err)
	}
	ok := mcp.NewToolResultText("done")
	ok.Meta = &mcp.Meta{AdditionalFields: map[string]any{"x402/payment-response": map[string]any{"success": true, "transaction": "0x01"}}}
	a, err = Read(ok)
	if err != nil || a.Required != nil || a.IsError || a.Text != "done" || string(a.Settlement) != `{"success":true,"transaction":"0x01"}` {
		t.Errorf("paid result: %+v %s %v", a, a.Settlement, err)
	}
}

func TestReadToolPrice(t *testing.T) {
	tool := mcp.NewTool("weather", mcp.WithString("city"))
	tool.Meta = &mcp.Meta{AdditionalFields: map[string]any{"agents-x402/paymentRequired": true, "agents-x402/priceUSD": 0.01}}
	got, err := readTool(tool)
	if err != nil || !got.Priced || got.PriceUSD != "0.01" {
		t.Errorf("readTool: %+v %v", got, err)
	}
	if _, err := readTool(mcp.NewTool("bad name")); err == nil {
		t.Error("a tool name with a space was accepted")
	}
}

// TestExtensionPaymentRequired: an upstream speaking the experimental
// org.x402/payment extension answers the unpaid call with a
// payment_required result, which reaches pay as the same requirements.
func TestExtensionPaymentRequired(t *testing.T) {
	p, h := localnet.PaidMCPHandler(localnet.PaidMCPConfig{FacilitatorURL: "http://127.0.0.1:9", Network: "eip155:1337",
		Asset: common.HexToAddress("0x1111111111111111111111111111111111111111"), TokenName: "USDC", TokenVersion: "2",
		PayTo: common.HexToAddress("0x2222222222222222222222222222222222222222"), Extension: true})
	srv := httptest.NewServer(h)
	defer srv.Close()
	u := New(Config{Name: "ext", URL: srv.URL + "/mcp"}, nil)
	defer u.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := u.Call(ctx, "weather", json.RawMessage(`{"city":"Oslo"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Required == nil || a.IsError || !strings.Contains(string(a.Required), `"amount":"10000"`) {
		t.Errorf("answer: %+v %s", a, a.Required)
	}
	if n := p.ExtensionAnswers(); n != 1 {
		t.Errorf("the server sent %d payment_required results, want 1 (did x402-mcp advertise org.x402/payment?)", n)
	}
	// Without the marker, results pass unchanged.
	if got := toolResultForm(json.RawMessage(`{"content":[]}`)); string(got) != `{"content":[]}` {
		t.Errorf("toolResultForm changed a complete result: %s", got)
	}
}

// TestFollowsListChanged: a tool the upstream adds later is re-exported
// after its notifications/tools/list_changed.
func TestFollowsListChanged(t *testing.T) {
	s := mcpserver.NewMCPServer("changing", "1", mcpserver.WithToolCapabilities(true))
	s.AddTool(mcp.NewTool("one"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("1"), nil
	})
	srv := httptest.NewServer(mcpserver.NewStreamableHTTPServer(s))
	defer srv.Close()
	u := New(Config{Name: "changing", URL: srv.URL + "/mcp"}, nil)
	defer u.Close()
	changed := make(chan struct{}, 4)
	u.OnChange(func() { changed <- struct{}{} })
	u.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	u.Ready(ctx)
	<-changed
	if got := len(u.Tools()); got != 1 {
		t.Fatalf("%d tools, want 1", got)
	}
	s.AddTool(mcp.NewTool("two"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("2"), nil
	})
	select {
	case <-changed:
	case <-ctx.Done():
		t.Fatal("no change seen after the upstream added a tool")
	}
	if _, ok := u.Tool("two"); !ok {
		t.Errorf("tools after the change: %+v", u.Tools())
	}
}

// TestDown: an upstream that cannot be reached gives an error naming it,
// at once, and is retried later rather than on every call.
func TestDown(t *testing.T) {
	srv := httptest.NewServer(nil)
	url := srv.URL + "/mcp"
	srv.Close()
	u := New(Config{Name: "gone", URL: url}, nil)
	defer u.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := u.Call(ctx, "weather", json.RawMessage(`{}`), nil)
	var ue *UnavailableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "upstream gone is not available") {
		t.Fatalf("call to a closed port: %v", err)
	}
	start := time.Now()
	if _, err := u.Call(ctx, "weather", json.RawMessage(`{}`), nil); !errors.As(err, &ue) || time.Since(start) > time.Second {
		t.Errorf("second call: %v after %s", err, time.Since(start))
	}
}
