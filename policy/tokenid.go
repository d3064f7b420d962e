package policy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/x402-mcp/x402-mcp/internal/redact"
	"github.com/x402-mcp/x402-mcp/tokens"
)

// ParseTokenID reads a CAIP-19 id of an ERC-20 token on an EVM chain,
// "eip155:<chain id>/erc20:<0x address>".
func ParseTokenID(s string) (network string, address common.Address, err error) {
	bad := func(why string) (string, common.Address, error) {
		return "", common.Address{}, fmt.Errorf("token %s is not a CAIP-19 id like \"eip155:8453/erc20:0x…\": %s", redact.Quote(s), why)
	}
	network, asset, ok := strings.Cut(s, "/")
	if !ok {
		return bad("there is no \"/\" between network and asset")
	}
	if _, err := tokens.ParseNetwork(network); err != nil {
		return bad("the network is not eip155:<chain id>")
	}
	ref, ok := strings.CutPrefix(asset, "erc20:")
	if !ok {
		return bad("the asset namespace is not erc20")
	}
	a, err := ParseAddress(ref)
	if err != nil {
		return bad(err.Error())
	}
	return network, a, nil
}

// ParseAddress reads a 0x-prefixed 20-byte hex address. Mixed case must be
// a valid EIP-55 checksum, which catches most typos; the zero address is
// refused, since a payment there burns the money.
func ParseAddress(s string) (common.Address, error) {
	hex, ok := strings.CutPrefix(s, "0x")
	if !ok || len(hex) != 40 || !common.IsHexAddress(s) {
		return common.Address{}, fmt.Errorf("%s is not a 0x-prefixed 20-byte hex address", redact.Quote(s))
	}
	a := common.HexToAddress(s)
	if hex != strings.ToLower(hex) && hex != strings.ToUpper(hex) && a.Hex() != s {
		return common.Address{}, fmt.Errorf("%q has a wrong EIP-55 checksum (did you mean %s?)", s, a.Hex())
	}
	if a == (common.Address{}) {
		return common.Address{}, errors.New("the zero address is not a payee")
	}
	return a, nil
}
