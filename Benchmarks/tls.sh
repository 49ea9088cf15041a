#!/usr/bin/env bash
# TLS benchmarks (issue 14): a TLS echo server per implementation under one C load generator with OpenSSL
# (tlsgen/tlsgen.c), alternating implementations round by round, reported as ratios against swift-nio-ssl's
# NIOSSLServerHandler + ChannelInboundHandler server measured in the same round.
#
# Usage: bash Benchmarks/tls.sh [--rounds N] [--seconds D] [--warmup W] [--no-build]
#          [--impls asyncsockets,nio-handler,nio-async]   [--scenarios pp1,pp64,bulk,hs]
#   pp1    ping-pong, 1 connection x 64 B, server and tlsgen both on CPU 0 (cross-CPU single-connection
#          ping-pong measures the VM's idle-CPU wake-up instead of the server, as in run.sh)
#   pp64   ping-pong, 64 connections x 64 B, server on CPU 0, tlsgen on CPU 1: round trips/s
#   bulk   4 connections streaming full-duplex (16 KiB records), server CPU 0, tlsgen CPU 1: MB/s echoed
#   hs     full handshakes/s, 16 in flight: connect, handshake, 16-byte echo, close_notify, close (no resumption)
#   bulk-chacha  (not in the default list; informational) bulk with TLS_CHACHA20_POLY1305_SHA256 forced instead of
#          AES-128-GCM: both libraries have vector ChaCha20-Poly1305 code on x86-64, so this row compares the
#          servers' I/O paths with a cipher whose implementations are closer than OpenSSL 3.0's and BoringSSL's
#          AES-GCM (BoringSSL has VAES/AVX-512 AES-GCM, Debian's OpenSSL 3.0 does not). It never replaces `bulk`.
# TLS 1.3, TLS_AES_128_GCM_SHA256 and X25519 forced by tlsgen for every server; one RSA 2048 self-signed
# certificate made at run time with `openssl req` (results/raw/tls-cert.pem), the same for all servers. RSA, not
# EC P-256: with P-256 the client's side of a handshake (OpenSSL 3.0: certificate decoding, ECDSA verify) cost
# more than the server's, and tlsgen ran at 78-92% CPU with the servers at 30-60%, so the handshake column
# measured the generator; with RSA 2048 the server's signature dominates (tlsgen ~40%).
# Besides throughput, the report gives each server's work per second of its own CPU (from /proc/PID/stat), which
# still compares the servers when tlsgen is the bottleneck (it runs at ~100% in the bulk scenario on CPUs where
# OpenSSL 3.0's AES-GCM is slower than BoringSSL's: the generator does as much crypto as the server).
# Writes results/tls-latest.md; JSON lines go to results/raw/tls-STAMP.jsonl (git-ignored).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"
ORIG_ARGS="$*"
ROUNDS=3
SECONDS_MEASURED=2
WARMUP=0.5
BUILD=1
IMPLS="asyncsockets,nio-handler,nio-async"
SCENARIOS="pp1,pp64,bulk,hs"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) ROUNDS="$2"; shift ;;
        --seconds) SECONDS_MEASURED="$2"; shift ;;
        --warmup) WARMUP="$2"; shift ;;
        --impls) IMPLS="$2"; shift ;;
        --scenarios) SCENARIOS="$2"; shift ;;
        --no-build) BUILD=0 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
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
JSONL="$RAW/tls-$STAMP.jsonl"
: > "$JSONL"
log() { printf '%s\n' "$*" >&2; }
CLK_TCK=$(getconf CLK_TCK)

# One RSA 2048 self-signed certificate for every server, made now.
CERT="$RAW/tls-cert.pem"
KEY="$RAW/tls-key.pem"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$KEY" -out "$CERT" \
    -days 2 -subj /CN=127.0.0.1 2> /dev/null

declare -A PRODUCT=([asyncsockets]=TLSEchoAsyncSockets [nio-handler]=TLSEchoNIOHandler [nio-async]=TLSEchoNIOAsync)
if [[ $BUILD -eq 1 ]]; then
    log "== building tlsgen (cc -O2 -lssl -lcrypto)"
    cc -O2 -Wall -Wextra -o "$CBIN/tlsgen" tlsgen/tlsgen.c -lssl -lcrypto
    rm -f .build/release.yaml .build/release/description.json   # see run.sh: re-plan the path dependency
