#!/usr/bin/env bash
# Builds the release artifacts for VERSION into OUT_DIR (default dist/VERSION):
# static binaries for linux, darwin and windows on amd64 and arm64 (-trimpath,
# version stamped), a Claude Desktop .mcpb bundle per platform, the MCP
# registry's server.json naming them, and SHA256SUMS. Nothing is published.
# Usage: scripts/release.sh VERSION [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./scripts/release "$@"
