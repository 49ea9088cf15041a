#!/usr/bin/env python3
"""Aggregate run.sh's JSON lines into results/latest.md and results/latest.svg (python3 std lib only).

Each input line: {"impl": key, "label": ..., "scenario": key, "round": n, "result": <loadgen JSON>}.
The median over rounds is reported per implementation and scenario. A ratio between two implementations is
the median over rounds of the ratio within each round (the two ran minutes apart at most, in the same round),
so that noise hitting one run of one implementation does not decide the ratio; when the two share no round,
it falls back to the ratio of medians.
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
    "asyncsockets-loop": "AsyncSockets (EventLoop.run)",
    "asyncsockets-scoped": "AsyncSockets (withConnection)",
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
SCEN_ORDER = ["pp1", "pp64", "pp256", "churn", "bulk", "allocs", "idle", "fair"]
LOWER_IS_BETTER = {"allocs", "idle", "fair"}
SCEN_TITLES = {
    "pp1": "1 conn × 64 B (same CPU)",
    "pp64": "64 conns × 64 B",
    "pp256": "256 conns × 4 KiB",
    "churn": "churn (16 in flight)",
    "bulk": "bulk (4 conns)",
    "idle": "idle memory, 10k conns (lower is better)",
    "allocs": "server mallocs per round trip, 64 conns × 64 B (lower is better)",
    "fair": "fresh client's 64 B echo p99 while 4 conns stream (lower is better)",
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
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


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


CLIENT_ORDER = ["asyncsockets", "asyncsockets-loop", "asyncsockets-scoped", "nio-async", "flyingsocks", "c-loadgen"]
CLIENT_SUBJECTS = ["asyncsockets", "asyncsockets-loop", "asyncsockets-scoped"]
# Ratios between two subjects: the scoped client (withConnection) against the EventLoop.run client.
CLIENT_PAIRS = [("asyncsockets-scoped", "asyncsockets-loop")]
CLIENT_SCENS = ["cpp1", "cpp64"]
MICRO_ORDER = ["asyncsockets", "asyncsockets-loop", "nio-async"]
MICRO_SCENS = ["pair", "pair-allocs", "connect"]
LOWER_IS_BETTER.add("pair-allocs")
SCEN_TITLES.update({"cpp1": "client: 1 conn × 64 B (same CPU)", "cpp64": "client: 64 conns × 64 B",
                    "pair": "in-process ping-pong, 64 B",
                    "pair-allocs": "mallocs per round trip, both ends (lower is better)",
                    "connect": "connect + accept + close"})


class Section:
    """Medians and tables for one role (servers driven by loadgen, or clients against the C server)."""

    def __init__(self, rows, order, scen_order):
        self.values, self.units, self.p50, self.p99 = {}, {}, {}, {}
        self.lg_cpu, self.srv_cpu, self.errors, self.labels = {}, {}, [], {}
        self.cpu_rt = {}
        self.by_round, self.fair = {}, {}
        for row in rows:
            key, scen, res = row["impl"], row["scenario"], row["result"]
            self.labels[key] = row.get("label", LABELS.get(key, key))
            if "error" in res:
                self.errors.append(f"{self.labels[key]}, {scen}, round {row['round']}: {res['error']}")
                continue
            if res.get("stalled_conns"):
                self.errors.append(f"{self.labels[key]}, {scen}, round {row['round']}: {res['stalled_conns']} of "
                                   f"{res['conns']} connections completed no round trip in the measured window "
                                   "(stuck: a lost wake-up?); the run is counted as measured")
            self.values.setdefault((key, scen), []).append(res["value"])
            self.by_round.setdefault((key, scen), {})[row["round"]] = res["value"]
            self.units[scen] = res["unit"]
            if "p50_us" in res:
                self.p50.setdefault((key, scen), []).append(res["p50_us"])
                self.p99.setdefault((key, scen), []).append(res["p99_us"])
            if "max_us" in res:
                self.fair.setdefault(key, []).append(res)
            self.lg_cpu.setdefault((key, scen), []).append(res.get("cpu_pct", 0.0))
            if "server_cpu_s" in res and res.get("wall_s"):
                self.srv_cpu.setdefault((key, scen), []).append(100.0 * res["server_cpu_s"] / res["wall_s"])
            if res.get("unit") == "rt/s" and res.get("value") and res.get("wall_s") and "cpu_user_s" in res:
                # The process's CPU over its whole run (connects and warm-up included) per round trip at the
                # measured rate: an estimate of where the client's cost goes (user or kernel).
                trips = res["value"] * res["wall_s"]
                self.cpu_rt.setdefault((key, scen), []).append(
                    (1e6 * res["cpu_user_s"] / trips, 1e6 * res.get("cpu_sys_s", 0.0) / trips))
        ran = {row["impl"] for row in rows}
        self.impls = [k for k in order if k in ran] + sorted(ran - set(order))
        seen = {row["scenario"] for row in rows}
        self.scens = [x for x in scen_order if x in seen]
        self.med = {k: statistics.median(v) for k, v in self.values.items()}

    def m(self, key, scen):
        return self.med.get((key, scen))

    def r(self, key, peer, scen):
        """The median of the per-round ratios key/peer (paired runs); ratio of medians if no shared round."""
        a, b = self.by_round.get((key, scen), {}), self.by_round.get((peer, scen), {})
        paired = [a[n] / b[n] for n in a if n in b and b[n]]
        if paired:
            return statistics.median(paired)
        x, y = self.m(key, scen), self.m(peer, scen)
        return x / y if x is not None and y else None

    def fr(self, key, peer, scen):
        v = self.r(key, peer, scen)
        return "–" if v is None else f"{v:.2f}×"

    def label(self, key):
        return self.labels.get(key, key)

    def header(self, first, titles):
        return [f"| {first} | " + " | ".join(titles) + " |", "|---" * (len(titles) + 1) + "|"]

    def throughput(self, subjects, baseline, out, pairs=()):
        out += self.header("implementation", [f"{SCEN_TITLES.get(x, x)} ({self.units.get(x, '')})" for x in self.scens])
        for k in self.impls:
            out.append(f"| {self.label(k)} | " + " | ".join(fmt_value(self.m(k, x)) for x in self.scens) + " |")
        missing = [subj for subj in subjects if subj not in self.impls]
        for subj in subjects:
            if subj in missing:
                continue
            for peer in self.impls:
                if peer in subjects:
                    continue
                out.append(f"| **{self.label(subj)} / {self.label(peer)}** | "
                           + " | ".join(self.fr(subj, peer, x) for x in self.scens) + " |")
        for subj, peer in pairs:
            if subj in self.impls and peer in self.impls:
                out.append(f"| **{self.label(subj)} / {self.label(peer)}** | "
                           + " | ".join(self.fr(subj, peer, x) for x in self.scens) + " |")
        out.append("")
        if missing:
            out.append("_Did not run (not built, or every run failed): "
                       + ", ".join(LABELS.get(x, x) for x in missing) + "._\n")
        if baseline in self.impls:
            out.append(f"Ratio of each implementation to {self.label(baseline)}:\n")
            out += self.header("implementation", [SCEN_TITLES.get(x, x) for x in self.scens])
            for k in self.impls:
                out.append(f"| {self.label(k)} | "
                           + " | ".join(self.fr(k, baseline, x) for x in self.scens) + " |")
            out.append("")

    def latency(self, out):
        lat = [x for x in self.scens if x not in LOWER_IS_BETTER and any((k, x) in self.p50 for k in self.impls)]
        if not lat:
            return
        out.append("Latency per round trip (per cycle for connect), p50 / p99 µs (median over rounds; lower "
                   "is better):\n")
        out += self.header("implementation", [SCEN_TITLES.get(x, x) for x in lat])
        for k in self.impls:
            cells = [f"{statistics.median(self.p50[(k, x)]):.1f} / {statistics.median(self.p99[(k, x)]):.1f}"
                     if (k, x) in self.p50 else "–" for x in lat]
            out.append(f"| {self.label(k)} | " + " | ".join(cells) + " |")
        out.append("")

    def fairness(self, out):
        """The fair scenario: probe latency while the bulk streams run (median over rounds of each figure)."""
        keys = [k for k in self.impls if k in self.fair]
        if not keys:
            return
        out.append("Fairness: a fresh client's 64-byte echo (connect to last echoed byte) while 4 connections "
                   "stream full duplex at full speed; µs, median over rounds (lower is better), with the "
                   "probes answered in the window and the streams' own throughput:\n")
        out += self.header("implementation", ["p50 µs", "p99 µs", "max µs", "probes (unanswered)", "bulk MB/s"])
        for k in keys:
            runs = self.fair[k]
            med = lambda f: statistics.median(r.get(f, 0) for r in runs)  # noqa: E731
            out.append(f"| {self.label(k)} | {fmt_value(med('p50_us'))} | {fmt_value(med('p99_us'))} | "
                       f"{fmt_value(med('max_us'))} | {med('probes'):.0f} ({med('unanswered_probes'):.0f}) | "
                       f"{fmt_value(med('bulk_mbps'))} |")
        out.append("")

    def cpu_per_round_trip(self, caption, out):
        """Process CPU per round trip, user / system µs (median over rounds of each)."""
        if not self.cpu_rt:
            return
        out.append(caption + "\n")
        out += self.header("implementation", [SCEN_TITLES.get(x, x) for x in self.scens])
        for k in self.impls:
            cells = []
            for x in self.scens:
                runs = self.cpu_rt.get((k, x))
                cells.append(f"{statistics.median(u for u, _ in runs):.2f} / {statistics.median(v for _, v in runs):.2f}"
                             if runs else "–")
            out.append(f"| {self.label(k)} | " + " | ".join(cells) + " |")
        out.append("")

    def cpu(self, caption, out):
        out.append(caption + "\n")
        out += self.header("implementation", [SCEN_TITLES.get(x, x) for x in self.scens])
        for k in self.impls:
            cells = []
            for x in self.scens:
                lg = self.lg_cpu.get((k, x))
                sv = self.srv_cpu.get((k, x))
                cells.append((f"{max(lg):.0f}" if lg else "–") + " / " + (f"{max(sv):.0f}" if sv else "–"))
            out.append(f"| {self.label(k)} | " + " | ".join(cells) + " |")
        out.append("")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", required=True)
    ap.add_argument("--markdown", required=True)
    ap.add_argument("--svg", required=True)
    ap.add_argument("--command", default="bash Benchmarks/run.sh")
    ap.add_argument("--settings", default="")
    ap.add_argument("--cpu-a", default="0")
    ap.add_argument("--cpu-b", default="1")
    ap.add_argument("--readme", help="replace the text between the results markers in this README")
    ap.add_argument("--date", help="when the run happened (default: now), for regenerating an old run's report")
    args = ap.parse_args()

    rows = [json.loads(line) for line in open(args.input) if line.strip()]
    rounds = {row["round"] for row in rows}
    servers = Section([r for r in rows if r.get("role", "server") == "server"], IMPL_ORDER, SCEN_ORDER)
    clients = Section([r for r in rows if r.get("role") == "client"], CLIENT_ORDER, CLIENT_SCENS)
    micro_rows = []
    for r in rows:
        if r.get("role") != "micro":
            continue
        micro_rows.append(r)
        if r["scenario"] == "pair" and "mallocs_per_rt" in r["result"]:
            res = dict(r["result"], value=r["result"]["mallocs_per_rt"], unit="mallocs/rt")
            res.pop("p50_us", None)
            micro_rows.append(dict(r, scenario="pair-allocs", result=res))
    micro = Section(micro_rows, MICRO_ORDER, MICRO_SCENS)

    info = machine_info()
    now = args.date or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = ["# Echo benchmarks\n",
           f"Command: `{args.command}` ({args.settings}) — {now}. Median of {max(rounds) if rounds else 0} "
           "round(s); within a round the implementations run one after another; a ratio is the median of the ratios within each round.\n",
           f"Machine: {info['nproc']} CPUs, {info['cpu']}, {info['kernel']}, {info['swift']}, "
           f"libevent {info['libevent']}.\n"]
    if servers.impls:
        out.append("## Servers (C load generator against each echo server; higher is better unless marked)\n")
        out.append(f"Servers pinned to CPU {args.cpu_a}, load generator to CPU {args.cpu_b}; in the 1-connection "
                   f"scenario both share CPU {args.cpu_a}.\n")
        servers.throughput([SUBJECT], BASELINE, out)
        servers.latency(out)
        servers.fairness(out)
        servers.cpu("CPU check, load generator CPU % / server CPU % of wall time (max over rounds). The "
                    "generator's share includes the kernel's loopback TCP work done in its send() calls. A "
                    "server near 100% is saturated (what we want to measure); a generator near 100% while the "
                    "server is clearly below means that run was generator-bound and understates the server.", out)
    if clients.impls:
        out.append("## Clients (each ping-pong client against the C libevent echo server; higher is better)\n")
        out.append(f"Clients pinned to CPU {args.cpu_a}, the C echo server to CPU {args.cpu_b}; in the "
                   f"1-connection scenario both share CPU {args.cpu_a}.\n")
        clients.throughput(CLIENT_SUBJECTS, BASELINE, out, CLIENT_PAIRS)
        clients.latency(out)
        clients.cpu("CPU check, client CPU % / C echo server CPU % of wall time (max over rounds).", out)
        clients.cpu_per_round_trip("Client CPU per round trip, user / system µs (the client process's CPU time "
                                   "over its whole run, connects and warm-up included, divided by its measured "
                                   "rate × wall time; median over rounds; lower is better): where a client's cost "
                                   "goes. It varies between rounds about as much as the rate does.", out)
    if micro.impls:
        out.append(f"## In-process micro benchmarks (one process on CPU {args.cpu_a})\n")
        out.append("Ping-pong over a socketpair, with malloccount.so preloaded: allocation calls are counted for "
                   "both ends (the pinging task and the echoing task) over the measured window. Connect: a "
                   "server and a client in the same process on 127.0.0.1; one cycle is connect, accept, the "
                   "server closing, the client reading end of stream and closing.\n")
        micro.throughput(["asyncsockets", "asyncsockets-loop"], BASELINE, out)
        micro.latency(out)
    errors = servers.errors + clients.errors + micro.errors
    if errors:
        out.append("## Failed or suspicious runs\n")
        out.extend(f"- {e}" for e in errors)
        out.append("")
    with open(args.markdown, "w") as f:
        f.write("\n".join(out))
    if args.readme:
        update_readme(args.readme, out)

    write_svg(args.svg, servers.impls, [x for x in servers.scens if x not in LOWER_IS_BETTER], servers.r, info, now)
    if errors:
        print(f"note: {len(errors)} run(s) failed; see {args.markdown}", file=sys.stderr)


README_START = "<!-- results:start (written by run.sh --update-readme) -->"
README_END = "<!-- results:end -->"


def update_readme(path, lines):
    """Copies the report (minus its title) between the markers of the README."""
    text = open(path).read()
    if README_START not in text or README_END not in text:
        print(f"note: {path} has no results markers; not updated", file=sys.stderr)
        return
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    body = "\n".join(lines[1:]).replace("\n## ", "\n### ")
    body += "\n![throughput relative to NIOAsyncChannel](results/latest.svg)\n"
    with open(path, "w") as f:
        f.write(head + README_START + "\n" + body + "\n" + README_END + tail)


def write_svg(path, impls, scens, ratio, info, now):
    W, H = 960, 460
    left, right, top, bottom = 60, 20, 50, 110
    pw, ph = W - left - right, H - top - bottom
    bars = [k for k in impls if k != BASELINE]
    ratios = {}
    for k in bars:
        for s in scens:
            ratios[(k, s)] = ratio(k, BASELINE, s)
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
