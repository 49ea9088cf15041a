#!/usr/bin/env bash
# Datagram benchmarks (issue 15): a UDP echo server per implementation under one C load generator
# (udpgen/udpgen.c), alternating implementations round by round, reported as ratios against SwiftNIO's
# ChannelHandler server measured in the same round.
#
# Usage: bash Benchmarks/udp.sh [--rounds N] [--seconds D] [--warmup W] [--no-build]
#          [--impls asyncsockets,nio-handler,nio-async,flyingsocks,c]   [--scenarios pp1,pp64,burst]
#   pp1    ping-pong, 1 flow x 64 B, server and udpgen both on CPU 0 (cross-CPU single-flow ping-pong
#          measures the VM's idle-CPU wake-up instead of the server, as in run.sh)
#   pp64   ping-pong, 64 flows x 64 B, server on CPU 0, udpgen on CPU 1: round trips/s
#   burst  one-way burst of 64 B datagrams from udpgen (CPU 1) for the window, echoed by the server (CPU 0):
#          echoes received per second, and datagrams lost (sent - echoed)
# Writes results/udp-latest.md; JSON lines go to results/raw/udp-STAMP.jsonl (git-ignored).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"
ORIG_ARGS="$*"
ROUNDS=3
SECONDS_MEASURED=2
WARMUP=0.5
BUILD=1
IMPLS="asyncsockets,nio-handler,nio-async,c"   # flyingsocks: its server crashes (see its main.swift)
SCENARIOS="pp1,pp64,burst"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) ROUNDS="$2"; shift ;;
        --seconds) SECONDS_MEASURED="$2"; shift ;;
        --warmup) WARMUP="$2"; shift ;;
        --impls) IMPLS="$2"; shift ;;
        --scenarios) SCENARIOS="$2"; shift ;;
        --no-build) BUILD=0 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
    shift
done

NCPU=$(nproc)
CPU_B=$(( NCPU > 1 ? 1 : 0 ))
CBIN="$HERE/.build/c"
SWIFT_BIN="$HERE/.build/release"
RAW="$HERE/results/raw"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$CBIN" "$RAW"
JSONL="$RAW/udp-$STAMP.jsonl"
: > "$JSONL"
log() { printf '%s\n' "$*" >&2; }

declare -A PRODUCT=([asyncsockets]=UDPEchoAsyncSockets [nio-handler]=UDPEchoNIOHandler [nio-async]=UDPEchoNIOAsync
                    [flyingsocks]=UDPEchoFlyingSocks)
if [[ $BUILD -eq 1 ]]; then
    log "== building udpgen and the C UDP echo server (cc -O2)"
    cc -O2 -Wall -o "$CBIN/udpgen" udpgen/udpgen.c
    # shellcheck disable=SC2046
    cc -O2 -Wall -o "$CBIN/udpecho" udpgen/udpecho.c $(pkg-config --cflags --libs libevent)
    rm -f .build/release.yaml .build/release/description.json   # see run.sh: re-plan the path dependency
fi
IFS=, read -r -a IMPL_LIST <<< "$IMPLS"
IFS=, read -r -a SCEN_LIST <<< "$SCENARIOS"
declare -A CMD=()
for impl in "${IMPL_LIST[@]}"; do
    if [[ $impl == c ]]; then CMD[c]="$CBIN/udpecho"; continue; fi
    product="${PRODUCT[$impl]:?unknown implementation $impl}"
    if [[ $BUILD -eq 1 ]]; then
        log "== swift build -c release --product $product"
        swift build -c release --package-path "$HERE" --product "$product" > "$RAW/build-$product.log" 2>&1 \
            || { log "!! $product failed to build; skipping it"; continue; }
    fi
    [[ -x "$SWIFT_BIN/$product" ]] && CMD[$impl]="$SWIFT_BIN/$product"
done

