#!/bin/sh
# The gateway's Redis cache is tested against a real server: install Debian's redis-server when
# it is missing. Never fails the build: without it, only the Redis tests skip (and say why).
command -v redis-server >/dev/null 2>&1 && exit 0
if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo -n"
    $SUDO apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null 2>&1 || true
fi
command -v redis-server >/dev/null 2>&1 || echo "ensure-redis: redis-server could not be installed; Redis tests will skip" >&2
exit 0
