#!/usr/bin/env bash
# One command for the benchmarks: builds everything (release), runs every scenario against every
# implementation alternately (A B C D E, A B C D E, ...), and writes
#   results/latest.md   medians, ratios, latency, CPU check, machine info
#   results/latest.svg  bar chart of server throughput ratios vs SwiftNIO NIOAsyncChannel
#   results/raw/        per-run JSON lines, server logs, build logs (git-ignored)
#
# Usage: bash Benchmarks/run.sh [--quick] [--rounds N] [--seconds D] [--warmup W] [--no-build]
#          [--impls asyncsockets,nio-async,nio-handler,flyingsocks,c-libevent]        (servers)
#          [--clients asyncsockets,asyncsockets-loop,asyncsockets-scoped,nio-async,flyingsocks,c-loadgen] (clients)
#          [--micro asyncsockets,asyncsockets-loop,nio-async]                           (in-process)
#          [--scenarios pp1,pp64,pp256,allocs,idle,churn,bulk,fair,cpp1,cpp64,pair,connect] [--update-readme]
#   --update-readme  also copy the report into Benchmarks/README.md (between its results markers)
#   --quick   1 round, 1 s measured (+0.3 s warm-up) per run: about 2 minutes.
#   default   3 rounds, 2.5 s measured (+0.7 s warm-up) per run: about 8-9 minutes. (allocs always runs
#             1 s + 0.5 s: it counts allocations, a short window is enough; idle takes what it takes.)
#
# fair: the bulk streams (4 connections, full duplex) and meanwhile fresh clients' 64-byte echo latency
# (p50/p99/max): whether one busy connection holds up the others on the server's loop.
# Server scenarios (pp1 pp64 pp256 allocs idle churn bulk fair): each echo server runs on CPU 0 (taskset -c 0) and the C
# load generator on CPU 1, except pp1 (1 connection) where both share CPU 0: cross-CPU single-connection
# ping-pong measures the VM's idle-CPU wake-up latency, not the server.
# Client scenarios (cpp1 cpp64): the C libevent echo server on CPU 1 and each ping-pong client on CPU 0
# (both on CPU 0 for cpp1).
# Micro scenarios, in one process on CPU 0: pair = 64-byte ping-pong over a socketpair with malloccount.so
# preloaded (round trips/s and allocation calls per round trip); connect = connect + accept + close on
# 127.0.0.1 (connections/s).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"
ORIG_ARGS="$*"

ROUNDS=3
SECONDS_MEASURED=2.5
WARMUP=0.7
BUILD=1
README_ARGS=()
IMPLS="asyncsockets,nio-async,nio-handler,flyingsocks,c-libevent"
CLIENTS="asyncsockets,asyncsockets-loop,asyncsockets-scoped,nio-async,flyingsocks,c-loadgen"
MICROS="asyncsockets,asyncsockets-loop,nio-async"
SCENARIOS="pp1,pp64,pp256,allocs,idle,churn,bulk,fair,cpp1,cpp64,pair,connect"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) ROUNDS=1; SECONDS_MEASURED=1; WARMUP=0.3 ;;
        --rounds) ROUNDS="$2"; shift ;;
        --seconds) SECONDS_MEASURED="$2"; shift ;;
        --warmup) WARMUP="$2"; shift ;;
        --impls) IMPLS="$2"; shift ;;
        --clients) CLIENTS="$2"; shift ;;
        --micro) MICROS="$2"; shift ;;
        --scenarios) SCENARIOS="$2"; shift ;;
        --no-build) BUILD=0 ;;
        --update-readme) README_ARGS=(--readme "$HERE/README.md") ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
    shift
done

NCPU=$(nproc)
CPU_A=0                           # servers in server scenarios, clients in client scenarios
CPU_B=$(( NCPU > 1 ? 1 : 0 ))     # the C load generator / the C echo server

