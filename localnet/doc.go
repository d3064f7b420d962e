// Package localnet runs a self-contained x402 network inside the process: a
// go-ethereum simulated chain with a real EIP-3009 token (see the token
// subpackage) so payments are signed, verified and settled exactly as they
// would be against USDC on a public chain, without any network access.
//
// The simulated chain only produces blocks when asked. Chain owns the single
// goroutine that asks, so concurrent settlements share blocks and block
// timestamps never run further ahead of wall-clock time than
// ChainConfig.MaxClockDrift; x402 authorizations carry validity windows
// checked against block.timestamp, and a chain that raced ahead of the clock
// would reject payments a real network would accept.
package localnet
