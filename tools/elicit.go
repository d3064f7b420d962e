package tools

import (
	"context"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/x402-mcp/x402-mcp/pay"
)

// approvalKey names the elicitation in the multi round-trip exchange.
const approvalKey = "x402_payment_approval"

// answered reports whether a tools/call carries answers to input requests:
// the second leg of an approval round trip.
func answered(req mcp.CallToolRequest) bool {
	return len(req.Params.InputResponses) > 0 || req.Params.RequestState != ""
}

// canElicit reports whether the client can ask its user: by the request's
// own capabilities (protocol 2026-07-28 and later) or the session's.
func canElicit(ctx context.Context) bool {
	if info := server.RequestProtocolInfoFromContext(ctx); info != nil && info.ClientCapabilities != nil {
		return info.ClientCapabilities.Elicitation != nil
	}
	if s, ok := server.ClientSessionFromContext(ctx).(server.SessionWithClientInfo); ok {
		return s.GetClientCapabilities().Elicitation != nil
	}
	return false
}

// askHuman turns a payment that needs approval into an elicitation, bound
// to that payment by a signed, single-use, expiring state token.
func askHuman(ctx context.Context, appr *approvals, need *pay.ApprovalNeededError) (*mcp.CallToolResult, error) {
	a := need.Ask
	token, err := appr.issue(need.Binding)
	if err != nil {
		return nil, fmt.Errorf("tools: issuing an approval state token: %w", err)
	}
	// The host comes first, on a line of its own: it is what the human
	// should recognise before anything else (see pay.ShowURL).
	var msg strings.Builder
	writeTerms(&msg, a, "")
	msg.WriteString("An AI agent asks to make this payment.")
	for _, b := range a.BudgetAfter {
		fmt.Fprintf(&msg, "\n%s.", b)
	}
	msg.WriteString("\nApprove this payment?")
	return server.NewInputRequestBuilder(token).Elicit(approvalKey, mcp.ElicitationParams{
		Mode:    mcp.ElicitationModeForm,
		Message: msg.String(),
		RequestedSchema: map[string]any{
			"type": "object",
			"properties": map[string]any{
				"approve": map[string]any{"type": "boolean", "title": "Approve", "description": "Pay " + a.Amount + " " + a.Token + " to " + a.Host},
			},
			"required": []string{"approve"},
		},
	}).ToolResult(), nil
}

// approvalAnswer checks the second leg of an approval round trip: the
// state token must be this server's, unexpired and unused, and the human
// must have accepted. It returns the approved payment's binding, or a tool
// result refusing, or cancelled when the client dismissed the question
// without an answer.
func approvalAnswer(appr *approvals, req mcp.CallToolRequest) (binding [32]byte, refused *mcp.CallToolResult, cancelled bool) {
	binding, err := appr.redeem(req.Params.RequestState)
	if err != nil {
		return binding, mcp.NewToolResultError("Payment refused: " + err.Error() + ". Nothing was paid. An approval counts only as the answer to the question this server asked, once. Call x402_fetch again without an approval to ask the user."), false
	}
	answer := server.ElicitationResponse(req.Params.InputResponses, approvalKey)
	switch {
	case answer == nil:
		return binding, mcp.NewToolResultError("Payment refused: the answer to the approval question is missing. Nothing was paid."), false
	case answer.Action == mcp.ElicitationResponseActionCancel:
		return binding, nil, true
	case answer.Action != mcp.ElicitationResponseActionAccept:
		return binding, mcp.NewToolResultError(fmt.Sprintf("The user did not approve the payment (%s). Nothing was paid. Do not retry unless the user asks you to.", answer.Action)), false
	}
	content, _ := answer.Content.(map[string]any)
	if approved, _ := content["approve"].(bool); !approved {
		return binding, mcp.NewToolResultError("The user declined the payment. Nothing was paid. Do not retry unless the user asks you to."), false
	}
	return binding, nil, false
}

// writeTerms writes what a human reads before approving a payment, one
// term a line, host first, each line starting with indent.
func writeTerms(b *strings.Builder, a pay.Ask, indent string) {
	for _, t := range a.Terms() {
		fmt.Fprintf(b, "%s%s: %s\n", indent, t.Name, t.Value)
	}
}
