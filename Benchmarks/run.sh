#!/usr/bin/env bash
# One command for the echo-server benchmarks: builds everything (release), runs every scenario against
# every implementation alternately (A B C D E, A B C D E, ...), and writes
#   results/latest.md   medians, ratios, loadgen CPU check, machine info
#   results/latest.svg  bar chart of throughput ratios vs SwiftNIO NIOAsyncChannel
#   results/raw/        per-run JSON lines and server logs (git-ignored)
#
# Usage: bash Benchmarks/run.sh [--quick] [--rounds N] [--seconds D] [--warmup W]
#                               [--impls asyncsockets,nio-async,nio-handler,flyingsocks,c-libevent]
#                               [--scenarios pp1,pp64,pp256,churn,bulk] [--no-build]
#   --quick   1 round, 1 s measured (+0.3 s warm-up) per run: about a minute.
#   default   3 rounds, 4 s measured (+1 s warm-up) per run: about 7 minutes for 5 implementations.
#
# Pinning: servers run on CPU 0 (taskset -c 0). The load generator runs on CPU 1, except in the
# 1-connection scenario where it shares CPU 0 with the server (cross-CPU single-connection ping-pong
# measures the VM's idle-CPU wake-up latency, not the server).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"
ORIG_ARGS="$*"

ROUNDS=3
SECONDS_MEASURED=4
WARMUP=1
BUILD=1
QUICK=0
IMPLS="asyncsockets,nio-async,nio-handler,flyingsocks,c-libevent"
SCENARIOS="pp1,pp64,pp256,churn,bulk"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) QUICK=1; ROUNDS=1; SECONDS_MEASURED=1; WARMUP=0.3 ;;
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
SERVER_CPU=0
LOADGEN_CPU=$(( NCPU > 1 ? 1 : 0 ))

CBIN="$HERE/.build/c"
RAW="$HERE/results/raw"
mkdir -p "$CBIN" "$RAW" "$HERE/results"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
JSONL="$RAW/run-$STAMP.jsonl"
: > "$JSONL"

log() { printf '%s\n' "$*" >&2; }

# ---------- implementations: key -> label, executable ----------
declare -A LABEL=(
    [asyncsockets]="AsyncSockets"
    [nio-async]="SwiftNIO NIOAsyncChannel"
    [nio-handler]="SwiftNIO ChannelHandler"
    [flyingsocks]="FlyingSocks"
    [c-libevent]="C libevent"
)
declare -A PRODUCT=(
    [asyncsockets]="EchoAsyncSockets"
    [nio-async]="EchoNIOAsync"
    [nio-handler]="EchoNIOHandler"
    [flyingsocks]="EchoFlyingSocks"
)
declare -A BIN=()

# ---------- build ----------
if [[ $BUILD -eq 1 ]]; then
    log "== building C load generator and C libevent echo server"
    cc -O2 -Wall -o "$CBIN/loadgen" loadgen/loadgen.c
    # shellcheck disable=SC2046
    cc -O2 -Wall -o "$CBIN/echo" c-libevent-echo/echo.c $(pkg-config --cflags --libs libevent)
fi
SWIFT_BIN="$HERE/.build/release"
AVAILABLE=()
IFS=, read -r -a WANTED <<< "$IMPLS"
for key in "${WANTED[@]}"; do
    if [[ -z "${LABEL[$key]:-}" ]]; then log "unknown implementation: $key"; exit 2; fi
    if [[ $key == c-libevent ]]; then
        BIN[$key]="$CBIN/echo"
    else
        product="${PRODUCT[$key]}"
        if [[ $BUILD -eq 1 ]]; then
            log "== swift build -c release --product $product"
            if ! swift build -c release --package-path "$HERE" --product "$product" > "$RAW/build-$product.log" 2>&1; then
                log "!! $product failed to build (see results/raw/build-$product.log); skipping ${LABEL[$key]}"
                grep -m 5 'error:' "$RAW/build-$product.log" >&2 || true
                continue
            fi
        fi
        BIN[$key]="$SWIFT_BIN/$product"
    fi
    if [[ -x "${BIN[$key]}" ]]; then
        AVAILABLE+=("$key")
    else
        log "!! ${BIN[$key]} missing; skipping ${LABEL[$key]}"
    fi
