#!/usr/bin/env bash
# Installs what AsyncSockets needs on Debian/Ubuntu when missing: libevent's headers and pkg-config file; for
# AsyncSocketsTLS OpenSSL 3's (libssl-dev) and the openssl command (the TLS tests make certificates with it).
set -euo pipefail
if pkg-config --exists libevent openssl 2>/dev/null && command -v openssl >/dev/null 2>&1; then exit 0; fi
if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq libevent-dev libssl-dev openssl pkg-config
elif command -v brew >/dev/null 2>&1; then
    brew install libevent openssl@3 pkg-config
else
    echo "Please install libevent and OpenSSL 3 (development headers), the openssl command and pkg-config." >&2
    exit 1
fi