CBIN="$HERE/.build/c"
SWIFT_BIN="$HERE/.build/release"
RAW="$HERE/results/raw"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RUNDIR="$RAW/$STAMP"   # server logs of this run; the JSON lines go to $RAW/run-$STAMP.jsonl
mkdir -p "$CBIN" "$RUNDIR" "$HERE/results"
JSONL="$RAW/run-$STAMP.jsonl"
: > "$JSONL"

log() { printf '%s\n' "$*" >&2; }

# The idle scenario holds 10,000 connections in the load generator and in the server.
if [[ $(ulimit -n) != unlimited && $(ulimit -n) -lt 10100 ]]; then
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    [[ $(ulimit -n) == unlimited || $(ulimit -n) -ge 10100 ]] || log "note: ulimit -n is $(ulimit -n); the idle scenario needs 10100"
fi

# ---------- implementations ----------
declare -A S_LABEL=(
    [asyncsockets]="AsyncSockets" [nio-async]="SwiftNIO NIOAsyncChannel" [nio-handler]="SwiftNIO ChannelHandler"
    [flyingsocks]="FlyingSocks" [c-libevent]="C libevent"
)
declare -A S_PRODUCT=(
    [asyncsockets]=EchoAsyncSockets [nio-async]=EchoNIOAsync [nio-handler]=EchoNIOHandler [flyingsocks]=EchoFlyingSocks
)
declare -A C_LABEL=(
    [asyncsockets]="AsyncSockets (plain tasks)" [asyncsockets-loop]="AsyncSockets (EventLoop.run)"
    [asyncsockets-scoped]="AsyncSockets (withConnection)"
    [nio-async]="SwiftNIO NIOAsyncChannel" [flyingsocks]="FlyingSocks" [c-loadgen]="C epoll (loadgen)"
)
declare -A C_PRODUCT=(
    [asyncsockets]=PingAsyncSockets [asyncsockets-loop]=PingAsyncSockets [asyncsockets-scoped]=PingAsyncSockets
    [nio-async]=PingNIOAsync
    [flyingsocks]=PingFlyingSocks
)
declare -A M_LABEL=(
    [asyncsockets]="AsyncSockets (plain tasks)" [asyncsockets-loop]="AsyncSockets (EventLoop.run)"
    [nio-async]="SwiftNIO NIOAsyncChannel"
)
declare -A S_CMD=() C_CMD=() M_CMD=()

# ---------- build ----------
if [[ $BUILD -eq 1 ]]; then
    log "== building the C load generator and the C libevent echo server (cc -O2)"
    cc -O2 -Wall -pthread -o "$CBIN/loadgen" loadgen/loadgen.c
    # shellcheck disable=SC2046
    cc -O2 -Wall -o "$CBIN/echo" c-libevent-echo/echo.c $(pkg-config --cflags --libs libevent)
    cc -O2 -Wall -shared -fPIC -o "$CBIN/malloccount.so" malloccount/malloccount.c
fi
[[ -x "$CBIN/loadgen" && -x "$CBIN/echo" && -f "$CBIN/malloccount.so" ]] || { log "C programs missing (run without --no-build)"; exit 1; }

# SwiftPM caches the build plan of the path dependency (the root package): a source file added there since the
# last build is not seen until the plan is made again, so drop the cached plan.
[[ $BUILD -eq 1 ]] && rm -f .build/release.yaml .build/release/description.json

declare -A BUILT=()
build_product() {  # build_product PRODUCT -> 0 if the executable is there
    local product="$1"
    if [[ -n "${BUILT[$product]:-}" ]]; then [[ "${BUILT[$product]}" == ok ]]; return; fi
    if [[ $BUILD -eq 1 ]]; then
        log "== swift build -c release --product $product"
        if ! swift build -c release --package-path "$HERE" --product "$product" > "$RAW/build-$product.log" 2>&1; then
            log "!! $product failed to build (see Benchmarks/results/raw/build-$product.log); skipping it"
            grep -m 5 'error:' "$RAW/build-$product.log" >&2 || true
            BUILT[$product]=failed
            return 1
        fi
    fi
    if [[ -x "$SWIFT_BIN/$product" ]]; then BUILT[$product]=ok; return 0; fi
    log "!! $SWIFT_BIN/$product missing; skipping it"
    BUILT[$product]=failed
    return 1
}

