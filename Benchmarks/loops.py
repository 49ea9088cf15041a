#!/usr/bin/env python3
"""Multi-loop benchmarks (issue 13): 1 loop vs 2 loops, side by side, alternating, unpinned.

  python3 Benchmarks/loops.py [--rounds 3] [--seconds 2.5] [--warmup 0.7] [--scenarios pairs,pp64,churn]

Scenarios (each implementation runs once per round, in alternation; ratios are medians of per-round ratios):
  pairs  in-process: 64 socket pairs ping-pong 64 B, both ends of a pair on one loop, pairs spread over a
         group of 1 or 2 loops (PairsAsyncSockets --loops L). Round trips/s.
  pp64   echo servers, 64 connections x 64 B ping-pong from the C load generator (loadgen), nothing pinned:
         AsyncSockets with ASYNCSOCKETS_LOOP_COUNT=1 and =2, SwiftNIO's ChannelInboundHandler server on a
         1- and a 2-thread MultiThreadedEventLoopGroup. Round trips/s and server CPU time per round trip.
  churn  the same servers, loadgen churn (connect, 16 B echo, close; 16 in flight), plus AsyncSockets with
         one SO_REUSEPORT listener per loop (2 loops). Connections/s and server CPU time per connection.
Server CPU time comes from /proc/PID/stat (utime + stime) over the load generator's whole run, scaled to the
measured window (warm-up + window run at the same rate). The load generator is one C thread: with 2 cores
it takes one, so 2-loop servers share the other core with it; CPU per operation stays meaningful then.
Builds nothing: build first with `swift build -c release --product P` for PairsAsyncSockets,
EchoAsyncSockets and EchoNIOHandler, and `cc -O2 -o Benchmarks/.build/c/loadgen Benchmarks/loadgen/loadgen.c`.
"""
import argparse, json, os, re, statistics, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
REL = os.path.join(HERE, ".build", "release")
LOADGEN = os.path.join(HERE, ".build", "c", "loadgen")
TICK = os.sysconf("SC_CLK_TCK")

