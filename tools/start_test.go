package tools

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// startingClient is an in-process session with a server whose start is
// the given function.
func startingClient(t *testing.T, start Start) *client.Client {
	t.Helper()
	srv, err := NewStartingServer(start, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.NewInProcessClient(srv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "test", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestFailedStartRefusesEveryCall: a server whose start failed (a
// tampered ledger, a wrong passphrase) still lists its tools, and every
// call, and every resource read, answers with the start's error.
func TestFailedStartRefusesEveryCall(t *testing.T) {
	startErr := errors.New("ledger: /x/ledger.db: the sums disagree with the records\n\thint: see every difference with x402-mcp ledger verify")
	c := startingClient(t, func(context.Context) (Deps, error) { return Deps{}, startErr })
	ctx := context.Background()
	list, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil || len(list.Tools) != len(Tools(Deps{})) {
		t.Fatalf("tools/list on a server that could not start: %v %v", list, err)
	}
	args := map[string]map[string]any{"x402_quote": {"url": "https://example.com/"}, "x402_fetch": {"url": "https://example.com/"}}
	for _, tool := range list.Tools {
		if args[tool.Name] == nil {
			args[tool.Name] = map[string]any{}
		}
		r, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: tool.Name, Arguments: args[tool.Name]}})
		if err != nil {
			t.Fatalf("%s: protocol error %v", tool.Name, err)
		}
		text := r.Content[0].(mcp.TextContent).Text
		if !r.IsError || !strings.Contains(text, "could not start") || !strings.Contains(text, "x402-mcp ledger verify") {
			t.Errorf("%s: %v %q", tool.Name, r.IsError, text)
		}
	}
	if _, err := c.ReadResource(ctx, mcp.ReadResourceRequest{Params: mcp.ReadResourceParams{URI: policyURI}}); err == nil || !strings.Contains(err.Error(), "could not start") {
		t.Errorf("resource read: %v", err)
	}
	// Arguments are still checked first: the agent can correct its call
	// while the server is broken or starting.
	r, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "x402_quote", Arguments: map[string]any{"url": 5}}})
	if err != nil || !r.IsError || !strings.Contains(r.Content[0].(mcp.TextContent).Text, "invalid arguments") {
		t.Errorf("bad arguments: %+v %v", r, err)
	}
}

// TestCallsWaitForStart: a call made while the server starts waits for
// the start, and gives up with its own context.
func TestCallsWaitForStart(t *testing.T) {
	ready := make(chan struct{})
	startErr := errors.New("signer: cannot decrypt keystore")
	c := startingClient(t, func(ctx context.Context) (Deps, error) {
		select {
		case <-ready:
			return Deps{}, startErr
		case <-ctx.Done():
			return Deps{}, ctx.Err()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	r, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "x402_spending", Arguments: map[string]any{}}})
	if err == nil && !(r.IsError && strings.Contains(r.Content[0].(mcp.TextContent).Text, "still starting")) {
		t.Errorf("a call cancelled while starting: %+v", r)
	}
	close(ready)
	r, err = c.CallTool(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "x402_spending", Arguments: map[string]any{}}})
	if err != nil || !r.IsError || !strings.Contains(r.Content[0].(mcp.TextContent).Text, "cannot decrypt keystore") {
		t.Errorf("a call after the start failed: %+v %v", r, err)
	}
}