run_one() {  # run_one IMPL SCENARIO ROUND
    local impl="$1" scen="$2" round="$3" out port pid line result gen_cpu args
    out=$(mktemp)
    taskset -c 0 "${CMD[$impl]}" 0 > "$out" 2>&1 &
    pid=$!
    for _ in $(seq 1 200); do
        line=$(head -1 "$out" 2>/dev/null || true)
        [[ $line == listening* ]] && break
        sleep 0.05
    done
    port=${line#listening }
    case "$scen" in
        pp1) gen_cpu=0; args=(--scenario pingpong --flows 1) ;;
        pp64) gen_cpu=$CPU_B; args=(--scenario pingpong --flows 64) ;;
        burst) gen_cpu=$CPU_B; args=(--scenario burst) ;;
    esac
    result=$(taskset -c "$gen_cpu" "$CBIN/udpgen" --port "$port" "${args[@]}" --size 64 \
             --seconds "$SECONDS_MEASURED" --warmup "$WARMUP" | head -1 || true)
    [[ $result == "{"* ]] || result='{"error": "udpgen failed"}'
    kill -0 "$pid" 2>/dev/null || result='{"error": "the server died"}'

    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$out"
    printf '{"impl": "%s", "scen": "%s", "round": %d, "result": %s}\n' "$impl" "$scen" "$round" "$result" >> "$JSONL"
    log "   $scen $impl round $round: $result"
}

for round in $(seq 1 "$ROUNDS"); do
    for scen in "${SCEN_LIST[@]}"; do
        for impl in "${IMPL_LIST[@]}"; do
            [[ -n "${CMD[$impl]:-}" ]] && run_one "$impl" "$scen" "$round"
        done
    done
done

python3 - "$JSONL" "$HERE/results/udp-latest.md" "bash Benchmarks/udp.sh $ORIG_ARGS" <<'PY'
import json, statistics, sys, platform, os, datetime
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
labels = {"asyncsockets": "AsyncSockets (datagrams sequence)", "nio-handler": "SwiftNIO ChannelHandler",
          "nio-async": "SwiftNIO NIOAsyncChannel", "flyingsocks": "FlyingSocks", "c": "C libevent"}
scen_names = {"pp1": "ping-pong 1 flow (rt/s)", "pp64": "ping-pong 64 flows (rt/s)", "burst": "burst: echoed/s"}
impls = list(dict.fromkeys(r["impl"] for r in rows))
scens = list(dict.fromkeys(r["scen"] for r in rows))
def values(impl, scen, key="value"):
    return {r["round"]: r["result"].get(key) for r in rows if r["impl"] == impl and r["scen"] == scen and "error" not in r["result"]}
out = ["# UDP echo benchmarks", "",
       f"Command: `{sys.argv[3].strip()}`, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
       f"{os.cpu_count()} CPUs, {platform.platform()}. The machine was shared with other builds and tests: "
       "absolute numbers are noisy, ratios (median of per-round ratios against SwiftNIO ChannelHandler in the same "
       "round) are what to read.", ""]
header = "| server | " + " | ".join(f"{scen_names.get(s, s)} | ratio" for s in scens) + " | burst lost (median) |"
out += [header, "|---|" + "---:|---:|" * len(scens) + "---:|"]
for impl in impls:
    cells = []
    for s in scens:
        mine, base = values(impl, s), values("nio-handler", s)
        med = statistics.median(mine.values()) if mine else float("nan")
        ratios = [mine[r] / base[r] for r in mine if r in base and base[r]]
        cells += [f"{med:,.0f}", f"{statistics.median(ratios):.2f}" if ratios else "-"]
    lost = values(impl, "burst", "lost")
    sent = values(impl, "burst", "sent")
    lost_text = "-"
    if lost:
        l = statistics.median(lost.values()); s_ = statistics.median(sent.values())
        lost_text = f"{l:,.0f} of {s_:,.0f} ({100 * l / s_:.0f}%)" if s_ else f"{l:,.0f}"
    out.append(f"| {labels.get(impl, impl)} | " + " | ".join(cells) + f" | {lost_text} |")
errors = [r for r in rows if "error" in r["result"]]
if errors:
    out += ["", "Failed runs: " + ", ".join(f"{r['impl']} {r['scen']} round {r['round']}" for r in errors)]
open(sys.argv[2], "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
