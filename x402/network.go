package x402

import (
	"math/big"
	"strconv"
	"strings"
)

// v1Networks maps the short names of x402 v1 to EVM chain ids. v1 servers
// write these; v2 servers write CAIP-2. Arbitrum and Optimism never had
// official v1 names, but the obvious ones cost nothing and appear in the wild.
var v1Networks = map[string]uint64{
	"ethereum":         1,
	"optimism":         10,
	"polygon":          137,
	"base":             8453,
	"arbitrum":         42161,
	"avalanche-fuji":   43113,
	"avalanche":        43114,
	"polygon-amoy":     80002,
	"base-sepolia":     84532,
	"arbitrum-sepolia": 421614,
}

// v1Names is the reverse of v1Networks, built once.
var v1Names = func() map[uint64]string {
	m := make(map[uint64]string, len(v1Networks))
	for name, id := range v1Networks {
		m[id] = name
	}
	return m
}()

// nonEVM lists names and CAIP-2 namespaces a server may offer next to EVM
// networks, so the error can say why instead of just "unknown".
var nonEVM = map[string]bool{
	"solana": true, "solana-devnet": true, "sei": true, "sei-testnet": true,
	"sui": true, "aptos": true, "stellar": true, "near": true, "ton": true,
	"bip122": true, "cosmos": true, "polkadot": true, "tron": true, "starknet": true,
}

const caip2EVMPrefix = "eip155:"

// CAIP2 normalises a network as written by either protocol version to its
// CAIP-2 id ("eip155:<chain id>") and chain id. A v1 short name must be in the
// table above; an eip155 id is accepted for any chain, written strictly:
// lower-case namespace, decimal chain id without sign or leading zeros,
// between 1 and 2^64-1. Whether a chain is one we pay on is the token
// registry's decision, not the wire format's. Anything else gives an
// *UnsupportedNetworkError.
func CAIP2(network string) (caip2 string, chainID *big.Int, err error) {
	if id, ok := v1Networks[network]; ok {
		return caip2EVMPrefix + strconv.FormatUint(id, 10), new(big.Int).SetUint64(id), nil
	}
	id, ok, reason := parseEIP155(network)
	if !ok {
		return "", nil, &UnsupportedNetworkError{Network: network, Reason: reason}
	}
	return network, new(big.Int).SetUint64(id), nil
}

// V1Name returns the v1 short name of a CAIP-2 id, if it has one. It accepts
// only the canonical form that CAIP2 returns.
func V1Name(caip2 string) (string, bool) {
	id, ok, _ := parseEIP155(caip2)
	if !ok {
		return "", false
	}
	name, ok := v1Names[id]
	return name, ok
}

// parseEIP155 validates a canonical "eip155:<id>" string, returning why not
// otherwise (phrased to be appended to "is not supported: ").
func parseEIP155(s string) (id uint64, ok bool, reason string) {
	ns, ref, found := strings.Cut(s, ":")
	switch {
	case s == "":
		return 0, false, "the network is empty"
	case nonEVM[s] || (found && nonEVM[ns]):
		return 0, false, "not an EVM network; only eip155 networks can be paid"
	case !found:
		return 0, false, "unknown network name; use eip155:<chain id> or one of " + knownNames()
	case ns != "eip155":
		return 0, false, "not an EVM (eip155) network"
	}
	digits := ref != "" && len(ref) <= 20 && (ref[0] != '0' || len(ref) == 1)
	for i := 0; digits && i < len(ref); i++ {
		digits = ref[i] >= '0' && ref[i] <= '9'
	}
	if !digits {
		return 0, false, "the chain id must be a decimal integer without sign or leading zeros"
	}
	id, err := strconv.ParseUint(ref, 10, 64)
	if err != nil || id == 0 {
		return 0, false, "the chain id must be between 1 and 2^64-1"
	}
	return id, true, ""
}

// knownNames lists the v1 names in chain-id order, for an error message that
// tells the reader what would have worked.
func knownNames() string {
	ids := []uint64{1, 10, 137, 8453, 42161, 43114, 43113, 80002, 84532, 421614}
	names := make([]string, 0, len(ids))
	for _, id := range ids {
		names = append(names, v1Names[id])
	}
	return strings.Join(names, ", ")
}
