#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import Testing
@testable import AsyncSockets
import AsyncSocketsTLS

// The scoped forms beyond `AsyncSocket.withConnection`: `TLSSocket.withConnection` and
// `DatagramSocket.withConnection`/`withBound`. As for plain sockets: closed on every way out (return, throw,
// cancellation), the body on the socket's loop thread with the loop as its task's preferred executor, setup
// errors unchanged, no descriptor leaks (the suite is serialized and every test runs under
// `withDescriptorCheck`). "Closed" is checked by the socket (`isClosed`) and by what the kernel shows: a TLS
// peer reads `close_notify` and end of stream; a UDP port can be bound again only once its socket is gone.

private typealias F = TLSFixtures

private struct BodyError: Error, Equatable {
    let id: Int
}

extension TLSSocket {
    fileprivate func scopedTestWaitState() -> SocketCore.WaitState { core.waitState }
}

/// A TLS server whose handler reads to the end of the stream (echoing what it reads) and reports what it got:
/// a report arrives only once the client sent `close_notify` or closed its descriptor (end of stream or reset).
private struct RecordingTLSServer {
    let server: AsyncServer
    let task: Task<Void, any Error>
    let received: AsyncStream<[UInt8]>

    init() async throws {
        let (stream, continuation) = AsyncStream.makeStream(of: [UInt8].self)
        received = stream
        (server, task) = try F.startServer(try await F.serverContext()) { tls in
            var all: [UInt8] = []
            // The end is `close_notify` and end of stream, or a reset: a client that closes with bytes it never
            // read (here the TLS 1.3 session tickets, when its body reads nothing) makes its kernel send RST.
            // Either way the client's descriptor is gone.
            defer { continuation.yield(all) }
            while true {
                let bytes = try await tls.read(upTo: 65536)
                if bytes.isEmpty { break }
                all += bytes
                try await tls.write(bytes)
            }
        }
    }

    var endpoint: Endpoint { Endpoint(host: "127.0.0.1", port: F.port(server)) }

    /// What the one client sent before its connection ended.
    func nextReceived() async throws -> [UInt8] {
        let received = self.received
        return try await CoreFixtures.within(.seconds(20), "the TLS peer's read to end of stream") {
            var iterator = received.makeAsyncIterator()
            guard let bytes = await iterator.next() else { throw CoreFixtures.Failure("no report") }
            return bytes
        }
    }

    func stop() async throws {
        server.close()
        try await task.value
    }
}

/// Whether a UDP socket on `address` is gone: binding its port again succeeds only then.
private func portIsFree(_ address: SocketAddress) -> Bool {
    guard let socket = try? DatagramSocket.bind(to: address) else { return false }
    Task { await socket.close() }
    return true
}

@Suite(.serialized) struct ScopedTLSAndDatagramTests {

    // MARK: TLSSocket.withConnection

    @Test func tlsClosedAfterReturn() async throws { try await withDescriptorCheck {
        let peer = try await RecordingTLSServer()
        let context = try await F.clientContext()
        let (tls, echoed, version) = try await TLSSocket.withConnection(to: peer.endpoint, context: context,
                                                                        serverName: "localhost") { tls in
            try await tls.write("hello, scoped TLS")
            return (tls, try await tls.read(exactly: 17), tls.protocolVersion)
        }
        #expect(echoed == Array("hello, scoped TLS".utf8))
        #expect(version == "TLSv1.3")
        #expect(await tls.isClosed)
        #expect(try await peer.nextReceived() == Array("hello, scoped TLS".utf8))
        try await peer.stop()
    } }

