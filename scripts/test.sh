#!/usr/bin/env bash
# The README's test command: installs libevent if needed, then runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
# --no-parallel: a few tests lower RLIMIT_NOFILE for the whole process; no other test may run meanwhile
# (libdispatch traps when it cannot open a timer descriptor). Socket tests are serialised by the
# descriptor check anyway, so this costs no time (35 s either way here).
swift test --no-parallel "$@"
