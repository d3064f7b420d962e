#!/usr/bin/env bash
# Regenerates Token.abi, Token.bin and token.go from Token.sol.
#
# Needs node/npm (for the solc-js compiler, which ships as WebAssembly inside
# the npm package, so nothing is downloaded beyond the package itself) and Go.
# abigen is run from this module so its output always matches the version of
# go-ethereum's bind/v2 library that go.mod pins.
set -euo pipefail

SOLC_VERSION="${SOLC_VERSION:-0.8.28}"
# shanghai is the newest fork whose opcodes every chain we target runs; the
# local chain runs later forks (Osaka) too, so it is safe there.
EVM_VERSION="${EVM_VERSION:-shanghai}"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "installing solc@${SOLC_VERSION} into ${work}" >&2
npm install --prefix "$work" --no-save --no-audit --no-fund --silent "solc@${SOLC_VERSION}" >&2

cat >"$work/compile.js" <<'EOF'
const fs = require('fs');
const path = require('path');
const [, , solcDir, srcPath, outDir, evmVersion] = process.argv;
const solc = require(path.join(solcDir, 'node_modules', 'solc'));

const input = {
  language: 'Solidity',
  sources: { 'Token.sol': { content: fs.readFileSync(srcPath, 'utf8') } },
  settings: {
    evmVersion,
    optimizer: { enabled: true, runs: 200 },
    outputSelection: { 'Token.sol': { Token: ['abi', 'evm.bytecode.object'] } },
  },
};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
let failed = false;
for (const e of out.errors || []) {
  process.stderr.write(e.formattedMessage);
  if (e.severity === 'error') failed = true;
}
if (failed) process.exit(1);
const c = out.contracts['Token.sol'].Token;
fs.writeFileSync(path.join(outDir, 'Token.abi'), JSON.stringify(c.abi, null, 2) + '\n');
fs.writeFileSync(path.join(outDir, 'Token.bin'), c.evm.bytecode.object + '\n');
process.stderr.write('compiled with solc ' + solc.version() + ', evm ' + evmVersion + '\n');
EOF

node "$work/compile.js" "$work" "$here/Token.sol" "$here" "$EVM_VERSION"

cd "$here"
go run github.com/ethereum/go-ethereum/cmd/abigen \
	--v2 --abi Token.abi --bin Token.bin --pkg token --type Token --out token.go
chmod 644 token.go
gofmt -l . | (! grep .) || { echo "token.go is not gofmt-clean" >&2; exit 1; }
echo "regenerated Token.abi, Token.bin, token.go" >&2
