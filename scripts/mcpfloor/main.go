// Command mcpfloor is the smallest MCP server mcp-go makes: no tools, no
// resources, nothing of x402-mcp. scripts/bench.sh spawns it beside
// x402-mcp to show the start-up floor of the framework itself (the Go
// runtime and the package inits mcp-go brings, JSON schema compilers
// among them), which no change of ours can go below.
package main

import (
	"fmt"
	"os"

	"github.com/mark3labs/mcp-go/server"
)

func main() {
	if err := server.ServeStdio(server.NewMCPServer("mcpfloor", "0")); err != nil {
		fmt.Fprintln(os.Stderr, "mcpfloor:", err)
		os.Exit(1)
	}
}
