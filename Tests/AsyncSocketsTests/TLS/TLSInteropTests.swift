@testable import AsyncSockets
import AsyncSocketsTLS
import Foundation
import Testing

private typealias F = TLSFixtures

/// TLS against other implementations: CPython's `ssl` module and the `openssl` command, in child processes.
@Suite struct TLSInteropTests {
    @Test func pythonSSLClientAgainstServeTLS() async throws { try await withDescriptorCheck {
        let certificates = try await TLSFixtures.certificates()
        let (server, task) = try F.startServer(try await F.serverContext { $0.alpnProtocols = ["echo/1"] }, F.echo)
        let script = """
            import socket, ssl, sys
            context = ssl.create_default_context(cafile=sys.argv[2])
            context.set_alpn_protocols(["echo/1"])
            with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30) as raw:
                with context.wrap_socket(raw, server_hostname="localhost") as s:
                    msg = bytes(range(256)) * 1000
                    s.sendall(msg)
                    got = b""
                    while len(got) < len(msg):
                        chunk = s.recv(65536)
                        if not chunk:
                            sys.exit("the server closed early")
                        got += chunk
                    if got != msg:
                        sys.exit("echo mismatch")
                    print(s.version(), s.selected_alpn_protocol())
                    s.unwrap()  # close_notify both ways
            print("ok")
            """
        let result = try await ServerTesting.run("python3", ["-c", script, String(F.port(server)), certificates.ca])
        #expect(result.status == 0, "python3 failed: \(result.stderr)")
        #expect(result.stdout == "TLSv1.3 echo/1\nok\n", "python3 printed: \(result.stdout) \(result.stderr)")
        server.close()
        try await task.value
    } }

    @Test func tlsSocketAgainstPythonSSLServer() async throws { try await withDescriptorCheck {
        let certificates = try await TLSFixtures.certificates()
        let script = """
            import socket, ssl, sys
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(sys.argv[1], sys.argv[2])
            srv = socket.create_server(("127.0.0.1", 0))
            srv.settimeout(30)
            print(srv.getsockname()[1], flush=True)
            conn, addr = srv.accept()
            with context.wrap_socket(conn, server_side=True) as s:
                s.settimeout(30)
                data = b""
                while not data.endswith(b"\\n"):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                s.sendall(b"python says " + data)
                s.unwrap()
            print("ok", flush=True)
            """
        let child = try ServerTesting.Child("python3", ["-c", script, certificates.path("server.pem"), certificates.path("server.key")])
        let portLine = await child.readLine()
        let port = try #require(portLine.flatMap { UInt16($0) }, "python3 printed \(String(describing: portLine))")
        let client = try await TLSSocket.connect(to: Endpoint(host: "localhost", port: port), context: try await F.clientContext())
        try await client.write("hello\n")
        #expect(try await client.read(exactly: 18) == Array("python says hello\n".utf8))
        #expect(try await client.read(upTo: 100) == [])  // Python's close_notify
        await client.close()
        let result = await child.finish()
        #expect(result.status == 0 && result.stdout == "ok\n", "python3: \(result.stdout) \(result.stderr)")
    } }

    @Test func opensslSClientAgainstServeTLS() async throws { try await withDescriptorCheck {
        let certificates = try await TLSFixtures.certificates()
        // One line back, then close_notify: s_client (-ign_eof) exits when the server closes.
        let (server, task) = try F.startServer(try await F.serverContext()) { tls in
            var line: [UInt8] = []
            while line.last != UInt8(ascii: "\n") {
                let bytes = try await tls.read(upTo: 100)
                if bytes.isEmpty { break }
                line += bytes
            }
            try await tls.write(line)
        }
        let command = "printf 'ping from s_client\\n' | timeout 20 openssl s_client -connect 127.0.0.1:\(F.port(server)) " +
            "-servername localhost -verify_hostname localhost -CAfile \(certificates.ca) -verify_return_error -quiet -ign_eof"
        let result = try await ServerTesting.run("sh", ["-c", command], limit: .seconds(30))
        #expect(result.status == 0, "s_client: \(result.stderr)")
        #expect(result.stdout == "ping from s_client\n", "s_client printed: \(result.stdout) \(result.stderr)")
        server.close()
        try await task.value
    } }

    @Test func tlsSocketAgainstOpensslSServer() async throws { try await withDescriptorCheck {
        let certificates = try await TLSFixtures.certificates()
        // A free port: bind one, close it, let s_server take it.
        let probe = try AsyncServer(host: "127.0.0.1", port: 0)
        let port = F.port(probe)
        probe.close()
        let child = try ServerTesting.Child("openssl", ["s_server", "-accept", "127.0.0.1:\(port)", "-www", "-naccept", "1",
                                                        "-cert", certificates.path("server.pem"),
                                                        "-key", certificates.path("server.key")], limit: .seconds(30))
        let context = try await F.clientContext()
        var client: TLSSocket?
        for _ in 0..<200 where client == nil {  // until s_server listens
            do {
                client = try await TLSSocket.connect(to: Endpoint(host: "127.0.0.1", port: port), context: context,
                                                     serverName: "localhost")
            } catch let error as SocketError where error.code == ECONNREFUSED {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        let tls = try #require(client)
        try await tls.write("GET / HTTP/1.0\r\n\r\n")
        var response: [UInt8] = []
        while true {
            let bytes = try await tls.read(upTo: 65536)
            if bytes.isEmpty { break }
            response += bytes
        }
        let text = String(decoding: response, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.0 200 ok"), "\(text.prefix(200))")
        await tls.close()
        _ = await child.finish()
    } }
}
