#!/usr/bin/env python3
"""Aggregate run.sh's JSON lines into results/latest.md and results/latest.svg (python3 std lib only).

Each input line: {"impl": key, "label": ..., "scenario": key, "round": n, "result": <loadgen JSON>}.
The median over rounds is reported per implementation and scenario; ratios are ratios of medians.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from xml.sax.saxutils import escape

IMPL_ORDER = ["asyncsockets", "nio-async", "nio-handler", "flyingsocks", "c-libevent"]
LABELS = {
    "asyncsockets": "AsyncSockets",
    "nio-async": "SwiftNIO NIOAsyncChannel",
    "nio-handler": "SwiftNIO ChannelHandler",
    "flyingsocks": "FlyingSocks",
    "c-libevent": "C libevent",
}
COLORS = {
    "asyncsockets": "#d9480f",
    "nio-async": "#868e96",
    "nio-handler": "#1c7ed6",
    "flyingsocks": "#37b24d",
    "c-libevent": "#7048e8",
}
SCEN_ORDER = ["pp1", "pp64", "pp256", "churn", "bulk"]
SCEN_TITLES = {
    "pp1": "1 conn × 64 B (same CPU)",
    "pp64": "64 conns × 64 B",
    "pp256": "256 conns × 4 KiB",
    "churn": "churn (16 in flight)",
    "bulk": "bulk (4 conns)",
}
BASELINE = "nio-async"
SUBJECT = "asyncsockets"


def fmt_value(v):
    if v is None:
        return "–"
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.1f}"


def fmt_ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}×"


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:  # noqa: BLE001 - machine info is best effort
        return ""


def machine_info():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    swift = sh(["swift", "--version"]).splitlines()
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model or platform.processor(),
        "kernel": f"{platform.system()} {platform.release()}",
        "swift": swift[0] if swift else "unknown",
        "libevent": sh(["pkg-config", "--modversion", "libevent"]) or "unknown",
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", required=True)
    ap.add_argument("--markdown", required=True)
    ap.add_argument("--svg", required=True)
    ap.add_argument("--command", default="bash Benchmarks/run.sh")
    ap.add_argument("--server-cpu", default="0")
    ap.add_argument("--loadgen-cpu", default="1")
    args = ap.parse_args()

    rows = [json.loads(line) for line in open(args.input) if line.strip()]
    values, units, p50, p99, lg_cpu, srv_cpu, errors, rounds = {}, {}, {}, {}, {}, {}, [], set()
    for row in rows:
        key, scen, res = row["impl"], row["scenario"], row["result"]
        rounds.add(row["round"])
        if "error" in res:
            errors.append(f"{LABELS.get(key, key)}, {scen}, round {row['round']}: {res['error']}")
            continue
        values.setdefault((key, scen), []).append(res["value"])
        units[scen] = res["unit"]
        if "p50_us" in res:
            p50.setdefault((key, scen), []).append(res["p50_us"])
            p99.setdefault((key, scen), []).append(res["p99_us"])
        lg_cpu.setdefault((key, scen), []).append(res.get("cpu_pct", 0.0))
        if "server_cpu_s" in res and res.get("wall_s"):
            srv_cpu.setdefault((key, scen), []).append(100.0 * res["server_cpu_s"] / res["wall_s"])

    impls = [k for k in IMPL_ORDER if any(k == i for i, _ in values)] + sorted(
        {i for i, _ in values} - set(IMPL_ORDER))
    scens = [s for s in SCEN_ORDER if any(s == sc for _, sc in values)]
    med = {k: statistics.median(v) for k, v in values.items()}

    def m(key, scen):
        return med.get((key, scen))

    info = machine_info()
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = []
    out.append("# Echo server benchmarks\n")
    out.append(f"Command: `{args.command}` — {now}, median of {len(rounds)} round(s), implementations "
               "run alternately within each round.\n")
    out.append(f"Machine: {info['nproc']} CPUs, {info['cpu']}, {info['kernel']}, {info['swift']}, "
               f"libevent {info['libevent']}. Servers pinned to CPU {args.server_cpu}, load generator to CPU "
               f"{args.loadgen_cpu} (same CPU {args.server_cpu} for the 1-connection scenario).\n")

    out.append("## Throughput (higher is better)\n")
    head = "| implementation | " + " | ".join(f"{SCEN_TITLES.get(s, s)} ({units.get(s, '')})" for s in scens) + " |"
    out.append(head)
    out.append("|---" * (len(scens) + 1) + "|")
    for k in impls:
        out.append(f"| {LABELS.get(k, k)} | " + " | ".join(fmt_value(m(k, s)) for s in scens) + " |")
    if SUBJECT in impls:
        for peer in impls:
            if peer == SUBJECT:
                continue
            out.append(f"| **AsyncSockets / {LABELS.get(peer, peer)}** | "
                       + " | ".join(fmt_ratio(m(SUBJECT, s), m(peer, s)) for s in scens) + " |")
    else:
        out.append("\n_AsyncSockets did not run (not built or failed), so there are no AsyncSockets ratios._")
    out.append("")

    if BASELINE in impls:
        out.append(f"## Ratio to {LABELS[BASELINE]} (what the chart shows)\n")
        out.append("| implementation | " + " | ".join(SCEN_TITLES.get(s, s) for s in scens) + " |")
        out.append("|---" * (len(scens) + 1) + "|")
        for k in impls:
            out.append(f"| {LABELS.get(k, k)} | " + " | ".join(fmt_ratio(m(k, s), m(BASELINE, s)) for s in scens)
                       + " |")
        out.append("")

    lat_scens = [s for s in scens if any((k, s) in p50 for k in impls) and s.startswith("pp")]
    if lat_scens:
        out.append("## Ping-pong latency, p50 / p99 µs (median over rounds; lower is better)\n")
        out.append("| implementation | " + " | ".join(SCEN_TITLES.get(s, s) for s in lat_scens) + " |")
        out.append("|---" * (len(lat_scens) + 1) + "|")
        for k in impls:
            cells = []
            for s in lat_scens:
                if (k, s) in p50:
                    cells.append(f"{statistics.median(p50[(k, s)]):.1f} / {statistics.median(p99[(k, s)]):.1f}")
                else:
                    cells.append("–")
            out.append(f"| {LABELS.get(k, k)} | " + " | ".join(cells) + " |")
        out.append("")

    out.append("## CPU check: load generator CPU % / server CPU % of wall time (max over rounds)\n")
    out.append("The load generator's share includes the kernel's loopback TCP work it does on send(); "
               "a server near 100% is saturated (the intended bottleneck). A load generator near 100% "
               "while the server is well below means the generator limited that run.\n")
    out.append("| implementation | " + " | ".join(SCEN_TITLES.get(s, s) for s in scens) + " |")
    out.append("|---" * (len(scens) + 1) + "|")
    for k in impls:
        cells = []
        for s in scens:
            lg = max(lg_cpu.get((k, s), [0.0]) or [0.0])
            sv = srv_cpu.get((k, s))
            cells.append(f"{lg:.0f} / {max(sv):.0f}" if sv else f"{lg:.0f} / –")
        out.append(f"| {LABELS.get(k, k)} | " + " | ".join(cells) + " |")
    out.append("")

    if errors:
        out.append("## Failed runs\n")
        out.extend(f"- {e}" for e in errors)
        out.append("")

    with open(args.markdown, "w") as f:
        f.write("\n".join(out))

    write_svg(args.svg, impls, scens, m, info, now)
    if errors:
        print(f"note: {len(errors)} run(s) failed; see {args.markdown}", file=sys.stderr)


def write_svg(path, impls, scens, m, info, now):
    W, H = 960, 460
    left, right, top, bottom = 60, 20, 50, 110
    pw, ph = W - left - right, H - top - bottom
    bars = [k for k in impls if k != BASELINE]
    ratios = {}
    for k in bars:
        for s in scens:
            a, b = m(k, s), m(BASELINE, s)
            ratios[(k, s)] = a / b if a is not None and b else None
    ymax = max([r for r in ratios.values() if r is not None] + [1.0])
    ymax = max(1.5, (int(ymax * 2) + 1) / 2.0)  # round up to 0.5
    y = lambda v: top + ph - ph * v / ymax  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
             'font-family="Helvetica, Arial, sans-serif" font-size="12">',
             f'<rect width="{W}" height="{H}" fill="white"/>',
             f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">'
             f'Throughput relative to SwiftNIO NIOAsyncChannel (1.0 = NIOAsyncChannel; higher is better)</text>']
    step = 0.5 if ymax <= 4 else 1.0
    v = 0.0
    while v <= ymax + 1e-9:
        parts.append(f'<line x1="{left}" x2="{W - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e9ecef"/>')
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.1f}×</text>')
        v += step
    parts.append(f'<line x1="{left}" x2="{W - right}" y1="{y(1):.1f}" y2="{y(1):.1f}" stroke="#495057" '
                 'stroke-dasharray="5,4"/>')
    if scens and bars:
        gw = pw / len(scens)
        bw = min(34.0, gw * 0.8 / len(bars))
        for si, s in enumerate(scens):
            gx = left + gw * si + (gw - bw * len(bars)) / 2
            for bi, k in enumerate(bars):
                r = ratios[(k, s)]
                x = gx + bi * bw
                if r is None:
                    parts.append(f'<text x="{x + bw / 2:.1f}" y="{y(0) - 4:.1f}" text-anchor="middle" '
                                 'fill="#adb5bd">n/a</text>')
                    continue
                parts.append(f'<rect x="{x + 1:.1f}" y="{y(r):.1f}" width="{bw - 2:.1f}" '
                             f'height="{y(0) - y(r):.1f}" fill="{COLORS.get(k, "#495057")}">'
                             f'<title>{escape(LABELS.get(k, k))}, {escape(SCEN_TITLES.get(s, s))}: {r:.2f}×</title></rect>')
                parts.append(f'<text x="{x + bw / 2:.1f}" y="{y(r) - 3:.1f}" text-anchor="middle" '
                             f'font-size="10">{r:.2f}</text>')
            parts.append(f'<text x="{left + gw * si + gw / 2:.1f}" y="{top + ph + 18}" text-anchor="middle">'
                         f'{escape(SCEN_TITLES.get(s, s))}</text>')
    lx = left
    for k in bars:
        parts.append(f'<rect x="{lx}" y="{H - 62}" width="12" height="12" fill="{COLORS.get(k, "#495057")}"/>')
        parts.append(f'<text x="{lx + 16}" y="{H - 52}">{escape(LABELS.get(k, k))}</text>')
        lx += 30 + 7 * len(LABELS.get(k, k))
    parts.append(f'<text x="{left}" y="{H - 22}" fill="#495057" font-size="11">'
                 f'{escape(now)} · {escape(info["nproc"])} CPUs, {escape(info["cpu"])} · {escape(info["kernel"])} · '
                 f'{escape(info["swift"])} · median of rounds, servers pinned to one CPU</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
