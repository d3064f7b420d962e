#!/usr/bin/env bash
# Validates every .mcpb bundle in DIR with the pinned MCP bundle tool: each
# is unpacked and its manifest checked against the bundle format's schema.
# Usage: testsupport/mcpb/validate.sh DIR   (run npm ci in testsupport/mcpb first)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="$1"
mcpb="$here/node_modules/.bin/mcpb"
shopt -s nullglob
bundles=("$dir"/*.mcpb)
if [ ${#bundles[@]} -eq 0 ]; then echo "no .mcpb bundles in $dir"; exit 1; fi
for b in "${bundles[@]}"; do
  tmp=$(mktemp -d)
  "$mcpb" unpack "$b" "$tmp" >/dev/null
  "$mcpb" validate "$tmp/manifest.json"
  test -x "$tmp/$(node -e 'console.log(require(process.argv[1]).server.entry_point)' "$tmp/manifest.json")"
  rm -rf "$tmp"
  echo "ok  $(basename "$b")"
done
