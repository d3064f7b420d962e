package tokens

import (
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/x402-mcp/x402-mcp/internal/redact"
)

// Token is one payable token on one network.
type Token struct {
	// Network is the CAIP-2 id, e.g. "eip155:8453".
	Network string
	// ChainID is the numeric part of Network.
	ChainID *big.Int
	// Address is the token contract, the EIP-712 verifyingContract.
	Address common.Address
	// Symbol is for display only.
	Symbol string
	// Name and Version are the token's EIP-712 domain name and version.
	Name    string
	Version string
	// Decimals scales atomic units to whole tokens.
	Decimals uint8
	// Currency is what one whole token is worth one of ("USD" for USD
	// stablecoins). Caps written in USD apply only to USD tokens; a token
	// with another or no currency is not payable under a USD cap.
	Currency string
}

// String names the token for people: "USDC on eip155:8453 (0x8335…)".
func (t Token) String() string {
	return fmt.Sprintf("%s on %s (%s)", t.Symbol, t.Network, t.Address.Hex())
}

type key struct {
	network string
	address common.Address
}

// Registry maps (network, contract) to a Token. The zero value is empty and
// usable; a Registry is not safe for concurrent mutation, so build it first
// and only read it afterwards.
type Registry struct {
	m map[key]Token
}

// builtin is the reference table of x402-notes §5 (USDC, 6 decimals). Base
// and Base Sepolia are confirmed by real signatures; the rest come from SDK
// tables, which is why an operator may override any entry.
var builtin = []struct {
	chain        int64
	address      string
	name, symbol string
}{
	{8453, "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", "USD Coin", "USDC"},
	{84532, "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "USDC", "USDC"},
	{137, "0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359", "USD Coin", "USDC"},
	{80002, "0x41E94Eb019C0762f9Bfcf9Fb1E58725BfB0e7582", "USDC", "USDC"},
	{42161, "0xaf88d065e77c8cC2239327C5EDb3A432268e5831", "USD Coin", "USDC"},
	{421614, "0x75faf114eafb1BDbe2F0316DF893fd58CE46AA4d", "USD Coin", "USDC"},
	{43114, "0xB97EF9Ef8734C71904D8002F8b6Bc66Dd9c48a6E", "USD Coin", "USDC"},
	{43113, "0x5425890298aed601595a70AB815c96711a31Bc65", "USD Coin", "USDC"},
	{1, "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "USD Coin", "USDC"},
	{10, "0x0b2C639c533813f4Aa9D7837CAf62653d097Ff85", "USD Coin", "USDC"},
}

// Builtin returns a new registry holding the reference USDC table.
func Builtin() *Registry {
	r := &Registry{}
	for _, b := range builtin {
		t := Token{
			Network:  fmt.Sprintf("eip155:%d", b.chain),
			ChainID:  big.NewInt(b.chain),
			Address:  common.HexToAddress(b.address),
			Symbol:   b.symbol,
			Name:     b.name,
			Version:  "2",
			Decimals: 6,
			Currency: "USD",
		}
		if err := r.Add(t); err != nil {
			panic("tokens: bad builtin entry: " + err.Error())
		}
	}
	return r
}

// Add validates t and adds it, replacing any token with the same network and
// address (so an operator can correct a built-in entry).
func (r *Registry) Add(t Token) error {
	chainID, err := ParseNetwork(t.Network)
	if err != nil {
		return err
	}
	if t.ChainID != nil && t.ChainID.Cmp(chainID) != 0 {
		return fmt.Errorf("token %s: chain id %s does not match network %s", t.Address.Hex(), t.ChainID, t.Network)
	}
	t.ChainID = chainID
	switch {
	case t.Address == (common.Address{}):
		return errors.New("token address is the zero address")
	case t.Name == "":
		return fmt.Errorf("token %s on %s: EIP-712 name is empty", t.Address.Hex(), t.Network)
	case t.Version == "":
		return fmt.Errorf("token %s on %s: EIP-712 version is empty", t.Address.Hex(), t.Network)
	case t.Decimals > 36:
		return fmt.Errorf("token %s on %s: %d decimals is more than 36", t.Address.Hex(), t.Network, t.Decimals)
	}
	if t.Symbol == "" {
		t.Symbol = "TOKEN"
	}
	if r.m == nil {
		r.m = make(map[key]Token)
	}
	r.m[key{t.Network, t.Address}] = t
	return nil
}

// Lookup finds the token for a CAIP-2 network and contract address.
func (r *Registry) Lookup(network string, address common.Address) (Token, bool) {
	if r == nil {
		return Token{}, false
	}
	t, ok := r.m[key{network, address}]
	return t, ok
}

// All lists the registry's tokens, sorted by network and address.
func (r *Registry) All() []Token {
	if r == nil {
		return nil
	}
	out := make([]Token, 0, len(r.m))
	for _, t := range r.m {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Network != out[j].Network {
			return out[i].Network < out[j].Network
		}
		return out[i].Address.Cmp(out[j].Address) < 0
	})
	return out
}

// Networks lists the CAIP-2 networks that have at least one token.
func (r *Registry) Networks() []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range r.All() {
		if !seen[t.Network] {
			seen[t.Network] = true
			out = append(out, t.Network)
		}
	}
	return out
}

// ParseNetwork checks that s is an EVM CAIP-2 id ("eip155:<chain id>", chain
// id a positive decimal without leading zeros) and returns the chain id.
func ParseNetwork(s string) (*big.Int, error) {
	ref, ok := strings.CutPrefix(s, "eip155:")
	if !ok || ref == "" || len(ref) > 32 || ref[0] == '0' {
		return nil, fmt.Errorf("network %s is not an EVM CAIP-2 id like \"eip155:8453\"", redact.Quote(s))
	}
	for _, c := range ref {
		if c < '0' || c > '9' {
			return nil, fmt.Errorf("network %s is not an EVM CAIP-2 id like \"eip155:8453\"", redact.Quote(s))
		}
	}
	id, _ := new(big.Int).SetString(ref, 10)
	return id, nil
}
