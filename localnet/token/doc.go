// Package token holds the local test USDC: Token.sol, an ERC-20 with EIP-3009
// transferWithAuthorization, its compiled ABI and bytecode, and the abigen v2
// binding in token.go. The binding embeds the bytecode, so deploying needs no
// files at run time. See README.md for how to regenerate after editing
// Token.sol.
package token

//go:generate bash gen.sh