fi
[[ -x "$CBIN/tlsgen" ]] || { log "tlsgen missing (run without --no-build)"; exit 1; }
IFS=, read -r -a IMPL_LIST <<< "$IMPLS"
IFS=, read -r -a SCEN_LIST <<< "$SCENARIOS"
declare -A CMD=()
for impl in "${IMPL_LIST[@]}"; do
    product="${PRODUCT[$impl]:?unknown implementation $impl}"
    if [[ $BUILD -eq 1 ]]; then
        log "== swift build -c release --product $product"
        swift build -c release --package-path "$HERE" --product "$product" > "$RAW/build-$product.log" 2>&1 \
            || { log "!! $product failed to build; skipping it"; continue; }
    fi
    [[ -x "$SWIFT_BIN/$product" ]] && CMD[$impl]="$SWIFT_BIN/$product"
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

run_one() {  # run_one IMPL SCENARIO ROUND
    local impl="$1" scen="$2" round="$3" out port pid line result gen_cpu args t0 t1 w0 w1 srv_pct
    out=$(mktemp)
    taskset -c 0 "${CMD[$impl]}" 0 "$CERT" "$KEY" > "$out" 2>&1 &
    pid=$!
    line=""
    for _ in $(seq 1 200); do
        line=$(head -1 "$out" 2>/dev/null || true)
        [[ $line == listening* ]] && break
        sleep 0.05
    done
    port=${line#listening }
    case "$scen" in
        pp1) gen_cpu=0; args=(--scenario pingpong --conns 1 --size 64) ;;
        pp64) gen_cpu=$CPU_B; args=(--scenario pingpong --conns 64 --size 64) ;;
        bulk) gen_cpu=$CPU_B; args=(--scenario bulk --conns 4) ;;
        bulk-chacha) gen_cpu=$CPU_B; args=(--scenario bulk --conns 4 --ciphersuites TLS_CHACHA20_POLY1305_SHA256) ;;
        hs) gen_cpu=$CPU_B; args=(--scenario handshakes --conns 16) ;;
        *) log "unknown scenario $scen"; exit 2 ;;
    esac
    t0=$(cpu_ticks "$pid"); w0=$(date +%s.%N)
    result=$(timeout 60 taskset -c "$gen_cpu" "$CBIN/tlsgen" --port "$port" "${args[@]}" \
             --seconds "$SECONDS_MEASURED" --warmup "$WARMUP" | head -1 || true)
    t1=$(cpu_ticks "$pid"); w1=$(date +%s.%N)
    [[ $result == "{"* ]] || result='{"error": "tlsgen failed"}'
    kill -0 "$pid" 2>/dev/null || result='{"error": "the server died"}'
    srv_pct=$(awk -v a="$t0" -v b="$t1" -v w0="$w0" -v w1="$w1" -v hz="$CLK_TCK" \
              'BEGIN { printf "%.1f", 100 * (b - a) / hz / (w1 - w0) }')

    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$out"
    printf '{"impl": "%s", "scen": "%s", "round": %d, "server_cpu_pct": %s, "loadavg": "%s", "result": %s}\n' \
        "$impl" "$scen" "$round" "$srv_pct" "$(cut -d' ' -f1-3 /proc/loadavg)" "$result" >> "$JSONL"
    log "   $scen $impl round $round (server CPU $srv_pct%): $result"
}

LOAD_BEFORE=$(cat /proc/loadavg)
for round in $(seq 1 "$ROUNDS"); do
    for scen in "${SCEN_LIST[@]}"; do
        for impl in "${IMPL_LIST[@]}"; do
            [[ -n "${CMD[$impl]:-}" ]] && run_one "$impl" "$scen" "$round"
        done
    done
done
LOAD_AFTER=$(cat /proc/loadavg)

python3 - "$JSONL" "$HERE/results/tls-latest.md" "bash Benchmarks/tls.sh $ORIG_ARGS" "$LOAD_BEFORE" "$LOAD_AFTER" <<'PY'
import json, statistics, sys, platform, os, datetime, subprocess
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
labels = {"asyncsockets": "AsyncSockets `serveTLS`", "nio-handler": "swift-nio-ssl + ChannelInboundHandler",
          "nio-async": "swift-nio-ssl + NIOAsyncChannel"}
scen_names = {"pp1": "ping-pong 1 conn (rt/s)", "pp64": "ping-pong 64 conns (rt/s)", "bulk": "bulk 4 conns (MB/s)",
              "bulk-chacha": "bulk 4 conns, ChaCha20-Poly1305 (MB/s, informational)",
              "hs": "handshakes 16 in flight (hs/s)"}
impls = list(dict.fromkeys(r["impl"] for r in rows))
scens = list(dict.fromkeys(r["scen"] for r in rows))
ok = lambda r: "error" not in r["result"]
def values(impl, scen, key="value"):
    return {r["round"]: r["result"].get(key) for r in rows if r["impl"] == impl and r["scen"] == scen and ok(r)}
