#!/usr/bin/env bash
# Idempotent set-up for `make demo`, `make test` and CI: a .venv with the project and its dev extra, and
# Debian's Chromium for the browser spiders and tests. Playwright's own browser download is never used.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.tertib-installed

if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    echo "bootstrap: Python 3.11 or newer is needed (found: $("$PYTHON" --version 2>&1))" >&2
    exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "bootstrap: creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi

# Reinstall only when the dependency list changed since the last install.
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
    echo "bootstrap: installing tertib and its dev extra into $VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e '.[dev]'
    echo "$want" > "$STAMP"
fi

# Debian packages: Chromium for the browser spiders and tests; tinyproxy and microsocks, real HTTP and
# SOCKS5 proxies the proxy tests start on loopback (tests/test_proxies.py).
APT_WANTED=""
for bin_pkg in tinyproxy:tinyproxy microsocks:microsocks; do
    if ! command -v "${bin_pkg%%:*}" >/dev/null 2>&1; then APT_WANTED="$APT_WANTED ${bin_pkg##*:}"; fi
done
if [ -n "$APT_WANTED" ]; then
    echo "bootstrap: installing Debian's$APT_WANTED with apt-get (proxies for the tests)"
    if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi
    if [ "$SUDO" = none ] || ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $APT_WANTED >/dev/null; }; then
        echo "bootstrap: could not install$APT_WANTED; the proxy tests will be skipped (apt-get install$APT_WANTED)" >&2
    fi
fi

if [ -n "${TERTIB_CHROMIUM:-}" ] && [ -x "${TERTIB_CHROMIUM}" ]; then
    :
elif [ ! -x /usr/bin/chromium ]; then
    echo "bootstrap: installing Debian's chromium with apt-get"
    if [ "$(id -u)" = 0 ]; then
        SUDO=""
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "bootstrap: cannot install chromium: not root and no password-less sudo." >&2
        echo "bootstrap: install it yourself (apt-get install chromium) or set TERTIB_CHROMIUM to a Chromium binary." >&2
        exit 1
    fi
    if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null; }; then
        echo "bootstrap: apt-get install chromium failed; install it yourself or set TERTIB_CHROMIUM." >&2
        exit 1
    fi
fi
