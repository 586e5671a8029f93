#!/usr/bin/env bash
# Idempotent set-up for `make demo`, `make test` and CI: a .venv with the project and its dev extra,
# Debian's Chromium for the browser spiders and tests (Playwright's own browser download is never used),
# and Debian's PostgreSQL and Ceph radosgw binaries, whose throwaway servers the test suite starts itself.
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

# apt_install [--optional] WHAT PACKAGE...: install Debian packages with apt-get (sudo when not root).
# A required package that cannot be installed stops the bootstrap with what to do; an optional one warns.
APT_UPDATED=""
apt_install() {
    local optional=""
    if [ "$1" = --optional ]; then optional=1; shift; fi
    local what=$1
    shift
    echo "bootstrap: installing $what with apt-get ($*)"
    if [ "$(id -u)" = 0 ]; then
        SUDO=""
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "bootstrap: cannot install $what: not root and no password-less sudo; apt-get install $*" >&2
        if [ -n "$optional" ]; then return 0; fi
        exit 1
    fi
    if [ -z "$APT_UPDATED" ]; then
        $SUDO apt-get update -qq || true
        APT_UPDATED=1
    fi
    if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null; then
        echo "bootstrap: apt-get install $* failed; install it yourself." >&2
        if [ -n "$optional" ]; then return 0; fi
        exit 1
    fi
}

if [ -n "${TERTIB_CHROMIUM:-}" ] && [ -x "${TERTIB_CHROMIUM}" ]; then
    :
elif [ ! -x /usr/bin/chromium ]; then
    apt_install "Debian's chromium (or set TERTIB_CHROMIUM)" chromium
fi

# tinyproxy and microsocks: real HTTP and SOCKS5 proxies the proxy tests start on loopback
# (tests/test_proxies.py; skipped when they could not be installed).
APT_WANTED=""
for bin_pkg in tinyproxy:tinyproxy microsocks:microsocks; do
    if ! command -v "${bin_pkg%%:*}" >/dev/null 2>&1; then APT_WANTED="$APT_WANTED ${bin_pkg##*:}"; fi
done
if [ -n "$APT_WANTED" ]; then
    # shellcheck disable=SC2086
    apt_install --optional "proxies for the tests" $APT_WANTED
fi

# The test suite starts its own PostgreSQL server (initdb in a temporary directory) and its own S3 server
# (Ceph radosgw with one monitor and one in-memory OSD) on 127.0.0.1; it needs their binaries only.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt_install "PostgreSQL for the test suite" postgresql
fi
if ! command -v radosgw >/dev/null 2>&1 || ! command -v ceph-mon >/dev/null 2>&1 \
    || ! command -v ceph-osd >/dev/null 2>&1; then
    apt_install "Ceph radosgw (S3) for the test suite" radosgw ceph-mon ceph-osd ceph-common
fi
