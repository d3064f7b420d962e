package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/x402-mcp/x402-mcp/pay"
)

// typed adapts a handler taking a decoded input struct. Input schema
// validation has already run; decoding can still fail on types the schema
// cannot express, and the agent should hear about that.
func typed[In any](h func(context.Context, In) (*mcp.CallToolResult, error)) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var in In
		if err := req.BindArguments(&in); err != nil {
			return mcp.NewToolResultError("invalid arguments: " + err.Error()), nil
		}
		return h(ctx, in)
	}
}

func structured(v any) *mcp.CallToolResult {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return mcp.NewToolResultError("cannot encode the result: " + err.Error())
	}
	return mcp.NewToolResultStructured(v, string(b))
}

// agentError turns the errors of package pay into text an agent can act
// on. Anything else is a bug and goes back as a Go error.
func agentError(err error) (*mcp.CallToolResult, error) {
	var (
		reqErr    *pay.RequestError
		unpayable *pay.UnpayableError
		denied    *pay.DeniedError
		failed    *pay.PaymentFailedError
		noWallet  pay.NoWalletError
	)
	switch {
	case errors.As(err, &reqErr):
		return mcp.NewToolResultError(fmt.Sprintf("Request failed: %s. Nothing was paid. Check the URL, method and headers.", reqErr.Error())), nil
	case errors.As(err, &unpayable):
		return mcp.NewToolResultError(fmt.Sprintf("The server asks for payment, but nothing it offers can be paid: %s. Nothing was signed or paid. This server cannot be used with the operator's configured tokens and networks.", strings.Join(unpayable.Reasons, "; "))), nil
	case errors.As(err, &denied):
		return mcp.NewToolResultError(fmt.Sprintf("Payment denied by the operator's policy: %s. Nothing was signed or paid. Choose a cheaper resource, or ask the user to change the x402-mcp policy (you cannot change it yourself).", strings.Join(denied.Verdict.Reasons, "; "))), nil
	case errors.As(err, &noWallet):
		return mcp.NewToolResultError("This resource requires payment, but x402-mcp has no wallet key configured. Nothing was paid. Ask the user to configure a key (see the x402-mcp README)."), nil
	case errors.As(err, &failed):
		var b strings.Builder
		b.WriteString(failed.Error())
		if r := failed.Receipt; r != nil {
			fmt.Fprintf(&b, ". The authorization was for %s %s to %s on %s (nonce %s), valid until unix time %d", r.Amount, r.Token, r.PayTo, r.Network, r.Nonce, r.ValidBefore)
		}
		b.WriteString(". It was not paid again. The server may still settle it until it expires; do not retry blindly — tell the user, or check with the resource's provider.")
		if failed.Body != "" {
			fmt.Fprintf(&b, " Server response: %s", failed.Body)
		}
		return mcp.NewToolResultError(b.String()), nil
	}
	return nil, err
}
