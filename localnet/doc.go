// Package localnet runs a self-contained x402 network inside the process, so
// payments are signed, verified and settled exactly as they would be against
// USDC on a public chain, without any network access.
//
// Chain is an in-memory EVM chain with a real EIP-3009 token deployed (the
// test USDC of the token subpackage): blocks are executed by go-ethereum's own
// state transition (package core) under Osaka rules, without a node, p2p
// networking or a database, so a binary that links localnet stays small.
// Facilitator verifies and settles x402 "exact" payments on that chain over
// the facilitator HTTP API of x402 v1 and v2, and serves a bazaar discovery
// listing. PaidAPI is a resource server that sells its routes (DefaultRoutes
// is the demo catalogue) through x402 v1 or v2, verifying and settling every
// payment through the facilitator over HTTP. Start wires them together into a Network: a chain, a funded
// facilitator account and a payee, and both servers on their own loopback
// ports, with the paid routes listed for discovery.
//
// The chain only produces blocks when asked. Chain owns the single goroutine
// that asks, so concurrent settlements share blocks and block timestamps
// never run further ahead of wall-clock time than ChainConfig.MaxClockDrift;
// x402 authorizations carry validity windows checked against
// block.timestamp, and a chain that raced ahead of the clock would reject
// payments a real network would accept.
package localnet
