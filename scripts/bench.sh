#!/usr/bin/env bash
# Prints x402-mcp's performance figures: the Go benchmarks for signing, the
# client's own work on a paid fetch and full paid fetches on the local
# network, then the resident memory of an idle stdio server.
# Usage: scripts/bench.sh [benchtime]   (default 2s)
set -euo pipefail
cd "$(dirname "$0")/.."
benchtime=${1:-2s}

echo "== benchmarks (benchtime $benchtime)"
bench_out=$(go test -run '^$' -bench 'Sign$|Digest$|ClientWork|ClientSide|PaidFetch' -benchtime "$benchtime" ./signer/ ./pay/)
grep -E '^Benchmark' <<<"$bench_out"

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

echo "== idle server memory"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true' EXIT
CGO_ENABLED=0 go build -o "$tmp/x402-mcp" ./cmd/x402-mcp
mkfifo "$tmp/in"
"$tmp/x402-mcp" serve <"$tmp/in" >"$tmp/out" 2>"$tmp/err" &
pid=$!
exec 3>"$tmp/in"
printf '%s\n' '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}' >&3
printf '%s\n' '{"jsonrpc":"2.0","method":"notifications/initialized"}' >&3
printf '%s\n' '{"jsonrpc":"2.0","id":2,"method":"tools/list"}' >&3
sleep 2
rss_kb=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
echo "idle serve RSS after initialize + tools/list: $((rss_kb / 1024)) MiB ($rss_kb kB)"
exec 3>&-
wait "$pid" || true
pid=
