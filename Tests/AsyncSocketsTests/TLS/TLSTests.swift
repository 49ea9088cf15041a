@testable import AsyncSockets
import AsyncSocketsTLS
import Foundation
import Synchronization
import Testing

private typealias F = TLSFixtures

/// TLS client and server over real loopback sockets, with certificates made by the `openssl` command.
@Suite struct TLSTests {
    @Test func verifiedConnectEchoesAndReportsTheHandshake() async throws { try await withDescriptorCheck {
        let (server, task) = try F.startServer(try await F.serverContext(), F.echo)
        let client = try await TLSSocket.connect(to: Endpoint(host: "127.0.0.1", port: F.port(server)),
                                                 context: try await F.clientContext(), serverName: "localhost")
        try await client.write("hello, TLS")
        #expect(try await client.read(exactly: 10) == Array("hello, TLS".utf8))
        #expect(await client.protocolVersion == "TLSv1.3")
        let certificate = try #require(await client.peerCertificate)
        #expect(certificate.subject == "CN=localhost")
        #expect(certificate.der.first == 0x30)  // a DER SEQUENCE
        #expect(await client.alpnProtocol == nil)
        await client.close()
        server.close()
        try await task.value
    } }

    @Test func tls12CanBeForced() async throws { try await withDescriptorCheck {
        let (server, task) = try F.startServer(try await F.serverContext { $0.maximumVersion = .tls12 }, F.echo)
        let client = try await TLSSocket.connect(to: Endpoint(host: "localhost", port: F.port(server)),
                                                 context: try await F.clientContext())
        try await client.write("x")
        #expect(try await client.read(exactly: 1) == [UInt8(ascii: "x")])
        #expect(await client.protocolVersion == "TLSv1.2")
        await client.close()
        server.close()
        try await task.value
    } }

