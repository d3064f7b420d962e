package tools

import (
	"context"
	"encoding/json"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/x402-mcp/x402-mcp/pay"
)

// Resource URIs the server offers.
const (
	policyURI   = "x402://policy"
	receiptsURI = "x402://receipts/recent"
)

// resources lists the MCP resources: the effective policy in plain words,
// and the recent receipts from the ledger.
func resources(client *pay.Client) []server.ServerResource {
	return []server.ServerResource{
		{
			Resource: mcp.NewResource(policyURI, "Effective spending policy",
				mcp.WithResourceDescription("The operator's spending policy in force, in plain words."),
				mcp.WithMIMEType("text/plain")),
			Handler: func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
				return []mcp.ResourceContents{mcp.TextResourceContents{URI: policyURI, MIMEType: "text/plain", Text: client.Policy().Describe()}}, nil
			},
		},
		{
			Resource: mcp.NewResource(receiptsURI, "Recent payments",
				mcp.WithResourceDescription("The last 50 payments recorded in the ledger, newest first, with their state and settlement transaction."),
				mcp.WithMIMEType("application/json")),
			Handler: func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
				s, err := client.Spending(ctx, 50)
				if err != nil {
					return nil, err
				}
				b, err := json.MarshalIndent(entries(s.Recent), "", "  ")
				if err != nil {
					return nil, err
				}
				return []mcp.ResourceContents{mcp.TextResourceContents{URI: receiptsURI, MIMEType: "application/json", Text: string(b)}}, nil
			},
		},
	}
}
