// Package tokens is the registry of tokens x402-mcp is willing to pay with,
// and the conversion between atomic units and decimal text.
//
// Invariants:
//   - Only a token in the registry is payable. A 402 names a token by
//     (network, contract address); the registry, never the 402, supplies its
//     decimals and its EIP-712 domain (name, version).
//   - Money is an integer number of atomic units (*big.Int). Decimal text
//     exists only at the edges (configuration and what is shown), and
//     converting it never rounds silently: too many decimals is an error.
package tokens