def cpu(impl, scen):
    rs = [r for r in rows if r["impl"] == impl and r["scen"] == scen and ok(r)]
    if not rs: return "-"
    return f"{max(r['result']['cpu_pct'] for r in rs):.0f} / {max(r['server_cpu_pct'] for r in rs):.0f}"
openssl = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
out = ["# TLS echo benchmarks", "",
       f"Command: `{sys.argv[3].strip()}`, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
       f"{os.cpu_count()} CPUs, {platform.platform()}, generator and AsyncSocketsTLS on {openssl}, swift-nio-ssl "
       f"on its vendored BoringSSL; RSA 2048 certificate. Load average before: {sys.argv[4]}; after: {sys.argv[5]}. Ratios are the "
       "median of per-round ratios against swift-nio-ssl's handler server in the same round.", ""]
def value_and_ratio_rows(per_round):
    """One row per server: for each scenario, the median over rounds of `per_round(impl, scen)` ({round: value})
    and the median of its per-round ratios against the handler server."""
    for impl in impls:
        cells = []
        for s in scens:
            mine, base = per_round(impl, s), per_round("nio-handler", s)
            med = statistics.median(mine.values()) if mine else float("nan")
            ratios = [mine[r] / base[r] for r in mine if r in base and base[r]]
            cells += [f"{med:,.1f}" if s.startswith("bulk") else f"{med:,.0f}", f"{statistics.median(ratios):.2f}" if ratios else "-"]
        out.append(f"| {labels.get(impl, impl)} | " + " | ".join(cells) + " |")
out += ["| server | " + " | ".join(f"{scen_names.get(s, s)} | ratio" for s in scens) + " |",
        "|---|" + "---:|---:|" * len(scens)]
value_and_ratio_rows(values)
latency_scens = [s for s in scens if not s.startswith("bulk")]  # bulk streams: no round trips to time
if latency_scens:
    out += ["", "Latency (median over rounds of p50 / p99, µs):", "",
            "| server | " + " | ".join(scen_names.get(s, s) for s in latency_scens) + " |",
            "|---|" + "---:|" * len(latency_scens)]
for impl in impls if latency_scens else []:
    cells = []
    for s in scens:
        if s.startswith("bulk"): continue
        p50, p99 = values(impl, s, "p50_us"), values(impl, s, "p99_us")
        cells.append(f"{statistics.median(p50.values()):,.0f} / {statistics.median(p99.values()):,.0f}" if p50 else "-")
    out.append(f"| {labels.get(impl, impl)} | " + " | ".join(cells) + " |")
out += ["", "CPU check (maximum over rounds of tlsgen CPU % / server CPU %, of wall time; tlsgen near 100 means "
        "the generator, not the server, was the bottleneck):", "",
        "| server | " + " | ".join(scen_names.get(s, s) for s in scens) + " |", "|---|" + "---:|" * len(scens)]
for impl in impls:
    out.append(f"| {labels.get(impl, impl)} | " + " | ".join(cpu(impl, s) for s in scens) + " |")
# Work per server CPU-second: what the server's own cost is when the generator is the bottleneck (bulk on a
# CPU where OpenSSL 3.0's AES-GCM makes tlsgen as slow as the server; tlsgen near 100% in the CPU check).
def per_cpu(impl, scen):
    return {r["round"]: r["result"]["value"] / (r["server_cpu_pct"] / 100) for r in rows
            if r["impl"] == impl and r["scen"] == scen and ok(r) and r["server_cpu_pct"] > 0}
out += ["", "Server cost: work per second of server CPU (rt, MB or hs per CPU-second; median over rounds) and its "
        "ratio against the handler server (median of per-round ratios). Throughput measures the server only "
        "while tlsgen stays below 100%; this stays meaningful when it does not:", "",
        "| server | " + " | ".join(f"{scen_names.get(s, s).split(' (')[0]} per CPU-s | ratio" for s in scens) + " |",
        "|---|" + "---:|---:|" * len(scens)]
value_and_ratio_rows(per_cpu)
neg = sorted({(r["impl"], r["result"].get("cipher"), r["result"].get("group")) for r in rows if ok(r)})
out += ["", "Negotiated: " + "; ".join(f"{labels.get(i, i)}: {c} / {g}" for i, c, g in neg) + "."]
errors = [r for r in rows if not ok(r)]
if errors:
    out += ["", "Failed runs: " + ", ".join(f"{r['impl']} {r['scen']} round {r['round']} ({r['result']['error']})"
                                           for r in errors)]
open(sys.argv[2], "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