    @Test func tlsClosedAfterThrow() async throws { try await withDescriptorCheck {
        let peer = try await RecordingTLSServer()
        let context = try await F.clientContext()
        var captured: TLSSocket?
        await #expect(throws: BodyError(id: 3)) {
            try await TLSSocket.withConnection(to: peer.endpoint, context: context, serverName: "localhost") { tls in
                captured = tls
                try await tls.write("before the throw")
                throw BodyError(id: 3)
            }
        }
        #expect(try await #require(captured).isClosed)
        #expect(try await peer.nextReceived() == Array("before the throw".utf8))
        try await peer.stop()
    } }

    @Test func tlsClosedAfterCancellation() async throws { try await withDescriptorCheck {
        let peer = try await RecordingTLSServer()
        let context = try await F.clientContext()
        let captured = Mutex<TLSSocket?>(nil)
        let endpoint = peer.endpoint
        let task = Task {
            try await TLSSocket.withConnection(to: endpoint, context: context, serverName: "localhost") { tls in
                captured.withLock { $0 = tls }
                try await tls.write("waiting")
                _ = try await tls.read(exactly: 7)
                _ = try await tls.read(upTo: 100)       // the peer writes nothing more
                Issue.record("the read returned")
            }
        }
        try await CoreFixtures.waitUntil("the body waits in its second read") {
            guard let tls = captured.withLock({ $0 }) else { return false }
            return await tls.scopedTestWaitState().reading
        }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await CoreFixtures.value(of: task, within: .seconds(20)) }
        #expect(try await #require(captured.withLock { $0 }).isClosed)
        #expect(try await peer.nextReceived() == Array("waiting".utf8))
        try await peer.stop()
    } }

    @Test func tlsBodyRunsOnTheLoop() async throws { try await withDescriptorCheck {
        let peer = try await RecordingTLSServer()
        let context = try await F.clientContext()
        #expect(!EventLoopGroup.shared.loops.contains { $0.currentTaskPrefersLoop })
        let checks = try await TLSSocket.withConnection(to: peer.endpoint, context: context,
                                                        serverName: "localhost") { tls in
            var checks: [String: Bool] = [:]
            checks["in loop"] = tls.eventLoop.inLoop
            checks["prefers loop"] = tls.eventLoop.currentTaskPrefersLoop
            tls.preconditionIsolated()
            try await tls.write("ping")
            _ = try await tls.read(exactly: 4)
            checks["in loop after a wait"] = tls.eventLoop.inLoop
            checks["prefers loop after a wait"] = tls.eventLoop.currentTaskPrefersLoop
            return checks
        }
        for (name, value) in checks.sorted(by: { $0.key < $1.key }) { #expect(value, "\(name)") }
        #expect(checks.count == 4)
        #expect(!EventLoopGroup.shared.loops.contains { $0.currentTaskPrefersLoop }, "the preference ends with withConnection")
        _ = try await peer.nextReceived()
        try await peer.stop()
    } }

    /// An unknown certificate authority: the same `TLSError` as `TLSSocket.connect` throws, and the body never runs.
    @Test func tlsHandshakeErrorIsUnchanged() async throws { try await withDescriptorCheck {
        let (server, task) = try F.startServer(try await F.serverContext("rogue"), F.echo)
        let endpoint = Endpoint(host: "127.0.0.1", port: F.port(server))
        let context = try await F.clientContext()
        let fromConnect = await F.error { _ = try await TLSSocket.connect(to: endpoint, context: context) }
        let ran = Mutex(false)
        let fromScope = await F.error {
            try await TLSSocket.withConnection(to: endpoint, context: context) { _ in ran.withLock { $0 = true } }
        }
        let expected = try #require(fromConnect as? TLSError, "\(String(describing: fromConnect))")
        let scoped = try #require(fromScope as? TLSError, "\(String(describing: fromScope))")
        #expect(scoped.kind == .certificateVerificationFailed)
        #expect(scoped.kind == expected.kind)
        #expect(scoped.verificationError == expected.verificationError)
        #expect(scoped.description == expected.description)
        #expect(!ran.withLock { $0 })
        server.close()
        try await task.value
    } }

    /// A connect error (nobody listens) is the plain connect's `SocketError`.
    @Test func tlsConnectErrorIsUnchanged() async throws { try await withDescriptorCheck {
        let free = try DatagramSocket.bind(host: "127.0.0.1", port: 0)   // a TCP port nobody listens on, most likely
        let port = try await free.localAddress.port ?? 0
        await free.close()
        let endpoint = Endpoint(host: "127.0.0.1", port: port)
        let context = try await F.clientContext()
        let fromConnect = await F.error { _ = try await AsyncSocket.connect(to: endpoint) }
        let fromScope = await F.error { try await TLSSocket.withConnection(to: endpoint, context: context) { _ in } }
        let expected = try #require(fromConnect as? SocketError, "\(String(describing: fromConnect))")
        let scoped = try #require(fromScope as? SocketError, "\(String(describing: fromScope))")
        #expect(scoped.code == ECONNREFUSED)
        #expect(scoped == expected)
    } }

    // MARK: DatagramSocket.withConnection

    @Test func datagramClosedAfterReturn() async throws { try await withDescriptorCheck {
        let peer = try DatagramSocket.bind(host: "127.0.0.1", port: 0)
        let peerAddress = try await peer.localAddress
        let (socket, local) = try await DatagramSocket.withConnection(to: peerAddress) { socket in
            try await socket.send(Array("ping".utf8))
            return (socket, try socket.localAddress)
        }
        #expect(await socket.isClosed)
        let datagram = try await peer.receive()
        #expect(datagram.bytes == Array("ping".utf8))
        #expect(datagram.sender == local)
        #expect(portIsFree(local))
        await peer.close()
    } }

    @Test func datagramClosedAfterThrow() async throws { try await withDescriptorCheck {
        let peer = try DatagramSocket.bind(host: "127.0.0.1", port: 0)
        let peerAddress = try await peer.localAddress
        var captured: (DatagramSocket, SocketAddress)?
        await #expect(throws: BodyError(id: 5)) {
            try await DatagramSocket.withConnection(to: peerAddress) { socket in
                captured = (socket, try socket.localAddress)
                throw BodyError(id: 5)
            }
        }
        let (socket, local) = try #require(captured)
        #expect(await socket.isClosed)
        #expect(portIsFree(local))
        await peer.close()
    } }

    @Test func datagramClosedAfterCancellation() async throws { try await withDescriptorCheck {
        let peer = try DatagramSocket.bind(host: "127.0.0.1", port: 0)
        let peerAddress = try await peer.localAddress
        let captured = Mutex<DatagramSocket?>(nil)
        let task = Task {
            try await DatagramSocket.withConnection(to: peerAddress) { socket in
                captured.withLock { $0 = socket }
                _ = try await socket.receive()              // the peer never sends
                Issue.record("the receive returned")
            }
        }
        try await CoreFixtures.waitUntil("the body waits in its receive") {
            guard let socket = captured.withLock({ $0 }) else { return false }
            return await socket.coreTestWaitState().reading
        }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await CoreFixtures.value(of: task, within: .seconds(20)) }
        #expect(try await #require(captured.withLock { $0 }).isClosed)
        await peer.close()
    } }

    @Test func datagramBodyRunsOnTheLoopAndExchanges() async throws { try await withDescriptorCheck {
        let peer = try DatagramSocket.bind(host: "127.0.0.1", port: 0)
        let peerAddress = try await peer.localAddress
        let echo = Task {
            let datagram = try await peer.receive()
            try await peer.send(datagram.bytes, to: try #require(datagram.sender))
        }
        let checks = try await DatagramSocket.withConnection(to: peerAddress, timeout: .seconds(20)) { socket in
            var checks: [String: Bool] = [:]
            checks["in loop"] = socket.eventLoop.inLoop
            checks["prefers loop"] = socket.eventLoop.currentTaskPrefersLoop
            socket.preconditionIsolated()
            checks["timeout set"] = socket.timeout == .seconds(20)
            try await socket.send(Array("echo me".utf8))
            checks["echoed"] = try await socket.receive().bytes == Array("echo me".utf8)
            checks["in loop after a wait"] = socket.eventLoop.inLoop
            checks["prefers loop after a wait"] = socket.eventLoop.currentTaskPrefersLoop
            return checks
        }
        for (name, value) in checks.sorted(by: { $0.key < $1.key }) { #expect(value, "\(name)") }
        #expect(checks.count == 6)
        #expect(!EventLoopGroup.shared.loops.contains { $0.currentTaskPrefersLoop })
        try await echo.value
        await peer.close()
    } }

    /// The endpoint form tries the resolver's addresses in order: one that refuses the connect (a unix path
    /// nobody is bound to) is skipped; when every address refuses, the first address's error comes out as the
    /// single-address form throws it, and the body never runs.
    @Test func datagramEndpointFormFallsBackAndKeepsTheFirstError() async throws { try await withDescriptorCheck {
        let peer = try DatagramSocket.bind(host: "127.0.0.1", port: 0)
        let peerAddress = try await peer.localAddress
        let nobody = try SocketAddress(unixPath: "/tmp/asyncsockets-scoped-nobody-\(getpid())")
        let fallback = FixedResolver([nobody, peerAddress])
        let peerOfScope = try await DatagramSocket.withConnection(to: Endpoint(host: "peer.test", port: 1),
                                                                  resolver: fallback) { socket in
            try socket.remoteAddress
        }
        #expect(peerOfScope == peerAddress)
        let direct = await F.error { try await DatagramSocket.withConnection(to: nobody) { _ in } }
        let ran = Mutex(false)
        let allFail = await F.error {
            try await DatagramSocket.withConnection(to: Endpoint(host: "peer.test", port: 1),
                                                    resolver: FixedResolver([nobody, nobody])) { _ in
                ran.withLock { $0 = true }
            }
        }
        let expected = try #require(direct as? SocketError, "\(String(describing: direct))")
        let scoped = try #require(allFail as? SocketError, "\(String(describing: allFail))")
        #expect(scoped == expected)
        #expect(scoped.operation == "connect")
        #expect(!ran.withLock { $0 })
        await peer.close()
    } }

    // MARK: DatagramSocket.withBound

    @Test func boundClosedAfterReturnAndThrow() async throws { try await withDescriptorCheck {
        let (socket, local, received) = try await DatagramSocket.withBound(host: "127.0.0.1", port: 0) { socket in
            let local = try socket.localAddress
            let sender = try DatagramSocket.unbound()
            try await sender.send(Array("to the bound one".utf8), to: local)
            await sender.close()
            return (socket, local, try await socket.receive().bytes)
        }
        #expect(received == Array("to the bound one".utf8))
        #expect(await socket.isClosed)
        #expect(portIsFree(local))

        var captured: (DatagramSocket, SocketAddress)?
        await #expect(throws: BodyError(id: 9)) {
            try await DatagramSocket.withBound(host: "127.0.0.1", port: 0) { socket in
                captured = (socket, try socket.localAddress)
                throw BodyError(id: 9)
            }
        }
        let (thrown, thrownLocal) = try #require(captured)
        #expect(await thrown.isClosed)
        #expect(portIsFree(thrownLocal))
    } }

    /// The unix-path form: the body receives on the bound file; afterwards the socket is closed and the file
    /// gone, whether the body returned or threw; a path that exists already fails as the plain bind does.
    @Test func boundToAUnixPath() async throws { try await withDescriptorCheck {
        let path = "/tmp/as-scoped-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let (socket, received) = try await DatagramSocket.withBound(unixPath: path) { socket in
            let sender = try DatagramSocket.unbound(family: .unix)
            try await sender.send(Array("to the file".utf8), to: try SocketAddress(unixPath: path))
            await sender.close()
            return (socket, try await socket.receive().bytes)
        }
        #expect(received == Array("to the file".utf8))
        #expect(await socket.isClosed)
        #expect(access(path, F_OK) != 0, "the socket file is removed")

        await #expect(throws: BodyError(id: 10)) {
            try await DatagramSocket.withBound(unixPath: path) { _ in throw BodyError(id: 10) }
        }
        #expect(access(path, F_OK) != 0, "the socket file is removed after a throw")

        let blocker = try DatagramSocket.bind(unixPath: path)
        let direct = await F.error { _ = try DatagramSocket.bind(unixPath: path) }
        let ran = Mutex(false)
        let scoped = await F.error { try await DatagramSocket.withBound(unixPath: path) { _ in ran.withLock { $0 = true } } }
        let expected = try #require(direct as? SocketError)
        #expect((scoped as? SocketError) == expected)
        #expect(expected.code == EADDRINUSE)
        #expect(!ran.withLock { $0 })
        await blocker.close()
    } }

    /// A bind error (the port is taken) is the plain bind's, and the body never runs.
    @Test func boundErrorIsUnchanged() async throws { try await withDescriptorCheck {
        let taken = try DatagramSocket.bind(host: "127.0.0.1", port: 0)
        let port = try await taken.localAddress.port ?? 0
        let direct = await F.error { _ = try DatagramSocket.bind(host: "127.0.0.1", port: port) }
        let ran = Mutex(false)
        let scoped = await F.error {
            try await DatagramSocket.withBound(host: "127.0.0.1", port: port) { _ in ran.withLock { $0 = true } }
        }
        let expected = try #require(direct as? SocketError, "\(String(describing: direct))")
        let error = try #require(scoped as? SocketError, "\(String(describing: scoped))")
        #expect(error.code == EADDRINUSE)
        #expect(error == expected)
        #expect(!ran.withLock { $0 })
        await taken.close()
    } }
}
