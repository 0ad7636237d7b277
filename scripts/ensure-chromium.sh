#!/bin/sh
# The dashboard's browser tests drive Debian's Chromium through Playwright (pip's `playwright`
# package; its own browser download does not work here). Install Chromium when it is missing,
# and a Korean font so the guide's Korean text renders in the screenshots. Never fails the build:
# without Chromium the browser tests skip and say why.
need=""
command -v chromium >/dev/null 2>&1 || need="chromium"
if command -v fc-list >/dev/null 2>&1; then
    fc-list :lang=ko 2>/dev/null | grep -q . || need="$need fonts-nanum"
else
    [ -d /usr/share/fonts/truetype/nanum ] || need="$need fonts-nanum"
fi
[ -z "$need" ] && exit 0
. "$(dirname "$0")/lib.sh"
if command -v apt-get >/dev/null 2>&1; then
    # shellcheck disable=SC2086 - $need is a list of package names
    apt_install $need 2>/dev/null || true
fi
command -v chromium >/dev/null 2>&1 || echo "ensure-chromium: chromium could not be installed; the dashboard's browser tests will skip" >&2
exit 0
