#!/usr/bin/env python3
"""Idle memory per TLS connection of each TLS echo server: RSS growth after N connections that each did one
full handshake and one 64-byte echo, then sit idle (CPython's ssl module as the client; no resumption).

    python3 Benchmarks/tls_idle.py [--conns 1000] [--impls asyncsockets,nio-handler,nio-async]

Needs the release build of the Benchmarks package (`swift build -c release --package-path Benchmarks`, or a
run of tls.sh) and the openssl command; raises its own descriptor limit as far as the hard limit allows.
"""
import argparse, os, resource, socket, ssl, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.join(HERE, ".build", "release")
SERVERS = {"asyncsockets": "TLSEchoAsyncSockets", "nio-handler": "TLSEchoNIOHandler", "nio-async": "TLSEchoNIOAsync"}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def measure(binary, cert, key, conns):
    server = subprocess.Popen([binary, "0", cert, key], stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline().split()[1])
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        for _ in range(20):  # warm-up: the server's first connections allocate what every later one reuses
            with context.wrap_socket(socket.create_connection(("127.0.0.1", port))) as s:
                s.sendall(b"x" * 64)
                s.recv(64)
        time.sleep(0.3)
        before = rss_kib(server.pid)
        held = []
        for _ in range(conns):
            s = context.wrap_socket(socket.create_connection(("127.0.0.1", port)))
            s.sendall(b"y" * 64)
            if not s.recv(64):
                raise RuntimeError("the server closed a connection")
            held.append(s)
        time.sleep(1.0)
        after = rss_kib(server.pid)
        for s in held:
            s.close()
        return (after - before) / conns
    finally:
        server.kill()
        server.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--conns", type=int, default=1000)
    parser.add_argument("--impls", default="asyncsockets,nio-handler,nio-async")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 2 * args.conns + 100)), hard))
    with tempfile.TemporaryDirectory() as directory:
        cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                        "-keyout", key, "-out", cert], check=True, capture_output=True)
        print(f"| server | KiB per idle TLS connection ({args.conns} connections, RSS growth) |")
        print("|---|---:|")
        for impl in args.impls.split(","):
            binary = os.path.join(BIN, SERVERS[impl])
            if not os.path.exists(binary):
                sys.exit(f"{binary} is missing: build the Benchmarks package in release mode first")
            print(f"| {SERVERS[impl]} | {measure(binary, cert, key, args.conns):.1f} |", flush=True)


if __name__ == "__main__":
    main()
