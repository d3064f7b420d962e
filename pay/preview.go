package pay

import (
	"fmt"
	"math/big"
	"net/url"

	"github.com/ethereum/go-ethereum/common"

	"github.com/x402-mcp/x402-mcp/policy"
	"github.com/x402-mcp/x402-mcp/tokens"
)

// Offer is a price seen somewhere other than a live 402 (a discovery
// listing): what a payment would be, to judge before any request.
type Offer struct {
	Network string // CAIP-2
	Asset   string
	PayTo   string
	Amount  *big.Int
}

// Preview is the policy's verdict on an offer for a URL. It is a preview
// only: listings can be stale or wrong, and a payment is always decided on
// the live 402.
type Preview struct {
	// Token is the registry token, nil when the offer's token is unknown.
	Token *tokens.Token
	// Payable is false when the offer could not be paid at all (Reason).
	Payable bool
	Reason  string
	Verdict policy.Verdict
}

// Preview judges an offer for rawURL against the registry and the policy.
// Budgets are not consulted: they change by the time a payment happens.
func (c *Client) Preview(rawURL string, o Offer) Preview {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Preview{Reason: "the URL is not valid"}
	}
	host, err := policy.NormalizeHost(u)
	if err != nil {
		return Preview{Reason: "the host cannot be paid: " + err.Error()}
	}
	if !common.IsHexAddress(o.Asset) || !common.IsHexAddress(o.PayTo) || o.Amount == nil || o.Amount.Sign() <= 0 {
		return Preview{Reason: "the listing's payment terms are malformed"}
	}
	t, ok := c.cfg.Registry.Lookup(o.Network, common.HexToAddress(o.Asset))
	if !ok {
		return Preview{Reason: fmt.Sprintf("token %s on %s is not in the token registry", o.Asset, o.Network)}
	}
	v := c.cfg.Policy.Check(policy.Request{URL: rawURL, Host: host, Token: t, PayTo: common.HexToAddress(o.PayTo), Amount: o.Amount})
	return Preview{Token: &t, Payable: true, Verdict: v}
}

// Registry is the token registry in use.
func (c *Client) Registry() *tokens.Registry { return c.cfg.Registry }
