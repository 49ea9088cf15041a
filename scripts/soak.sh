#!/usr/bin/env bash
# Soak test: an echo server under continuous load from many clients, with connection churn and random
# client resets (SO_LINGER 0); verifies every echoed byte and reports round trips, errors, descriptors and
# RSS at start and end, then PASS/FAIL criteria. Exit status 0 only if every criterion passes.
#
#   bash scripts/soak.sh                 # 60 s, release build
#   bash scripts/soak.sh --seconds 20    # CI
#   bash scripts/soak.sh --debug --seconds 20
#                                        # debug build: unoptimised code suspends at more awaits, which
#                                        # exposes more interleavings (it caught a shared-buffer bug that
#                                        # the release build hid)
#   bash scripts/soak.sh --memory        # RSS per idle connection (10,000 pairs) and over 1,000,000 round trips
#
# Other arguments go to the Soak executable (Examples/Soak): --seconds N, --clients N, --memory,
# --idle N, --round-trips N.
set -euo pipefail
cd "$(dirname "$0")/.."
configuration=release
arguments=()
for argument in "$@"; do
    if [ "$argument" = "--debug" ]; then configuration=debug; else arguments+=("$argument"); fi
done
bash scripts/ensure-deps.sh
swift build -c "$configuration" --product Soak
exec "$(swift build -c "$configuration" --show-bin-path)/Soak" "${arguments[@]+"${arguments[@]}"}"