SERVERS = {
    "as-1loop": ({"ASYNCSOCKETS_LOOP_COUNT": "1"}, [os.path.join(REL, "EchoAsyncSockets"), "0"]),
    "as-2loops": ({"ASYNCSOCKETS_LOOP_COUNT": "2"}, [os.path.join(REL, "EchoAsyncSockets"), "0"]),
    "as-2reuseport": ({}, [os.path.join(REL, "EchoAsyncSockets"), "0", "--reuseport", "2"]),
    "nio-1thread": ({}, [os.path.join(REL, "EchoNIOHandler"), "0", "1"]),
    "nio-2threads": ({}, [os.path.join(REL, "EchoNIOHandler"), "0", "2"]),
}
SCENARIO_SERVERS = {
    "pp64": ["as-1loop", "as-2loops", "nio-1thread", "nio-2threads"],
    "churn": ["as-1loop", "as-2loops", "as-2reuseport", "nio-1thread", "nio-2threads"],
}
LOADGEN_ARGS = {
    "pp64": ["--scenario", "pingpong", "--conns", "64", "--size", "64"],
    "churn": ["--scenario", "churn", "--conns", "16"],
}


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def run_server(key, scenario, seconds, warmup):
    env_extra, cmd = SERVERS[key]
    env = dict(os.environ, **env_extra)
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    try:
        line = server.stdout.readline()
        m = re.match(r"listening (\d+)", line)
        if not m:
            return {"error": f"server printed {line!r}"}
        port = m.group(1)
        cpu0 = cpu_seconds(server.pid)
        out = subprocess.run([LOADGEN, "--port", port, *LOADGEN_ARGS[scenario], "--seconds", str(seconds),
                              "--warmup", str(warmup)], capture_output=True, text=True, timeout=seconds + warmup + 30)
        cpu1 = cpu_seconds(server.pid)
        result = json.loads([l for l in out.stdout.splitlines() if l.startswith("{")][-1])
        if "error" in result:
            return result
        ops = result["ops"]
        # CPU over warm-up + window, scaled to the window.
        result["server_cpu_us_per_op"] = (cpu1 - cpu0) * seconds / (seconds + warmup) / ops * 1e6
        result["server_cpu_cores"] = (cpu1 - cpu0) / (seconds + warmup)
        return result
    finally:
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def run_pairs(loops, seconds, warmup):
    out = subprocess.run([os.path.join(REL, "PairsAsyncSockets"), "--loops", str(loops), "--seconds", str(seconds),
                          "--warmup", str(warmup)], capture_output=True, text=True, timeout=seconds + warmup + 30)
    return json.loads([l for l in out.stdout.splitlines() if l.startswith("{")][-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.5)
    parser.add_argument("--warmup", type=float, default=0.7)
    parser.add_argument("--scenarios", default="pairs,pp64,churn")
    args = parser.parse_args()
    scenarios = args.scenarios.split(",")
    results = {}  # (scenario, key) -> [result per round]
    for round_index in range(args.rounds):
        for scenario in scenarios:
            keys = ["pairs-1loop", "pairs-2loops"] if scenario == "pairs" else SCENARIO_SERVERS[scenario]
            for key in keys:
                if scenario == "pairs":
                    result = run_pairs(1 if key == "pairs-1loop" else 2, args.seconds, args.warmup)
                else:
                    result = run_server(key, scenario, args.seconds, args.warmup)
                results.setdefault((scenario, key), []).append(result)
                shown = result.get("error") or f"{result['value']:.0f} {result['unit']}" + (
                    f", server {result['server_cpu_us_per_op']:.2f} us CPU/op" if "server_cpu_us_per_op" in result else "") + (
                    f", {result['cpu_us_per_rt']:.2f} us CPU/rt" if "cpu_us_per_rt" in result else "")
                print(f"round {round_index + 1} {scenario:6} {key:14} {shown}", file=sys.stderr, flush=True)

    def per_round_ratio(scenario, a, b, field="value", invert=False):
        xs, ys = results.get((scenario, a), []), results.get((scenario, b), [])
        ratios = [(y[field] / x[field]) if invert else (x[field] / y[field])
                  for x, y in zip(xs, ys) if field in x and field in y and y[field] and x[field]]
        return statistics.median(ratios) if ratios else float("nan")

    def median(scenario, key, field):
        values = [r[field] for r in results.get((scenario, key), []) if field in r]
        return statistics.median(values) if values else float("nan")

    print(f"## Multi-loop benchmarks ({args.rounds} rounds, {args.seconds} s measured + {args.warmup} s warm-up, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} at the end)\n")
    if "pairs" in scenarios:
        for r in results.get(("pairs", "pairs-1loop"), []) + results.get(("pairs", "pairs-2loops"), []):
            if "cpu_s" in r:
                r["cores"] = r["cpu_s"] / r["seconds"]
        print("| in-process, 64 pairs x 64 B ping-pong | round trips/s | process CPU us per round trip | CPU obtained (cores) |")
        print("|---|---|---|---|")
        for key in ["pairs-1loop", "pairs-2loops"]:
            print(f"| {key} | {median('pairs', key, 'value'):,.0f} | {median('pairs', key, 'cpu_us_per_rt'):.2f} | "
                  f"{median('pairs', key, 'cores'):.2f} |")
        print(f"| **2 loops / 1 loop** | **{per_round_ratio('pairs', 'pairs-2loops', 'pairs-1loop'):.2f}x** | "
              f"{per_round_ratio('pairs', 'pairs-2loops', 'pairs-1loop', 'cpu_us_per_rt'):.2f}x | |\n")
    for scenario, unit in [("pp64", "round trips/s"), ("churn", "connections/s")]:
        if scenario not in scenarios:
            continue
        label = "64 conns x 64 B ping-pong" if scenario == "pp64" else "churn (16 in flight)"
        print(f"| echo server, {label}, unpinned | {unit} | server CPU us per op | server CPU (cores) | vs nio-2threads (throughput) | vs nio-2threads (CPU/op, <1 is leaner) |")
        print("|---|---|---|---|---|---|")
        for key in SCENARIO_SERVERS[scenario]:
            print(f"| {key} | {median(scenario, key, 'value'):,.0f} | {median(scenario, key, 'server_cpu_us_per_op'):.2f} | "
                  f"{median(scenario, key, 'server_cpu_cores'):.2f} | {per_round_ratio(scenario, key, 'nio-2threads'):.2f}x | "
                  f"{per_round_ratio(scenario, key, 'nio-2threads', 'server_cpu_us_per_op'):.2f}x |")
        print(f"\n2 loops / 1 loop (AsyncSockets, throughput): {per_round_ratio(scenario, 'as-2loops', 'as-1loop'):.2f}x")
        if scenario == "churn":
            print(f"SO_REUSEPORT listener per loop / single acceptor (2 loops, connections/s): "
                  f"{per_round_ratio(scenario, 'as-2reuseport', 'as-2loops'):.2f}x")
        print()


if __name__ == "__main__":
    main()
