#!/usr/bin/env bash
# Prints x402-mcp's performance figures, each next to its goal where it has
# one: the Go benchmarks for signing, the client's own work on a paid fetch
# and full paid fetches on the local network (4 and 8 concurrent callers);
# then, measured on the built binary as an MCP host runs it (spawned, JSON-RPC
# on stdin and stdout; see scripts/servebench): the time from spawn to the
# initialize reply, the resident memory of an idle server with no config and
# with the encrypted keystore `x402-mcp init` writes (and the keystore's
# unlock time), and paid requests per second and resident memory after many
# paid x402_fetch calls with 8 concurrent callers over one stdio session.
#
# Usage: scripts/bench.sh [benchtime] [paid requests]   (default 2s, 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
benchtime=${1:-2s}
paid=${2:-1000}

echo "== benchmarks (benchtime $benchtime)"
# A failing benchmark is shown, and the binary's figures below still run.
go test -run '^$' -bench 'Sign$|Digest$|ClientWork|PaidFetch' -benchtime "$benchtime" ./signer/ ./pay/ 2>&1 |
	grep -E '^(Benchmark|--- FAIL|[[:space:]]+[a-z_]+_test\.go:)' || echo "(a benchmark failed: above)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=0 go build -o "$tmp/x402-mcp" ./cmd/x402-mcp
go build -o "$tmp/servebench" ./scripts/servebench
"$tmp/servebench" -bin "$tmp/x402-mcp" -runs 20 -paid "$paid" -callers 8
