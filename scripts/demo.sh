#!/usr/bin/env bash
# The README's demo command: installs libevent if needed, then runs the Demo example end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
swift run -c release Demo "$@"
