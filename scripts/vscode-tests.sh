#!/bin/sh
# The VS Code extension's three test layers, as `make test` runs them:
#   1. unit tests of the pure logic and the providers (vscode stubbed), node --test on Node 20;
#   2. the contract test: src/client.ts against a real `promstack mcp` on a temporary store;
#   3. the end-to-end test in code-server (scripts/vscode-e2e.sh); PROMSTACK_SKIP_E2E=1 skips it.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
EXT="$ROOT/vscode-extension"
cd "$EXT"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >&2
fi
npm run --silent compile
echo "== vscode-extension: unit tests"
node --test out/test/unit/
echo "== vscode-extension: contract test against promstack mcp"
PROMSTACK_COMMAND="${PROMSTACK_COMMAND:-$ROOT/.venv/bin/promstack}" node --test out/test/contract/
if [ "${PROMSTACK_SKIP_E2E:-0}" = 1 ]; then
  echo "== vscode-extension: end-to-end test skipped (PROMSTACK_SKIP_E2E=1)"
else
  echo "== vscode-extension: end-to-end test in code-server"
  sh "$ROOT/scripts/vscode-e2e.sh"
fi
