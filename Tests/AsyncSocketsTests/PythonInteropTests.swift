import Foundation
import Testing
@testable import AsyncSockets

private typealias T = ServerTesting

/// Talking to CPython's `socket` module in a `python3` child process (found on PATH; killed after a minute).
@Suite struct PythonInteropTests {
    /// Python's `socket.create_connection` against an ``AsyncServer`` echo server.
    @Test func pythonCreateConnectionAgainstAsyncServer() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let peers = Locked<[SocketAddress]>([])
        async let served: Void = server.serve { client in
            let peer = try client.remoteAddress
            peers.withLock { $0.append(peer) }
            try await T.echo(client)
        }
        let script = """
            import socket, sys
            port = int(sys.argv[1])
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                for i in range(5):
                    msg = bytes((i * 7 + j) % 256 for j in range(1024)) * 8
                    s.sendall(msg)
                    got = b""
                    while len(got) < len(msg):
                        chunk = s.recv(65536)
                        if not chunk:
                            sys.exit("the server closed early")
                        got += chunk
                    if got != msg:
                        sys.exit("echo mismatch in round %d" % i)
                print(s.getsockname()[1])
            print("ok")
            """
        let result = try await T.run("python3", ["-c", script, String(server.localAddress.port!)], limit: .seconds(60))
        #expect(result.status == 0, "python3 failed: \(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.last == "ok", "python3 printed: \(result.stdout)")
        server.close()
        try await served
        let seen = peers.withLock { $0 }
        #expect(seen.count == 1)
        #expect(seen.first?.host == "127.0.0.1")
        #expect(seen.first.flatMap { $0.port.map(String.init) } == lines.first, "the server saw Python's port")
    } }

    /// An ``AsyncSocket`` against a `socket.create_server` echo server run by Python.
    @Test func asyncSocketAgainstPythonCreateServer() async throws { try await withDescriptorCheck {
        let script = """
            import socket, sys
            srv = socket.create_server(("127.0.0.1", 0))
            srv.settimeout(30)
            print(srv.getsockname()[1], flush=True)
            conn, addr = srv.accept()
            conn.settimeout(30)
            with conn:
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    conn.sendall(data)
            srv.close()
            print(addr[1], flush=True)
            """
        let child = try T.Child("python3", ["-c", script], limit: .seconds(60))
        guard let line = await child.readLine(), let port = UInt16(line) else {
            let result = await child.finish()
            Issue.record("python3 did not print its port: \(result.stdout) \(result.stderr)")
            return
        }
        let client = try await AsyncSocket.connect(to: Endpoint(host: "127.0.0.1", port: port), timeout: .seconds(20))
        for round in 0..<5 {
            let payload = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ round) }
            try await client.write(payload)
            #expect(try await client.read(exactly: payload.count) == payload)
        }
        try await client.shutdown(.write)
        #expect(try await client.read(upTo: 16) == [], "Python closes after our end of stream")
        let localPort = try await client.localAddress.port
        await client.close()
        let result = await child.finish()
        #expect(result.status == 0, "python3 failed: \(result.stderr)")
        #expect(result.stdout.split(separator: "\n").last.map(String.init) == localPort.map(String.init),
                "Python saw our port")
    } }

    /// Python's dual-stack `create_server` takes our IPv4 client, and agrees with ``AsyncServer/hasDualStackIPv6``.
    @Test func pythonDualStackServerAndHasDualStack() async throws { try await withDescriptorCheck {
        let script = """
            import socket
            print(socket.has_dualstack_ipv6(), flush=True)
            srv = socket.create_server(("", 0), family=socket.AF_INET6, dualstack_ipv6=True)
            srv.settimeout(30)
            print(srv.getsockname()[1], flush=True)
            conn, addr = srv.accept()
            with conn:
                conn.sendall(addr[0].encode())
            srv.close()
            """
        let child = try T.Child("python3", ["-c", script], limit: .seconds(60))
        let hasDualStack = await child.readLine()
        #expect(hasDualStack == (AsyncServer.hasDualStackIPv6 ? "True" : "False"))
        guard let line = await child.readLine(), let port = UInt16(line) else {
            let result = await child.finish()
            Issue.record("python3 did not print its port: \(result.stdout) \(result.stderr)")
            return
        }
        let client = try await T.connect(port)
        var seen: [UInt8] = []
        while true {
            let bytes = try await client.read(upTo: 100)
            if bytes.isEmpty { break }
            seen += bytes
        }
        #expect(String(decoding: seen, as: UTF8.self) == "::ffff:127.0.0.1")
        await client.close()
        let result = await child.finish()
        #expect(result.status == 0, "python3 failed: \(result.stderr)")
    } }
}