    @Test func unknownCertificateAuthorityFailsWithAReason() async throws { try await withDescriptorCheck {
        let (server, task) = try F.startServer(try await F.serverContext("rogue"), F.echo)
        let error = await F.error {
            _ = try await TLSSocket.connect(to: Endpoint(host: "127.0.0.1", port: F.port(server)),
                                            context: try await F.clientContext())
        }
        let tls = try #require(error as? TLSError, "\(String(describing: error))")
        #expect(tls.kind == .certificateVerificationFailed)
        #expect(tls.description.hasPrefix("TLS handshake with 127.0.0.1:\(F.port(server)) failed: certificate verify failed: "),
                "\(tls)")
        #expect(tls.verificationError == "self-signed certificate", "\(tls)")
        server.close()
        try await task.value
    } }

    @Test func chainFromAnUnknownIssuerFails() async throws { try await withDescriptorCheck {
        let (server, task) = try F.startServer(try await F.serverContext(), F.echo)
        // The system trust store does not know the test CA.
        let error = await F.error {
            _ = try await TLSSocket.connect(to: Endpoint(host: "127.0.0.1", port: F.port(server)),
                                            context: try TLSContext(.client()))
        }
        let tls = try #require(error as? TLSError, "\(String(describing: error))")
        #expect("\(tls)".contains("failed: certificate verify failed: unable to get local issuer certificate"), "\(tls)")
        server.close()
        try await task.value
    } }

    @Test func wrongHostNameFails() async throws { try await withDescriptorCheck {
        let (server, task) = try F.startServer(try await F.serverContext("wronghost"), F.echo)
        let error = await F.error {
            _ = try await TLSSocket.connect(to: Endpoint(host: "localhost", port: F.port(server)),
                                            context: try await F.clientContext())
        }
        let tls = try #require(error as? TLSError, "\(String(describing: error))")
        #expect(tls.kind == .certificateVerificationFailed)
        #expect(tls.serverName == "localhost")
        #expect(tls.verificationError?.lowercased() == "hostname mismatch", "\(tls)")
        #expect("\(tls)".contains("localhost"))
        server.close()
        try await task.value
    } }

    @Test func ipAddressesAreVerifiedAsAddressesAndNeverSentAsSNI() async throws { try await withDescriptorCheck {
        let names = Locked<[String?]>([])
        let (server, task) = try F.startServer(try await F.serverContext()) { tls in
            names.withLock { $0.append(tls.requestedServerName) }
            try await F.echo(tls)
        }
        let port = F.port(server)
        let context = try await F.clientContext()
        for host in ["127.0.0.1", "localhost"] {
            let client = try await TLSSocket.connect(to: Endpoint(host: host, port: port), context: context)
            try await client.write("a")
            _ = try await client.read(exactly: 1)
            await client.close()
        }
        // 127.0.0.2 is not in the certificate: verified as an IP address, it must fail.
        let error = await F.error {
            _ = try await TLSSocket.connect(to: Endpoint(host: "127.0.0.1", port: port), context: context,
                                            serverName: "127.0.0.2")
        }
        #expect((error as? TLSError)?.verificationError?.lowercased() == "ip address mismatch", "\(String(describing: error))")
        server.close()
        try await task.value
        #expect(names.withLock { $0 } == [nil, "localhost"])
    } }

    @Test func ipv6Loopback() async throws { try await withDescriptorCheck {
        guard AsyncServer.hasDualStackIPv6 else { return }
        let (server, task) = try F.startServer(try await F.serverContext(), host: "::1", F.echo)
        let client = try await TLSSocket.connect(to: Endpoint(host: "::1", port: F.port(server)),
                                                 context: try await F.clientContext())
        try await client.write("six")
        #expect(try await client.read(exactly: 3) == Array("six".utf8))
        await client.close()
        server.close()
        try await task.value
    } }

    @Test func expiredCertificateFails() async throws { try await withDescriptorCheck {
        let (server, task) = try F.startServer(try await F.serverContext("expired"), F.echo)
        let error = await F.error {
            _ = try await TLSSocket.connect(to: Endpoint(host: "localhost", port: F.port(server)),
                                            context: try await F.clientContext())
        }
        #expect((error as? TLSError)?.verificationError == "certificate has expired", "\(String(describing: error))")
        server.close()
        try await task.value
    } }

    @Test func mutualTLS() async throws { try await withDescriptorCheck {
        let certificates = try await TLSFixtures.certificates()
        let subjects = Locked<[String?]>([])
        let serverErrors = Locked<[String]>([])
        let context = try await F.serverContext {
            $0.certificateVerification = .required
            $0.trustRoots = [.pem(.file(certificates.ca))]
        }
        let (server, task) = try F.startServer(context, onError: { error, _ in serverErrors.withLock { $0.append("\(error)") } }) { tls in
            subjects.withLock { $0.append(tls.peerCertificate?.subject) }
            try await F.echo(tls)
        }
        let endpoint = Endpoint(host: "localhost", port: F.port(server))
        // Without a client certificate: TLS 1.3 completes the client's side of the handshake; the server's
        // refusal arrives as an alert at the first read.
        let anonymous = try await TLSSocket.connect(to: endpoint, context: try await F.clientContext())
        let error = await F.error {
            try await anonymous.write("hi")
            _ = try await anonymous.read(upTo: 10)
        }
        // The server may also have closed before the client's write (it runs on another event loop): then the
        // write meets a reset. Either way the server reports the missing certificate (checked below).
        let refused = (error as? TLSError)?.reason.contains("certificate required") == true
            || (error as? SocketError).map { $0.code == ECONNRESET || $0.code == EPIPE } == true
        #expect(refused, "\(String(describing: error))")
        await anonymous.close()
        // With one.
        let (chain, key) = certificates.identity("client")
        let client = try await TLSSocket.connect(to: endpoint, context: try await F.clientContext {
            $0.certificateChain = chain
            $0.privateKey = key
        })
        try await client.write("mutual")
        #expect(try await client.read(exactly: 6) == Array("mutual".utf8))
        await client.close()
        server.close()
        try await task.value
        #expect(subjects.withLock { $0 } == ["CN=test client"])
        #expect(serverErrors.withLock { $0 }.count == 1)
        #expect(serverErrors.withLock { $0 }.first?.contains("certificate") == true, "\(serverErrors.withLock { $0 })")
    } }

    @Test func alpnPicksTheServersFirstChoiceTheClientOffers() async throws { try await withDescriptorCheck {
        let (server, task) = try F.startServer(try await F.serverContext { $0.alpnProtocols = ["h2", "http/1.1"] }) { tls in
            try await tls.write(Array((tls.alpnProtocol ?? "none").utf8))
        }
        let endpoint = Endpoint(host: "localhost", port: F.port(server))
        let client = try await TLSSocket.connect(to: endpoint, context: try await F.clientContext { $0.alpnProtocols = ["http/1.1", "h2"] })
        #expect(await client.alpnProtocol == "h2")
        #expect(try await client.read(exactly: 2) == Array("h2".utf8))
        await client.close()
        let other = try await TLSSocket.connect(to: endpoint, context: try await F.clientContext { $0.alpnProtocols = ["spdy/1"] })
        #expect(await other.alpnProtocol == nil)
        await other.close()
        server.close()
        try await task.value
    } }

    @Test func sniPicksTheCertificate() async throws { try await withDescriptorCheck {
        let certificates = try await TLSFixtures.certificates()
        let (chain, key) = certificates.identity("other")
        let context = try await F.serverContext { $0.serverNames = [TLSServerName("OTHER.test", certificateChain: chain, privateKey: key)] }
        let (server, task) = try F.startServer(context, F.echo)
        let endpoint = Endpoint(host: "127.0.0.1", port: F.port(server))
        let client = try await F.clientContext()
        let other = try await TLSSocket.connect(to: endpoint, context: client, serverName: "other.test")
        #expect(await other.peerCertificate?.subject == "CN=other.test")
        await other.close()
        let plain = try await TLSSocket.connect(to: endpoint, context: client, serverName: "localhost")
        #expect(await plain.peerCertificate?.subject == "CN=localhost")
        await plain.close()
        server.close()
        try await task.value
    } }

    /// 8 MiB each way at once over small socket buffers: reads and writes run concurrently on both TLS sockets,
    /// with many waits in both directions.
    @Test func eightMebibytesEachWayAtOnce() async throws { try await withDescriptorCheck {
        let size = 8 << 20
        let fromServer = CoreFixtures.pattern(count: size, seed: 1)
        let fromClient = CoreFixtures.pattern(count: size, seed: 2)
        let (server, task) = try F.startServer(try await F.serverContext(), onError: { error, _ in Issue.record("server: \(error)") }) { tls in
            let me = tls
            tls.setTimeout(.seconds(20))
            async let sent: Void = me.write(fromServer)
            let got = try await tls.read(exactly: size)
            try await sent
            #expect(CoreFixtures.sameBytes(got, fromClient))
        }
        let raw = try await AsyncSocket.connect(to: Endpoint(host: "127.0.0.1", port: F.port(server)))
        try await raw.setOption(.sendBufferSize, 4096)
        // (Not a small SO_RCVBUF: set after the connect, it shrinks the window below loopback's MSS and Linux's
        // sender then trickles a few segments per retransmission timeout.)
        let client = try await TLSSocket.upgrade(raw, context: try await F.clientContext(), serverName: "localhost")
        try await CoreFixtures.within(.seconds(60), "8 MiB each way") {
            await client.setTimeout(.seconds(20))
            async let sent: Void = client.write(fromClient)
            var got: [UInt8] = []
            got.reserveCapacity(size)
            while got.count < size {
                let n = try await client.read(into: &got, upTo: 100_000)
                if n == 0 { break }
            }
            try await sent
            #expect(CoreFixtures.sameBytes(got, fromServer))
        }
        await client.close()
        server.close()
        try await task.value
    } }

    @Test func concurrentWritesNeverInterleave() async throws { try await withDescriptorCheck {
        let (server, task) = try F.startServer(try await F.serverContext(), F.echo)
        let client = try await TLSSocket.connect(to: Endpoint(host: "localhost", port: F.port(server)),
                                                 context: try await F.clientContext())
        let chunk = 300_000
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<4 {
                group.addTask { try await client.write([UInt8](repeating: UInt8(writer), count: chunk)) }
            }
            try await group.waitForAll()
        }
        let echoed = try await client.read(exactly: 4 * chunk)
        for index in 0..<4 {
            let block = echoed[(index * chunk)..<((index + 1) * chunk)]
            #expect(Set(block).count == 1, "block \(index) is interleaved")
        }
        await client.close()
        server.close()
        try await task.value
    } }

    @Test func closeNotifyResetAndTruncation() async throws { try await withDescriptorCheck {
        enum Ending: Sendable { case closeNotify, reset, truncate }
        let endings = Locked<[Ending]>([.closeNotify, .reset, .truncate, .truncate])
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let serverContext = try await F.serverContext()
        let task = Task {
            for _ in 0..<4 {
                guard let raw = try await server.accept() else { return }
                let ending = endings.withLock { $0.removeFirst() }
                let tls = try await TLSSocket.upgrade(raw, context: serverContext)
                try await tls.write("bye")
                switch ending {
                case .closeNotify: await tls.close()
                case .reset:
                    try await raw.setRawOption(level: SOL_SOCKET, name: SO_LINGER, bytes: [1, 0, 0, 0, 0, 0, 0, 0])
                    await raw.close()
                case .truncate: await raw.close()  // the TCP stream ends, no close_notify
                }
            }
        }
        let endpoint = Endpoint(host: "localhost", port: F.port(server))
        let context = try await F.clientContext()
        // close_notify: a clean end of stream.
        let clean = try await TLSSocket.connect(to: endpoint, context: context)
        #expect(try await clean.read(exactly: 3) == Array("bye".utf8))
        #expect(try await clean.read(upTo: 10) == [])
        #expect(try await clean.read(upTo: 10) == [])
        await clean.close()
        // A reset: ECONNRESET.
        let reset = try await TLSSocket.connect(to: endpoint, context: context)
        #expect(try await reset.read(exactly: 3) == Array("bye".utf8))
        let resetError = await F.error { _ = try await reset.read(upTo: 10) }
        #expect((resetError as? SocketError)?.code == ECONNRESET, "\(String(describing: resetError))")
        await reset.close()
        // Truncation: an error by default...
        let truncated = try await TLSSocket.connect(to: endpoint, context: context)
        #expect(try await truncated.read(exactly: 3) == Array("bye".utf8))
        let truncation = await F.error { _ = try await truncated.read(upTo: 10) }
        #expect((truncation as? TLSError)?.kind == .truncated, "\(String(describing: truncation))")
        await truncated.close()
        // ...and an end of stream when allowed.
        let lenient = try await TLSSocket.connect(to: endpoint, context: try await F.clientContext { $0.allowsTruncation = true })
        #expect(try await lenient.read(exactly: 3) == Array("bye".utf8))
        #expect(try await lenient.read(upTo: 10) == [])
        await lenient.close()
        try await task.value
        server.close()
    } }

    @Test func shutdownWriteSendsCloseNotifyAndKeepsReading() async throws { try await withDescriptorCheck {
        let (server, task) = try F.startServer(try await F.serverContext()) { tls in
            var all: [UInt8] = []
            while true {
                let bytes = try await tls.read(upTo: 1000)
                if bytes.isEmpty { break }
                all += bytes
            }
            try await tls.write(Array("got \(all.count)".utf8))
        }
        let client = try await TLSSocket.connect(to: Endpoint(host: "localhost", port: F.port(server)),
                                                 context: try await F.clientContext())
        try await client.write([UInt8](repeating: 7, count: 5000))
        try await client.shutdown(.write)
        #expect(try await client.read(exactly: 8) == Array("got 5000".utf8))
        #expect(try await client.read(upTo: 10) == [])
        let error = await F.error { try await client.write("late") }
        #expect((error as? SocketError)?.code == EPIPE, "\(String(describing: error))")
        await client.close()
        server.close()
        try await task.value
    } }

    @Test func cancellationAndCloseWakeAWaitingRead() async throws { try await withDescriptorCheck {
        let (server, task) = try F.startServer(try await F.serverContext(), F.echo)
        let client = try await TLSSocket.connect(to: Endpoint(host: "localhost", port: F.port(server)),
                                                 context: try await F.clientContext())
        let reader = Task { try await client.read(upTo: 100) }
        try await Task.sleep(for: .milliseconds(50))
        reader.cancel()
        let cancelled = await reader.result
        #expect(throws: CancellationError.self) { try cancelled.get() }
        // Still usable.
        try await client.write("again")
        #expect(try await client.read(exactly: 5) == Array("again".utf8))
        let blocked = Task { try await client.read(upTo: 100) }
        try await Task.sleep(for: .milliseconds(50))
        await client.close()
        let closed = await blocked.result
        #expect(throws: SocketError.self) { try closed.get() }
        server.close()
        try await task.value
    } }

    @Test func cancellationDuringTheHandshake() async throws { try await withDescriptorCheck {
        let silent = try AsyncServer(host: "127.0.0.1", port: 0)  // accepts (backlog) but never answers
        let context = try await F.clientContext()
        let port = F.port(silent)
        let connecting = Task {
            _ = try await TLSSocket.connect(to: Endpoint(host: "127.0.0.1", port: port), context: context,
                                            serverName: "localhost")
        }
        try await Task.sleep(for: .milliseconds(100))
        let start = ContinuousClock.now
        connecting.cancel()
        let result = await connecting.result
        #expect(throws: CancellationError.self) { try result.get() }
        #expect(ContinuousClock.now - start < .seconds(2))
        silent.close()
    } }

    @Test func handshakeTimeoutAgainstASilentPeer() async throws { try await withDescriptorCheck {
        // Client side: a server that never answers.
        let silent = try AsyncServer(host: "127.0.0.1", port: 0)
        let error = await F.error {
            _ = try await TLSSocket.connect(to: Endpoint(host: "127.0.0.1", port: F.port(silent)),
                                            context: try await F.clientContext(), handshakeTimeout: .milliseconds(200))
        }
        #expect((error as? SocketError)?.code == ETIMEDOUT, "\(String(describing: error))")
        silent.close()
        // Server side: a silent client is dropped after the handshake timeout and does not hold up others.
        let failures = Locked<[String]>([])
        let (server, task) = try F.startServer(try await F.serverContext(), handshakeTimeout: .milliseconds(300),
                                               onError: { error, _ in failures.withLock { $0.append("\(error)") } }, F.echo)
        let quiet = try await AsyncSocket.connect(to: Endpoint(host: "127.0.0.1", port: F.port(server)))
        let client = try await TLSSocket.connect(to: Endpoint(host: "localhost", port: F.port(server)),
                                                 context: try await F.clientContext())
        try await client.write("not held up")
        #expect(try await client.read(exactly: 11) == Array("not held up".utf8))
        #expect(try await quiet.read(upTo: 10) == [])  // dropped by the server
        await quiet.close()
        await client.close()
        server.close()
        try await task.value
        let seen = failures.withLock { $0 }
        #expect(seen.count == 1 && seen[0].contains("TLS handshake") && seen[0].contains("ETIMEDOUT"), "\(seen)")
    } }

    @Test func badConfigurationsSayWhy() async throws {
        let certificates = try await TLSFixtures.certificates()
        #expect(throws: TLSError.self) { try TLSContext(.server(certificateChain: .file("/nonexistent.pem"), privateKey: .file("/nonexistent.key"))) }
        let mismatch = #expect(throws: TLSError.self) {
            try TLSContext(.server(certificateChain: .file(certificates.path("server.pem")), privateKey: .file(certificates.path("client.key"))))
        }
        #expect(mismatch?.description.contains("key values mismatch") == true, "\(String(describing: mismatch))")
        let garbage = #expect(throws: TLSError.self) { try TLSContext(.client(trustRoots: [.pem(.bytes(Array("nope".utf8)))])) }
        #expect(garbage?.description.contains("trust roots") == true, "\(String(describing: garbage))")
        let pem = try Array(Data(contentsOf: URL(fileURLWithPath: certificates.ca)))
        _ = try TLSContext(.client(trustRoots: [.pem(.bytes(pem))]))
    }

    @Test func pemBytesWork() async throws { try await withDescriptorCheck {
        let certificates = try await TLSFixtures.certificates()
        func bytes(_ name: String) throws -> [UInt8] { try Array(Data(contentsOf: URL(fileURLWithPath: certificates.path(name)))) }
        let context = try TLSContext(.server(certificateChain: .bytes(try bytes("server.pem")), privateKey: .bytes(try bytes("server.key"))))
        let (server, task) = try F.startServer(context, F.echo)
        let client = try await TLSSocket.connect(to: Endpoint(host: "localhost", port: F.port(server)),
                                                 context: try TLSContext(.client(trustRoots: [.pem(.bytes(try bytes("ca.pem")))])))
        try await client.write("pem")
        #expect(try await client.read(exactly: 3) == Array("pem".utf8))
        await client.close()
        server.close()
        try await task.value
    } }

    /// STARTTLS: plain text first, then both sides upgrade the same sockets.
    @Test func startTLSUpgradesBothSides() async throws { try await withDescriptorCheck {
        let (plainClient, plainServer) = try await CoreFixtures.tcpPair()
        let serverContext = try await F.serverContext()
        let clientContext = try await F.clientContext()
        try await plainClient.write("STARTTLS\r\n")
        #expect(try await plainServer.read(exactly: 10) == Array("STARTTLS\r\n".utf8))
        async let serverSide = TLSSocket.upgrade(plainServer, context: serverContext)
        let client = try await TLSSocket.upgrade(plainClient, context: clientContext, serverName: "localhost")
        let server = try await serverSide
        try await client.write("secret")
        #expect(try await server.read(exactly: 6) == Array("secret".utf8))
        await client.close()
        #expect(try await server.read(upTo: 5) == [])
        await server.close()
    } }

    @Test func noSSLObjectsOrContextsLeak() async throws { try await withDescriptorCheck {
        let (server, task) = try F.startServer(try await F.serverContext(), F.echo)
        let context = try await F.clientContext()
        let before = (TLSSocket.liveConnectionCount, TLSContext.liveCount)
        for round in 0..<10 {
            let client = try await TLSSocket.connect(to: Endpoint(host: "localhost", port: F.port(server)), context: context)
            try await client.write([UInt8(round)])
            _ = try await client.read(exactly: 1)
            if round % 2 == 0 { await client.close() }  // the others are dropped without close()
        }
        server.close()
        try await task.value
        try await CoreFixtures.waitUntil("every SSL object is freed", timeout: .seconds(5)) {
            TLSSocket.liveConnectionCount <= before.0
        }
        #expect(TLSSocket.liveConnectionCount <= before.0)
        #expect(TLSContext.liveCount <= before.1 + 1)  // the server's own context, until it is released
    } }
    /// Request and response: after a read that took everything the socket had, the next read (after the
    /// answer is written) waits for readiness instead of calling `SSL_read` and a `recv` that finds nothing.
    /// Both sides, 100 round trips of 64 bytes: before, every round trip paid one empty `recv` on each side.
    /// Client and server share one loop, so the peer's message can never be there yet when the read comes:
    /// `ReadAfterWritePrediction` then only probes now and then (on two loops the peer may answer from the
    /// other core in time, and trying is right).
    @Test func readAfterAWriteWaitsWithoutAnEmptyReceive() async throws { try await withDescriptorCheck {
        let serverEmpty = Mutex<[Int]>([])
        let (server, task) = try F.startServer(try await F.serverContext(), group: GroupFixtures.one) { tls in
            let before = tls.emptyReceives
            var buffer: [UInt8] = []
            while try await tls.read(into: &buffer, upTo: 65536) > 0 {
                try await tls.write(buffer)
                buffer.removeAll(keepingCapacity: true)
            }
            let count = tls.emptyReceives - before
            serverEmpty.withLock { $0.append(count) }
        }
        let rounds = 100
        let port = F.port(server)
        let clientContext = try await F.clientContext()
        let clientEmpty = try await GroupFixtures.one.loops[0].run {
            try await TLSSocket.withConnection(to: Endpoint(host: "127.0.0.1", port: port),
                                               context: clientContext, serverName: "localhost") { tls in
                let message = [UInt8](repeating: 9, count: 64)
                try await tls.write(message)                      // warm-up: the handshake's last bytes are read
                _ = try await tls.read(exactly: 64)
                let before = tls.emptyReceives
                for _ in 0..<rounds {
                    try await tls.write(message)
                    #expect(try await tls.read(exactly: 64) == message)
                }
                let count = tls.emptyReceives - before
                try await tls.shutdown(.write)
                _ = try await tls.read(upTo: 1)                   // the server's end of stream: its handler is done
                return count
            }
        }
        server.close()
        try await task.value
        // A few probes (and a read whose bytes came in two pieces may find nothing once); `rounds` before.
        #expect(clientEmpty <= rounds / 10, "client: \(clientEmpty) empty receives in \(rounds) round trips")
        let serverCounts = serverEmpty.withLock { $0 }
        #expect(serverCounts.count == 1)
        #expect(serverCounts.allSatisfy { $0 <= rounds / 10 }, "server: \(serverCounts) empty receives in \(rounds + 1) round trips")
    } }

    /// `read(into:upTo:)` decrypts straight into a buffer with spare capacity (growing it as needed) and
    /// copies into one without: either way the bytes come in order, after what the buffer already held.
    @Test func readIntoKeepsTheBufferAndTheOrder() async throws { try await withDescriptorCheck {
        let (server, task) = try F.startServer(try await F.serverContext(), F.echo)
        let client = try await TLSSocket.connect(to: Endpoint(host: "127.0.0.1", port: F.port(server)),
                                                 context: try await F.clientContext(), serverName: "localhost")
        let payload = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let writer = Task { try await client.write(payload) }
        var direct: [UInt8] = [1, 2, 3]
        direct.reserveCapacity(8192)                       // spare capacity: straight into it
        var copied: [UInt8] = [4]                          // no spare capacity to speak of: a copy
        var received: [UInt8] = []
        var turn = 0
        while received.count < payload.count {
            turn += 1
            let want = min(payload.count - received.count, 65536)
            if turn % 2 == 0 {
                let start = direct.count
                let n = try await client.read(into: &direct, upTo: want)
                #expect(n > 0 && n <= want && direct.count == start + n)
                received += direct[start...]
            } else {
                let start = copied.count
                let n = try await client.read(into: &copied, upTo: want)
                #expect(n > 0 && n <= want && copied.count == start + n)
                received += copied[start...]
                copied = [4]
            }
        }
        try await writer.value
        #expect(received == payload)
        #expect(direct.prefix(3) == [1, 2, 3])
        await client.close()
        server.close()
        try await task.value
    } }
}
