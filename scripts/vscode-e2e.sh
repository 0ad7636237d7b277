#!/bin/sh
# The VS Code extension's end-to-end test: installs what it needs (scripts/vscode-e2e-setup.sh),
# packages the extension as a .vsix, and drives it in code-server with Debian's chromium
# (vscode-extension/test/e2e/run.ts). Screenshots land in build/screenshots/ (PROMSTACK_SCREENSHOTS overrides).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
EXT="$ROOT/vscode-extension"
NODE24=$(sh "$ROOT/scripts/vscode-e2e-setup.sh" | tail -n 1)
cd "$EXT"
# `vsce package` runs vscode:prepublish (tsc for the tests, esbuild for the bundle).
npx vsce package --allow-missing-repository -o .cache/e2e.vsix </dev/null >.cache/vsce.log 2>&1 || {
  cat .cache/vsce.log >&2
  exit 1
}
node out/test/e2e/run.js --vsix .cache/e2e.vsix --node24 "$NODE24" \
  --code-server "$EXT/.cache/code-server/node_modules/.bin/code-server"