IFS=, read -r -a SCENS <<< "$SCENARIOS"
want_servers=0 want_clients=0 want_micro=0
for scen in "${SCENS[@]}"; do
    case "$scen" in
        pp1|pp64|pp256|allocs|idle|churn|bulk|fair) want_servers=1 ;;
        cpp1|cpp64) want_clients=1 ;;
        pair|connect) want_micro=1 ;;
        *) log "unknown scenario: $scen"; exit 2 ;;
    esac
done

SERVERS=()
if [[ $want_servers -eq 1 ]]; then
    IFS=, read -r -a WANTED <<< "$IMPLS"
    for key in "${WANTED[@]}"; do
        [[ -n "${S_LABEL[$key]:-}" ]] || { log "unknown server implementation: $key"; exit 2; }
        if [[ $key == c-libevent ]]; then
            S_CMD[$key]="$CBIN/echo"
        else
            build_product "${S_PRODUCT[$key]}" || continue
            S_CMD[$key]="$SWIFT_BIN/${S_PRODUCT[$key]}"
        fi
        SERVERS+=("$key")
    done
fi
CLIENT_IMPLS=()
if [[ $want_clients -eq 1 ]]; then
    IFS=, read -r -a WANTED <<< "$CLIENTS"
    for key in "${WANTED[@]}"; do
        [[ -n "${C_LABEL[$key]:-}" ]] || { log "unknown client implementation: $key"; exit 2; }
        case "$key" in
            c-loadgen) C_CMD[$key]="$CBIN/loadgen --scenario pingpong" ;;
            asyncsockets-loop) build_product PingAsyncSockets || continue; C_CMD[$key]="$SWIFT_BIN/PingAsyncSockets --loop" ;;
            asyncsockets-scoped) build_product PingAsyncSockets || continue; C_CMD[$key]="$SWIFT_BIN/PingAsyncSockets --scoped" ;;
            *) build_product "${C_PRODUCT[$key]}" || continue; C_CMD[$key]="$SWIFT_BIN/${C_PRODUCT[$key]}" ;;
        esac
        CLIENT_IMPLS+=("$key")
    done
fi

MICRO_IMPLS=()
if [[ $want_micro -eq 1 ]]; then
    IFS=, read -r -a WANTED <<< "$MICROS"
    for key in "${WANTED[@]}"; do
        [[ -n "${M_LABEL[$key]:-}" ]] || { log "unknown micro implementation: $key"; exit 2; }
        # M_CMD holds the pair command; the connect command is the same with Connect* for Pair*.
        case "$key" in
            asyncsockets|asyncsockets-loop) p=AsyncSockets ;;
            nio-async) p=NIOAsync ;;
        esac
        build_product "Pair$p" || continue
        [[ ",$SCENARIOS," == *,connect,* ]] && { build_product "Connect$p" || continue; }
        M_CMD[$key]="$SWIFT_BIN/Pair$p"
        [[ $key == asyncsockets-loop ]] && M_CMD[$key]+=" --loop"
        MICRO_IMPLS+=("$key")
    done
fi

