// Package archtest holds the test that keeps the dependency direction of
// x402-mcp: cmd wires everything; tools call pay; pay is the only flow that
// spends and calls x402, policy and the signer; x402, policy and signer know
// nothing of MCP or HTTP servers; the local test network shares no code
// with the client it tests.
package archtest
