package pay

import (
	"context"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"strconv"

	"github.com/ethereum/go-ethereum/common"

	"github.com/x402-mcp/x402-mcp/policy"
	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/x402"
)

// JudgeListing judges payment options seen somewhere other than a live 402
// (a discovery listing, a catalog): they are read, assessed, chosen among
// and judged exactly as the same options in a 402 from rawURL would be, so
// discovery shows the verdict a fetch would act on. version is the x402
// version the options are written in (1 or 2; 0 means 2). Listings can be
// stale or wrong: a payment is always decided on the live 402.
func (c *Client) JudgeListing(ctx context.Context, rawURL string, version int, options []json.RawMessage) (*Quote, error) {
	q := &Quote{URL: rawURL, Status: 402}
	u, err := url.Parse(rawURL)
	if err == nil {
		q.Host, err = policy.NormalizeHost(u)
	}
	if err != nil {
		q.unreadable = []string{"the listed URL cannot be paid: " + err.Error()}
		return q, c.judge(ctx, q)
	}
	if len(options) == 0 {
		q.unreadable = []string{"the listing gives no payment terms"}
		return q, c.judge(ctx, q)
	}
	if version != 1 {
		version = 2
	}
	doc := []byte(`{"x402Version":` + strconv.Itoa(version) + `,"accepts":[`)
	for i, o := range options {
		if i > 0 {
			doc = append(doc, ',')
		}
		doc = append(doc, o...)
	}
	doc = append(doc, "]}"...)
	pr, err := x402.ParseResponse(nil, doc)
	if err != nil {
		q.unreadable = []string{"the listed payment terms are malformed: " + err.Error()}
		return q, c.judge(ctx, q)
	}
	q.Required = pr
	if in, ok := x402.InputsFromRequired(pr); ok {
		q.Inputs = &in
	}
	q.Options = assess(pr, c.cfg.Registry, c.cfg.Policy, policy.Request{URL: q.URL, Host: q.Host}, c.Payer())
	q.Chosen = choose(q.Options)
	return q, c.judge(ctx, q)
}

// QuoteListed quotes a request that Quote does not send (a method other
// than GET or HEAD) from a listing of its endpoint: the listed options are
// judged as JudgeListing does, and the request is checked against the
// inputs they, or the listing's bazaar input, declare. listedURL is the
// URL the listing gives; nothing is sent. The live 402 that x402_fetch
// reads decides any payment.
func (c *Client) QuoteListed(ctx context.Context, r Request, listedURL string, version int, options []json.RawMessage, input json.RawMessage) (*Quote, error) {
	u, err := r.validate()
	if err != nil {
		return nil, err
	}
	q, err := c.JudgeListing(ctx, listedURL, version, options)
	if err != nil {
		return nil, err
	}
	q.Listed, q.Status = true, 0
	if in, ok := x402.ParseInputs(input, nil); ok && q.Inputs == nil {
		q.Inputs = &in
	}
	if q.Inputs != nil {
		q.Missing = q.Inputs.Missing(u.Query(), r.Body)
	}
	return q, nil
}

// readOnly reports whether an HTTP method is safe to send to learn a
// price: it changes nothing on the server.
func readOnly(method string) bool {
	return method == http.MethodGet || method == http.MethodHead
}

// WithinUSD reports whether amount of the token at (network, asset) is at
// most limit USD, by the registry's decimals. Unknown and non-USD tokens
// are never within.
func (c *Client) WithinUSD(network, asset string, amount *big.Int, limit policy.USD) bool {
	if amount == nil || !common.IsHexAddress(asset) {
		return false
	}
	t, ok := c.cfg.Registry.Lookup(network, common.HexToAddress(asset))
	if !ok || t.Currency != "USD" {
		return false
	}
	return amount.Cmp(limit.Atomic(t.Decimals)) <= 0
}

// Registry is the token registry in use.
func (c *Client) Registry() *tokens.Registry { return c.cfg.Registry }
