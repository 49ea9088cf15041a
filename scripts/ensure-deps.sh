#!/usr/bin/env bash
# Installs what AsyncSockets needs on Debian/Ubuntu (libevent's headers and pkg-config file) when missing.
set -euo pipefail
if pkg-config --exists libevent 2>/dev/null; then exit 0; fi
if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq libevent-dev pkg-config
elif command -v brew >/dev/null 2>&1; then
    brew install libevent pkg-config
else
    echo "Please install libevent (development headers) and pkg-config." >&2
    exit 1
fi
