package tools

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/upstream"
)

// testUpstream connects to the local network's paid MCP server over
// streamable HTTP (listing needs no chain or facilitator) as upstream
// "paid".
func testUpstream(t *testing.T) *upstream.Server {
	t.Helper()
	_, h := localnet.PaidMCPHandler(localnet.PaidMCPConfig{FacilitatorURL: "http://127.0.0.1:9", Network: "eip155:1337",
		Asset: common.HexToAddress("0x1111111111111111111111111111111111111111"), TokenName: "USDC", TokenVersion: "2",
		PayTo: common.HexToAddress("0x2222222222222222222222222222222222222222")})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u := upstream.New(upstream.Config{Name: "paid", URL: srv.URL + "/mcp"}, nil)
	t.Cleanup(func() { u.Close() })
	u.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	u.Ready(ctx)
	if len(u.Tools()) == 0 {
		t.Fatal("the paid MCP server listed no tools")
	}
	return u
}

// TestUpstreamToolShape: re-exported tools keep the upstream's schemas,
// gain max_price, say the declared price and are marked as paying.
func TestUpstreamToolShape(t *testing.T) {
	d := Deps{Upstreams: []*upstream.Server{testUpstream(t)}}
	found := 0
	for _, st := range Tools(d) {
		if !strings.HasPrefix(st.Tool.Name, "paid__") {
			continue
		}
		found++
		if !strings.Contains(string(st.Tool.RawInputSchema), `"max_price"`) {
			t.Errorf("%s lacks max_price: %s", st.Tool.Name, st.Tool.RawInputSchema)
		}
		if st.Tool.Name == "paid__weather" && (!strings.Contains(st.Tool.Description, "0.01 USD") || len(st.Tool.RawOutputSchema) == 0) {
			t.Errorf("paid__weather: %q %s", st.Tool.Description, st.Tool.RawOutputSchema)
		}
	}
	if found != 6 {
		t.Errorf("%d re-exported tools, want 6", found)
	}
}