# ---------- scenarios ----------
declare -A SCEN_ARGS=(
    [pp1]="--scenario pingpong --conns 1 --size 64"
    [pp64]="--scenario pingpong --conns 64 --size 64"
    [pp256]="--scenario pingpong --conns 256 --size 4096"
    [churn]="--scenario churn --conns 16"
    [idle]="--scenario idle --conns 10000"
    [allocs]="--scenario pingpong --conns 64 --size 64"
    [bulk]="--scenario bulk --conns 4"
    [fair]="--scenario fair --conns 4"
    [cpp1]="--conns 1 --size 64"
    [cpp64]="--conns 64 --size 64"
)
# CPU of the server / of the client per scenario
declare -A SRV_CPU=([pp1]=$CPU_A [pp64]=$CPU_A [pp256]=$CPU_A [allocs]=$CPU_A [idle]=$CPU_A [churn]=$CPU_A [bulk]=$CPU_A [fair]=$CPU_A [cpp1]=$CPU_A [cpp64]=$CPU_B)
declare -A CLI_CPU=([pp1]=$CPU_A [pp64]=$CPU_B [pp256]=$CPU_B [allocs]=$CPU_B [idle]=$CPU_B [churn]=$CPU_B [bulk]=$CPU_B [fair]=$CPU_B [cpp1]=$CPU_A [cpp64]=$CPU_A)

SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT INT TERM

# CPU seconds (utime + stime) of a process from /proc, or empty.
proc_cpu() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    stat="${stat##*) }"   # fields after "(comm) ": state is $1, utime $12, stime $13
    awk -v tck="$(getconf CLK_TCK)" '{ printf "%.3f", ($12 + $13) / tck }' <<< "$stat"
}

# run_one ROLE KEY LABEL SCEN ROUND SERVER_CMD CLIENT_CMD -> appends one JSON line to $JSONL
run_one() {
    local role="$1" key="$2" label="$3" scen="$4" round="$5" server_cmd="$6" client_cmd="$7"
    local out="$RUNDIR/$role-$key-$scen-$round.out" err="$RUNDIR/$role-$key-$scen-$round.err"
    : > "$out"
    local preload=() extra=""
    if [[ $scen == allocs ]]; then
        # count the server's allocation calls; loadgen reads the counter at the window's start and end
        local counts="$RUNDIR/$role-$key-$scen-$round.mallocs"
        rm -f "$counts"
        preload=(env "MALLOC_COUNT_FILE=$counts" "LD_PRELOAD=$CBIN/malloccount.so")
        extra="--malloc-file $counts"
    fi
    # shellcheck disable=SC2086
    "${preload[@]}" taskset -c "${SRV_CPU[$scen]}" $server_cmd 0 > "$out" 2> "$err" &
    SERVER_PID=$!
    local port="" i result
    for (( i = 0; i < 200; i++ )); do
        port=$(sed -n 's/^listening \([0-9][0-9]*\)$/\1/p' "$out" | head -n 1)
        [[ -n "$port" ]] && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    if [[ -z "$port" ]]; then
        result='{"error":"server did not print listening PORT"}'
        log "   $key: server did not start: $(head -c 300 "$err")"
    else
        local cpu0 cpu1 limit secs="$SECONDS_MEASURED" warm="$WARMUP"
        cpu0=$(proc_cpu "$SERVER_PID")
        if [[ $scen == allocs ]]; then secs=1; warm=0.5; fi
        limit=$(awk -v s="$secs" -v w="$warm" 'BEGIN { printf "%d", s + w + 6 }')
        if [[ $scen == idle ]]; then extra="--server-pid $SERVER_PID"; limit=20; fi
        # shellcheck disable=SC2086
        result=$(timeout "$limit" taskset -c "${CLI_CPU[$scen]}" $client_cmd \
            --port "$port" ${SCEN_ARGS[$scen]} $extra --seconds "$secs" --warmup "$warm" 2>>"$err" | grep '^{"' | tail -n 1) || true
        cpu1=$(proc_cpu "$SERVER_PID")
        [[ "$result" == \{* ]] || result="{\"error\":\"client produced no result (crashed or timed out after ${limit}s)\"}"
        if [[ -n "$cpu0" && -n "$cpu1" ]]; then
            result="${result%\}},\"server_cpu_s\":$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.3f", b - a }')}"
        fi
    fi
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    printf '{"role":"%s","impl":"%s","label":"%s","scenario":"%s","round":%d,"result":%s}\n' \
        "$role" "$key" "$label" "$scen" "$round" "$result" >> "$JSONL"
    log "   $(printf '%-18s' "$key") $(sed -E 's/.*"value":([0-9.]+),"unit":"([^"]+)".*/\1 \2/; s/.*"error":"([^"]*)".*/ERROR \1/' <<< "$result")"
}

