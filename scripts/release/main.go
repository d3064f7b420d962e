// Command release builds x402-mcp's release artifacts into a directory:
// static binaries (archives) for linux, darwin and windows on amd64 and
// arm64, a Claude Desktop bundle (.mcpb) per platform, the MCP registry's
// server.json naming the bundles, and SHA256SUMS. It publishes nothing.
//
// Usage: go run ./scripts/release VERSION [OUT_DIR]   (OUT_DIR defaults to dist/VERSION)
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/x402-mcp/x402-mcp/internal/release"
)

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fmt.Fprintln(os.Stderr, "usage: go run ./scripts/release VERSION [OUT_DIR]\n\tVERSION is a semantic version with a leading v, e.g. v0.2.0")
		os.Exit(2)
	}
	version := os.Args[1]
	out := filepath.Join("dist", version)
	if len(os.Args) == 3 {
		out = os.Args[2]
	}
	module, err := os.Getwd()
	if err == nil {
		_, err = os.Stat(filepath.Join(module, "go.mod"))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "release: run it from the repository's root (where go.mod is)")
		os.Exit(1)
	}
	arts, err := release.Build(release.Options{Version: version, Module: module, Out: out, Log: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, a := range arts {
		fmt.Printf("%s  %s  (%d bytes)\n", a.SHA256, filepath.Join(out, a.Name), a.Size)
	}
}
