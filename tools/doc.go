// Package tools exposes x402-mcp to an agent as MCP tools.
//
// Handlers are thin: each decodes a typed input, calls one function of
// package pay, and shapes a typed output. What the agent can act on (a
// policy denial, an unreachable host, an unpayable 402) comes back as a tool
// error result with plain text; only bugs become protocol errors.
package tools
