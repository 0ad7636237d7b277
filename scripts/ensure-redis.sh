#!/bin/sh
# The gateway's Redis cache is tested against a real server: install Debian's redis-server when
# it is missing. Never fails the build: without it, only the Redis tests skip (and say why).
command -v redis-server >/dev/null 2>&1 && exit 0
. "$(dirname "$0")/lib.sh"
if command -v apt-get >/dev/null 2>&1; then
    apt_install redis-server 2>/dev/null || true
fi
command -v redis-server >/dev/null 2>&1 || echo "ensure-redis: redis-server could not be installed; Redis tests will skip" >&2
exit 0
