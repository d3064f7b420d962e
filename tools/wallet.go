package tools

import (
	"context"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/x402"
)

// WalletInput is what x402_wallet takes: nothing.
type WalletInput struct{}

// WalletOutput is what x402_wallet returns.
type WalletOutput struct {
	Payer    string       `json:"payer" jsonschema:"The wallet address that pays; empty when no key is configured."`
	Balances []BalanceOut `json:"balances" jsonschema:"Each registry token on each configured network, read from the chain over RPC."`
}

// BalanceOut is one token balance.
type BalanceOut struct {
	Network       string `json:"network"`
	Token         string `json:"token,omitempty"`
	Asset         string `json:"asset,omitempty"`
	Balance       string `json:"balance,omitempty" jsonschema:"In whole tokens, e.g. 12.5."`
	BalanceAtomic string `json:"balance_atomic,omitempty"`
	Problem       string `json:"problem,omitempty" jsonschema:"Why no balance is shown, e.g. no RPC endpoint is configured for this network."`
}

func walletTool(d Deps) server.ServerTool {
	tool := mcp.NewTool("x402_wallet",
		mcp.WithDescription("Show the paying wallet: its address and, for each configured network, its token balances read from the chain (or why a balance cannot be read, e.g. no RPC endpoint configured). Read-only."),
		mcp.WithTitleAnnotation("Wallet"),
		schemas(mcp.WithInputSchema[WalletInput](), mcp.WithOutputSchema[WalletOutput]()),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(true),
	)
	return server.ServerTool{Tool: tool, Handler: typed(func(ctx context.Context, _ WalletInput) (*mcp.CallToolResult, error) {
		out := WalletOutput{Balances: []BalanceOut{}}
		payer := d.Pay.Payer()
		if payer == ([20]byte{}) {
			return mcp.NewToolResultError("No wallet key is configured, so there is no payer address or balance. Ask the user to configure a key (x402-mcp init)."), nil
		}
		out.Payer = payer.Hex()
		if d.Wallet != nil {
			for _, b := range d.Wallet.Balances(ctx, payer, d.Pay.Policy().Networks) {
				// A problem may quote what an RPC endpoint answered.
				o := BalanceOut{Network: b.Network, Problem: x402.Display(b.Problem, maxErrorText)}
				if b.Token.Address != ([20]byte{}) {
					o.Token, o.Asset = b.Token.Symbol, b.Token.Address.Hex()
				}
				if b.Amount != nil {
					o.Balance, o.BalanceAtomic = tokens.FormatUnits(b.Amount, b.Token.Decimals), b.Amount.String()
				}
				out.Balances = append(out.Balances, o)
			}
		}
		return structured(out), nil
	})}
}
