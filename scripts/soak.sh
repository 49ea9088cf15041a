#!/usr/bin/env bash
# Soak test: an echo server under continuous load from many clients, with connection churn and random
# client resets (SO_LINGER 0); verifies every echoed byte and reports round trips, errors, descriptors and
# RSS at start and end, then PASS/FAIL criteria. Exit status 0 only if every criterion passes.
#
#   bash scripts/soak.sh                 # 60 s
#   bash scripts/soak.sh --seconds 20    # CI
#   bash scripts/soak.sh --memory        # RSS per idle connection (10,000 pairs) and over 1,000,000 round trips
#
# Any argument is passed to the Soak executable (Examples/Soak): --seconds N, --clients N, --memory,
# --idle N, --round-trips N.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
swift build -c release --product Soak
exec "$(swift build -c release --show-bin-path)/Soak" "$@"
