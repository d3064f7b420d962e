#!/usr/bin/env bash
# Prints x402-mcp's performance figures, each next to its goal where it has
# one: the Go benchmarks for signing, the client's own work on a paid fetch
# and full paid fetches on the local network (4 and 8 concurrent callers);
# then, measured on the built binary as an MCP host runs it (spawned, JSON-RPC
# on stdin and stdout; see scripts/servebench): the time from spawn to the
# initialize reply, the resident memory of an idle server with no config and
# with the encrypted keystore `x402-mcp init` writes (and the keystore's
# unlock time), and paid requests per second and resident memory after many
# paid x402_fetch calls with 8 concurrent callers over one stdio session;
# each memory figure with the parts of the binary (.text, .rodata,
# .gopclntab, data) that are resident.
#
# Usage: scripts/bench.sh [benchtime] [paid requests]   (default 2s, 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
benchtime=${1:-2s}
paid=${2:-1000}

echo "== benchmarks (benchtime $benchtime)"
# A failing benchmark is shown, and the figures below still run.
bench_out=$(go test -run '^$' -bench 'Sign$|Digest$|ClientSide|PaidFetch' -benchtime "$benchtime" ./signer/ ./pay/ 2>&1 || true)
grep -E '^(Benchmark|--- FAIL|[[:space:]]+[a-z_]+_test\.go:)' <<<"$bench_out" || echo "(a benchmark failed: above)"

# Issue 10, goals 1 and 2: each figure next to its goal. The client-side
# cost is BenchmarkClientSide (parse, decide, the one durable ledger write
# that also signs, encode, queue the settlement record); the request count
# is BenchmarkPaidFetchKnownTerms's.
echo "== goals (issue 10)"
awk '/^BenchmarkClientSide/ {printf "client-side cost per paid request: %.2f ms (goal ≤ 1.5 ms)\n", $3 / 1e6}' <<<"$bench_out"
awk '/^BenchmarkPaidFetchKnownTerms/ {for (i = 2; i <= NF; i++) if ($i == "requests/op") printf "requests to the API per paid fetch, terms known: %s (goal 1)\n", $(i - 1)}' <<<"$bench_out"

# Discovery (issue 10, goal 5): parsing one 1,000-item listing page, and a
# first x402_discover-style search (nothing cached) of the local facilitator
# listing 1,000 routes, its pages requested, read, parsed, merged, ranked.
echo "== discovery"
go test -run '^$' -bench 'ParseListing$|DiscoverFirstCall$' -benchtime "$benchtime" ./catalog/ | awk '
/^BenchmarkParseListing/ { print; printf "discovery parse, 1000 items: %.1f ms (goal <= 20 ms)\n", $3 / 1e6 }
/^BenchmarkDiscoverFirstCall/ { print; printf "discovery first call, 1000 items: %.1f ms (reference listResources: 20 ms)\n", $3 / 1e6 }'

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=0 go build -o "$tmp/x402-mcp" ./cmd/x402-mcp
go build -o "$tmp/servebench" ./scripts/servebench
CGO_ENABLED=0 go build -o "$tmp/mcpfloor" ./scripts/mcpfloor
"$tmp/servebench" -bin "$tmp/x402-mcp" -framework "$tmp/mcpfloor" -runs 20 -paid "$paid" -callers 8

# Issue 12: reservations per second on the ledger, SQLite beside PostgreSQL,
# with 1, 8 and 64 concurrent clients (separate ledgers, as separate
# processes are). PostgreSQL's figures need a server: eval "$(go run
# ./scripts/pgcluster start)" first; without one they are skipped.
echo "== ledger reservations/s (SQLite and PostgreSQL; 1, 8, 64 clients)"
go test -run '^$' -bench 'ReserveClients|ReservePostgres' -benchtime "$benchtime" ./ledger/ 2>&1 | grep -E '^Benchmark|SKIP|skipped' || true