done
if [[ ! -x "$CBIN/loadgen" ]]; then log "load generator missing (run without --no-build)"; exit 1; fi
if [[ ${#AVAILABLE[@]} -eq 0 ]]; then log "nothing to run"; exit 1; fi

# ---------- scenarios: key -> loadgen arguments, loadgen CPU ----------
declare -A SCEN_ARGS=(
    [pp1]="--scenario pingpong --conns 1 --size 64"
    [pp64]="--scenario pingpong --conns 64 --size 64"
    [pp256]="--scenario pingpong --conns 256 --size 4096"
    [churn]="--scenario churn --conns 16"
    [bulk]="--scenario bulk --conns 4"
)
declare -A SCEN_CPU=(
    [pp1]=$SERVER_CPU [pp64]=$LOADGEN_CPU [pp256]=$LOADGEN_CPU [churn]=$LOADGEN_CPU [bulk]=$LOADGEN_CPU
)

SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT INT TERM

# Server CPU seconds (utime + stime) from /proc, or empty.
server_cpu() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    # fields after the ")" of comm: state is $1, utime is $12, stime is $13
    stat="${stat##*) }"
    awk -v tck="$(getconf CLK_TCK)" '{ printf "%.3f", ($12 + $13) / tck }' <<< "$stat"
}

# run_one IMPL SCENARIO ROUND -> appends one JSON line to $JSONL
run_one() {
    local key="$1" scen="$2" round="$3"
    local out="$RAW/server-$key-$scen-$round.out" err="$RAW/server-$key-$scen-$round.err"
    taskset -c "$SERVER_CPU" "${BIN[$key]}" 0 > "$out" 2> "$err" &
    SERVER_PID=$!
    local port="" i
    for (( i = 0; i < 200; i++ )); do
        if port=$(sed -n 's/^listening \([0-9][0-9]*\)$/\1/p' "$out" 2>/dev/null | head -n 1) && [[ -n "$port" ]]; then break; fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
        sleep 0.05
    done
    local result
    if [[ -z "$port" ]]; then
        result='{"error":"server did not print listening PORT"}'
        log "   $key: server did not start: $(head -c 300 "$err")"
    else
        local cpu0 cpu1
        cpu0=$(server_cpu "$SERVER_PID")
        # shellcheck disable=SC2086
        result=$(timeout $(( ${SECONDS_MEASURED%.*} + 60 )) taskset -c "${SCEN_CPU[$scen]}" "$CBIN/loadgen" \
            --port "$port" ${SCEN_ARGS[$scen]} --seconds "$SECONDS_MEASURED" --warmup "$WARMUP" 2>&1 | tail -n 1) || true
        cpu1=$(server_cpu "$SERVER_PID")
        [[ "$result" == \{* ]] || result="{\"error\":\"loadgen produced no result: ${result//\"/\'}\"}"
        if [[ -n "$cpu0" && -n "$cpu1" ]]; then
            result="${result%\}},\"server_cpu_s\":$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN{printf "%.3f", b - a}')}"
        fi
    fi
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    printf '{"impl":"%s","label":"%s","scenario":"%s","round":%d,"result":%s}\n' \
        "$key" "${LABEL[$key]}" "$scen" "$round" "$result" >> "$JSONL"
    log "   $(printf '%-13s' "$key") $(sed -E 's/.*"value":([0-9.]+),"unit":"([^"]+)".*/\1 \2/; s/.*"error":"([^"]*)".*/ERROR \1/' <<< "$result")"
}

IFS=, read -r -a SCENS <<< "$SCENARIOS"
log "== running: rounds=$ROUNDS seconds=$SECONDS_MEASURED warmup=$WARMUP implementations=${AVAILABLE[*]}"
for scen in "${SCENS[@]}"; do
    if [[ -z "${SCEN_ARGS[$scen]:-}" ]]; then log "unknown scenario: $scen"; exit 2; fi
    for (( r = 1; r <= ROUNDS; r++ )); do
        log "-- $scen round $r/$ROUNDS"
        for key in "${AVAILABLE[@]}"; do
            run_one "$key" "$scen" "$r"
            sleep 0.2 # let TIME_WAIT/socket teardown of the previous run settle a little
        done
    done
done

CMDLINE="bash Benchmarks/run.sh${ORIG_ARGS:+ $ORIG_ARGS}"
python3 "$HERE/report.py" --input "$JSONL" --markdown "$HERE/results/latest.md" --svg "$HERE/results/latest.svg" \
    --command "$CMDLINE (rounds=$ROUNDS, seconds=$SECONDS_MEASURED, warmup=$WARMUP)" \
    --server-cpu "$SERVER_CPU" --loadgen-cpu "$LOADGEN_CPU"
cat "$HERE/results/latest.md"