# run_micro KEY SCENARIO ROUND: in-process benchmark (pair: with malloccount.so preloaded)
run_micro() {
    local key="$1" scen="$2" round="$3" counts="$RUNDIR/micro-$1-$2-$3.mallocs" result limit cmd
    local preload=()
    cmd="${M_CMD[$key]}"
    if [[ $scen == connect ]]; then
        cmd="${cmd/\/Pair//Connect}"
    else
        rm -f "$counts"
        preload=(env "MALLOC_COUNT_FILE=$counts" "LD_PRELOAD=$CBIN/malloccount.so")
    fi
    limit=$(awk -v s="$SECONDS_MEASURED" -v w="$WARMUP" 'BEGIN { printf "%d", s + w + 6 }')
    # shellcheck disable=SC2086
    result=$("${preload[@]}" timeout "$limit" \
        taskset -c "$CPU_A" $cmd --size 64 --seconds "$SECONDS_MEASURED" --warmup "$WARMUP" \
        2>>"$RUNDIR/micro-$key-$scen-$round.err" | grep '^{"' | tail -n 1) || true
    [[ "$result" == \{* ]] || result="{\"error\":\"no result (crashed or timed out after ${limit}s)\"}"
    printf '{"role":"micro","impl":"%s","label":"%s","scenario":"%s","round":%d,"result":%s}\n' \
        "$key" "${M_LABEL[$key]}" "$scen" "$round" "$result" >> "$JSONL"
    log "   $(printf '%-18s' "$key") $(sed -E 's/.*"value":([0-9.]+),"unit":"([^"]+)".*/\1 \2/; s/.*"error":"([^"]*)".*/ERROR \1/' <<< "$result")"
}

log "== running: rounds=$ROUNDS seconds=$SECONDS_MEASURED warmup=$WARMUP servers=${SERVERS[*]:-} clients=${CLIENT_IMPLS[*]:-} micro=${MICRO_IMPLS[*]:-}"
for scen in "${SCENS[@]}"; do
    for (( r = 1; r <= ROUNDS; r++ )); do
        log "-- $scen round $r/$ROUNDS"
        if [[ $scen == pair || $scen == connect ]]; then
            for key in "${MICRO_IMPLS[@]}"; do
                run_micro "$key" "$scen" "$r"
                sleep 0.2
            done
        elif [[ $scen == cpp* ]]; then
            for key in "${CLIENT_IMPLS[@]}"; do
                run_one client "$key" "${C_LABEL[$key]}" "$scen" "$r" "$CBIN/echo" "${C_CMD[$key]}"
                sleep 0.2
            done
        else
            for key in "${SERVERS[@]}"; do
                run_one server "$key" "${S_LABEL[$key]}" "$scen" "$r" "${S_CMD[$key]}" "$CBIN/loadgen"
                sleep 0.2   # let the previous server's sockets wind down
            done
        fi
    done
done

python3 "$HERE/report.py" --input "$JSONL" --markdown "$HERE/results/latest.md" --svg "$HERE/results/latest.svg" \
    --command "bash Benchmarks/run.sh${ORIG_ARGS:+ $ORIG_ARGS}" \
    --settings "rounds=$ROUNDS, seconds=$SECONDS_MEASURED, warmup=$WARMUP" --cpu-a "$CPU_A" --cpu-b "$CPU_B" \
    "${README_ARGS[@]}"
cat "$HERE/results/latest.md"
