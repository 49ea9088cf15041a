#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import Testing
@_spi(Statistics) @testable import AsyncSockets

// `AsyncSocket.withConnection`: scoped connections on the fast path. The socket must be closed on every way
// out of the body (return, throw, cancellation), the body must run on the socket's loop thread with the loop
// as its task's preferred executor, and connect errors must come out unchanged. "Closed" is checked twice:
// the socket says so (`isClosed`, `descriptor == -1`) and the peer reads end of stream, which only happens
// once the kernel's descriptor is really gone. (Checking the descriptor number with fcntl would race with
// other suites that open descriptors in parallel and may get the same number.) Descriptor counts: the suite
// is serialized and every test runs under `withDescriptorCheck`.

/// An error only the test's body throws, to check it comes out unchanged.
private struct BodyError: Error, Equatable {
    let id: Int
}

/// A `serve` handler that echoes with one reused buffer until the end of the stream.
@Sendable private func echoReusingBuffer(_ client: isolated AsyncSocket) async throws {
    var buffer: [UInt8] = []
    while try await client.read(into: &buffer, upTo: 4096) > 0 {
        try await client.write(buffer)
        buffer.removeAll(keepingCapacity: true)
    }
}

/// A reference type that is not `Sendable`: `withConnection` must be able to return one.
private final class NotSendable {
    var bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }
}

/// Resolves to fixed addresses and records whether it was asked on the event loop thread with the loop as the
/// task's preferred executor (where `withConnection` runs the connect).
private struct WhereResolver: AddressResolver {
    let addresses: [SocketAddress]
    let asked = Mutex<[Bool]>([])

    func resolve(_ endpoint: Endpoint) async throws -> [SocketAddress] {
        let onLoop = EventLoopGroup.shared.loops.contains { $0.inLoop && $0.currentTaskPrefersLoop }
        asked.withLock { $0.append(onLoop) }
        return addresses
    }
}

/// A loopback server and the accepted peer of one connection to it, for checking what the client side did.
private struct Peer {
    let server: AsyncServer

    init() throws { server = try AsyncServer(host: "127.0.0.1", port: 0) }

    var address: SocketAddress { server.localAddress }
    var endpoint: Endpoint { Endpoint(host: "127.0.0.1", port: server.localAddress.port ?? 0) }

    /// Accepts the (already connected) client and reads until end of stream: what the client sent before it
    /// closed. Throws if the stream does not end within the bound (the client's descriptor is still open).
    func acceptAndReadToEnd() async throws -> [UInt8] {
        let server = self.server
        return try await CoreFixtures.within(.seconds(20), "the peer's read to end of stream") {
            guard let peer = try await server.accept() else { throw CoreFixtures.Failure("accept returned nil") }
            var received: [UInt8] = []
            while try await peer.read(into: &received, upTo: 4096) > 0 {}
            await peer.close()
            return received
        }
    }

    func close() { server.close() }
}

@Suite(.serialized) struct WithConnectionTests {
    init() { GroupFixtures.warmUp() }

    // MARK: The socket is closed on every way out

    /// A normal return: the result comes back, the socket is closed, the peer sees end of stream.
    @Test func closedAfterReturn() async throws { try await withDescriptorCheck {
        let peer = try Peer()
        defer { peer.close() }
        let (socket, value) = try await AsyncSocket.withConnection(to: peer.endpoint) { socket in
            try await socket.write("hello")
            return (socket, 42)
        }
        #expect(value == 42)
        #expect(await socket.isClosed)
        #expect(await socket.descriptor == -1)
        #expect(try await peer.acceptAndReadToEnd() == Array("hello".utf8))
    } }

    /// The single-address form closes too.
    @Test func closedAfterReturnSingleAddress() async throws { try await withDescriptorCheck {
        let peer = try Peer()
        defer { peer.close() }
        let socket = try await AsyncSocket.withConnection(to: peer.address, timeout: .seconds(10)) { socket in
            try await socket.write("one address")
            return socket
        }
        #expect(await socket.isClosed)
        #expect(try await peer.acceptAndReadToEnd() == Array("one address".utf8))
    } }

    /// An error thrown by the body comes out unchanged, after the socket is closed.
    @Test func closedAfterThrow() async throws { try await withDescriptorCheck {
        let peer = try Peer()
        defer { peer.close() }
        var captured: AsyncSocket?
        await #expect(throws: BodyError(id: 7)) {
            try await AsyncSocket.withConnection(to: peer.endpoint) { socket in
                captured = socket
                try await socket.write("before the throw")
                throw BodyError(id: 7)
            }
        }
        let socket = try #require(captured)
        #expect(await socket.isClosed)
        #expect(try await peer.acceptAndReadToEnd() == Array("before the throw".utf8))
    } }

    /// A `SocketError` thrown inside the body (here: writing after a shutdown) is rethrown as it is, after the
    /// socket is closed.
    @Test func socketErrorFromTheBodyIsUnchanged() async throws { try await withDescriptorCheck {
        let peer = try Peer()
        defer { peer.close() }
        var captured: AsyncSocket?
        do {
            try await AsyncSocket.withConnection(to: peer.address) { socket in
                captured = socket
                try socket.shutdown(.write)
                try await socket.write("too late")
            }
            Issue.record("the write after shutdown(.write) did not throw")
        } catch let error as SocketError {
            #expect(error.code == EPIPE, "\(error)")
            #expect(error.operation == "write")
            #expect(error.address == peer.address)
        }
        let socket = try #require(captured)
        #expect(await socket.isClosed)
        #expect(try await peer.acceptAndReadToEnd() == [])
    } }

    /// Cancelling the task while the body waits in a read: the read throws `CancellationError`, which comes
    /// out of `withConnection`, and the socket is closed.
    @Test func closedAfterCancellation() async throws { try await withDescriptorCheck {
        let peer = try Peer()
        defer { peer.close() }
        let captured = Mutex<AsyncSocket?>(nil)
        let task = Task {
            try await AsyncSocket.withConnection(to: peer.endpoint) { socket in
                captured.withLock { $0 = socket }
                try await socket.write("waiting")
                _ = try await socket.read(upTo: 100)        // the peer never writes
                Issue.record("the read returned")
            }
        }
        try await CoreFixtures.waitUntil("the body waits in its read") {
            guard let socket = captured.withLock({ $0 }) else { return false }
            return await socket.coreTestWaitState().reading
        }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await CoreFixtures.value(of: task, within: .seconds(20)) }
        let socket = try #require(captured.withLock { $0 })
        #expect(await socket.isClosed)
        #expect(try await peer.acceptAndReadToEnd() == Array("waiting".utf8))
    } }

    /// A body that catches the cancellation and returns normally still gets its socket closed.
    @Test func closedWhenTheBodySwallowsCancellation() async throws { try await withDescriptorCheck {
        let peer = try Peer()
        defer { peer.close() }
        let task = Task {
            try await AsyncSocket.withConnection(to: peer.address) { socket in
                withUnsafeCurrentTask { $0?.cancel() }
                do {
                    _ = try await socket.read(upTo: 100)
                    return (socket, "read returned")
                } catch is CancellationError {
                    return (socket, "cancelled")
                }
            }
        }
        let (socket, outcome) = try await CoreFixtures.value(of: task, within: .seconds(20))
        #expect(outcome == "cancelled")
        #expect(await socket.isClosed)
        #expect(try await peer.acceptAndReadToEnd() == [])
    } }

    /// Cancelled while connecting (the address swallows SYNs): `CancellationError`, the body never runs,
    /// nothing leaks.
    @Test func cancelledDuringConnect() async throws { try await withDescriptorCheck {
        let hole = try BlackholeListener()
        defer { hole.close() }
        let ran = Mutex(false)
        let resolver = FixedResolver([hole.address])
        let task = Task {
            try await AsyncSocket.withConnection(to: Endpoint(host: "127.0.0.2", port: hole.address.port ?? 0),
                                                 resolver: resolver) { _ in
                ran.withLock { $0 = true }
            }
        }
        // Once the address is resolved, the connect attempt to the black hole is (about to be) waiting.
        try await CoreFixtures.waitUntil("the resolver was asked") { !resolver.calls.all.isEmpty }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await CoreFixtures.value(of: task, within: .seconds(20)) }
        #expect(!ran.withLock { $0 })
    } }

    // MARK: The body runs on the loop

    /// Inside the body: on the socket's loop thread, with the loop as the task's preferred executor, before
    /// and after a wait, and in child tasks; after `withConnection` the caller's task no longer prefers it.
    @Test func bodyRunsOnTheLoop() async throws { try await withDescriptorCheck {
        let peer = try Peer()
        defer { peer.close() }
        #expect(!EventLoopGroup.shared.loops.contains { $0.currentTaskPrefersLoop })
        let observed = try await alongside { try await AsyncSocket.withConnection(to: peer.endpoint) { socket in
            var checks: [String: Bool] = [:]
            checks["in loop"] = socket.eventLoop.inLoop
            checks["prefers loop"] = socket.eventLoop.currentTaskPrefersLoop
            socket.preconditionIsolated()      // traps unless isolated to the socket
            // A real wait: the peer echoes once it is accepted (below, concurrently).
            try await socket.write("ping")
            _ = try await socket.read(exactly: 4)
            checks["in loop after a wait"] = socket.eventLoop.inLoop
            checks["prefers loop after a wait"] = socket.eventLoop.currentTaskPrefersLoop
            async let child = (socket.eventLoop.inLoop, socket.eventLoop.currentTaskPrefersLoop)
            let (childInLoop, childPrefers) = await child
            checks["child in loop"] = childInLoop
            checks["child prefers loop"] = childPrefers
            return checks
        } } concurrently: {
            let server = peer.server
            guard let accepted = try await server.accept() else { throw CoreFixtures.Failure("accept returned nil") }
            try await accepted.write(try await accepted.read(exactly: 4))
            await accepted.close()
        }
        for (name, value) in observed.sorted(by: { $0.key < $1.key }) { #expect(value, "\(name)") }
        #expect(observed.count == 6)
        #expect(!EventLoopGroup.shared.loops.contains { $0.currentTaskPrefersLoop }, "the preference ends with withConnection")
    } }

    /// Heavy work handed off as the documentation shows (`Task.detached`) runs off the loop thread; the body
    /// resumes on the loop afterwards.
    @Test func detachedWorkRunsOffTheLoop() async throws { try await withDescriptorCheck {
        let peer = try Peer()
        defer { peer.close() }
        let (detachedOnLoop, poolOnLoop, bodyOnLoop) = try await AsyncSocket.withConnection(to: peer.address) { socket in
            let request = Array("some bytes".utf8)
            let detachedOnLoop = await Task.detached { request.isEmpty || EventLoopGroup.shared.loops.contains { $0.inLoop } }.value
            // The EchoClient example's way: a nonisolated async function under the global executor's preference.
            let poolOnLoop = await withTaskExecutorPreference(globalConcurrentExecutor) { await runsOnLoop() }
            return (detachedOnLoop, poolOnLoop, socket.eventLoop.inLoop && socket.eventLoop.currentTaskPrefersLoop)
        }
        #expect(!detachedOnLoop)
        #expect(!poolOnLoop)
        #expect(bodyOnLoop)
        #expect(try await peer.acceptAndReadToEnd() == [])
    } }

    /// The connect itself runs on the loop too (the resolver is called there; `connect` alone calls it from
    /// the caller's executor).
    @Test func connectRunsOnTheLoop() async throws { try await withDescriptorCheck {
        let peer = try Peer()
        defer { peer.close() }
        let resolver = WhereResolver(addresses: [peer.address])
        try await AsyncSocket.withConnection(to: peer.endpoint, resolver: resolver) { _ in }
        let plain = try await AsyncSocket.connect(to: peer.endpoint, resolver: resolver)
        await plain.close()
        #expect(resolver.asked.withLock { $0 } == [true, false])
        #expect(try await peer.acceptAndReadToEnd() == [])
        #expect(try await peer.acceptAndReadToEnd() == [])
    } }

    /// From a main-actor caller: the body still runs on the loop, the result comes back on the main actor.
    @Test func bodyRunsOnTheLoopFromTheMainActor() async throws { try await withDescriptorCheck {
        try await connectFromTheMainActor()
    } }

    /// The connect parameters reach the socket: `timeout` becomes its timeout.
    @Test func timeoutBecomesTheSocketsTimeout() async throws { try await withDescriptorCheck {
        let peer = try Peer()
        defer { peer.close() }
        let timeouts = try await AsyncSocket.withConnection(to: peer.endpoint, timeout: .seconds(7)) { socket in
            let first = socket.timeout
            socket.timeout = nil
            return [first, socket.timeout]
        }
        #expect(timeouts == [.seconds(7), nil])
        #expect(try await peer.acceptAndReadToEnd() == [])
    } }

    /// The observer overload reports the race, then runs the body and closes the socket like the others.
    @Test func observerSeesTheRace() async throws { try await withDescriptorCheck {
        let peer = try Peer()
        defer { peer.close() }
        let refused = try RefusingPort(host: "::1")
        defer { refused.close() }
        let recorder = RaceRecorder()
        let socket = try await AsyncSocket.withConnection(to: Endpoint(host: "race.test", port: 1),
                                                          happyEyeballsDelay: .seconds(5),
                                                          resolver: FixedResolver([refused.address, peer.address]),
                                                          observer: recorder.observer) { socket in
            #expect(socket.eventLoop.inLoop)
            return socket
        }
        #expect(await socket.isClosed)
        #expect(recorder.startedAddresses == [refused.address, peer.address])
        #expect(try await peer.acceptAndReadToEnd() == [])
    } }

    /// The point of it all: a ping-pong round trip from a `withConnection` body costs the loop one job on the
    /// client side (the resumption after the read's wait) and one on the server side: no executor switch per
    /// call. The same exchange inside `EventLoop.run` costs four (measured while writing this test). Jobs of
    /// other tests can only add to the count, so the best of three tries is taken.
    @Test func oneLoopJobPerRoundTrip() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let address = server.localAddress
        async let served: Void = server.serve(handler: echoReusingBuffer)
        let rounds = 200
        var best = Double.infinity
        for _ in 0..<3 {
            let jobs = try await AsyncSocket.withConnection(to: address, timeout: .seconds(20)) { socket in
                let message = [UInt8](repeating: 7, count: 64)
                var buffer: [UInt8] = []
                buffer.reserveCapacity(64)
                try await socket.write(message)            // warm-up: the server's handler starts
                _ = try await socket.read(into: &buffer, upTo: 64)
                while buffer.count < 64 { _ = try await socket.read(into: &buffer, upTo: 64 - buffer.count) }
                let before = socket.eventLoop.statistics.jobs
                for _ in 0..<rounds {
                    try await socket.write(message)
                    buffer.removeAll(keepingCapacity: true)
                    while buffer.count < 64 { _ = try await socket.read(into: &buffer, upTo: 64 - buffer.count) }
                }
                return socket.eventLoop.statistics.jobs - before
            }
            best = min(best, Double(jobs) / Double(rounds))
        }
        server.close()
        try await served
        #expect(best <= 2.5, "loop jobs per round trip (client and server): \(best)")
    } }

    /// `rounds` round trips of 64 bytes from a `withConnection` body to an echo server, client and server on the
    /// one loop of ``GroupFixtures/one``: the answer can only come after the loop polled (on two loops it may
    /// come from the other core before the read, and what the tests below count depends on timing). Returns
    /// how much `counter` of the client's socket grew meanwhile.
    private static func roundTripsOnOneLoop(_ rounds: Int,
                                            counting counter: @escaping @Sendable (isolated AsyncSocket) -> Int)
        async throws -> Int {
        let server = try AsyncServer(host: "127.0.0.1", port: 0, group: GroupFixtures.one)
        let address = server.localAddress
        async let served: Void = server.serve(handler: echoReusingBuffer)
        let grown = try await GroupFixtures.one.loops[0].run {
            try await AsyncSocket.withConnection(to: address, timeout: .seconds(20)) { socket in
                #expect(socket.eventLoop === GroupFixtures.one.loops[0])
                let message = [UInt8](repeating: 5, count: 64)
                var buffer: [UInt8] = []
                buffer.reserveCapacity(64)
                let before = counter(socket)
                for _ in 0..<rounds {
                    try await socket.write(message)
                    buffer.removeAll(keepingCapacity: true)
                    while buffer.count < 64 { _ = try await socket.read(into: &buffer, upTo: 64 - buffer.count) }
                    #expect(buffer == message)
                }
                return counter(socket) - before
            }
        }
        server.close()
        try await served
        return grown
    }

    /// A body that reads the answer right after writing its request, with nothing else queued on the loop,
    /// soon stops calling `recv` first when the answer is never there yet (here it cannot be: the server runs
    /// on the same loop, after the client waits): the read waits for readiness at once, but for a probe now
    /// and then (`ReadAfterWritePrediction`). Before, every round trip paid for a `recv` that found nothing.
    @Test func readAfterWriteWaitsWithoutAnEmptyReceive() async throws { try await withDescriptorCheck {
        let rounds = 200
        let empty = try await Self.roundTripsOnOneLoop(rounds) { $0.emptyReceives }
        // About 8 probes in 200 reads (a read that came behind other queued jobs also tries `recv` first);
        // `rounds` without the prediction.
        #expect(empty <= rounds / 10, "\(empty) empty receives in \(rounds) round trips")
    } }

    /// The other side of the same prediction: when the answer is already there as the read comes (here the
    /// server sent every answer before the first request), the read right after the write takes it with one
    /// `recv` and never waits for readiness. The loop then polls only for the fairness hand-backs (every 16
    /// calls of each direction); without the prediction every read waited for a poll.
    @Test func readAfterWriteTakesAnAnswerAlreadyThere() async throws { try await withDescriptorCheck {
        let rounds = 200
        let server = try AsyncServer(host: "127.0.0.1", port: 0, group: GroupFixtures.two)
        let address = server.localAddress
        let (sent, sentSignal) = AsyncStream<Void>.makeStream()
        async let served: Void = server.serve { client in
            // On loopback the bytes are in the client's receive queue once `send` has returned.
            try await client.write([UInt8](repeating: 9, count: 64 * (rounds + 1)))
            sentSignal.yield()
            var sink: [UInt8] = []
            while try await client.read(into: &sink, upTo: 65536) > 0 { sink.removeAll(keepingCapacity: true) }
        }
        let loop = GroupFixtures.quiet.loops[0]
        let (polls, empty) = try await loop.run {
            try await AsyncSocket.withConnection(to: address, timeout: .seconds(20)) { socket in
                #expect(socket.eventLoop === loop)
                for await _ in sent { break }
                #expect(try await socket.read(exactly: 64) == [UInt8](repeating: 9, count: 64))
                let message = [UInt8](repeating: 5, count: 64)
                var buffer: [UInt8] = []
                buffer.reserveCapacity(64)
                let polls = loop.statistics.polls, empty = socket.emptyReceives
                for _ in 0..<rounds {
                    try await socket.write(message)
                    buffer.removeAll(keepingCapacity: true)
                    while buffer.count < 64 { _ = try await socket.read(into: &buffer, upTo: 64 - buffer.count) }
                    #expect(buffer == [UInt8](repeating: 9, count: 64))
                }
                return (loop.statistics.polls - polls, socket.emptyReceives - empty)
            }
        }
        server.close()
        try await served
        // About 25 (200 / 16 per direction); at least `rounds` when every read waits.
        #expect(polls <= rounds / 4, "\(polls) polls in \(rounds) round trips")
        #expect(empty == 0, "\(empty) empty receives")
    } }

    /// Request and response with messages of known size: every read takes exactly what it asked for and every
    /// write fits, so no call ever comes back short or would block. The task waits for the peer between calls
    /// and the loop polls meanwhile, so no fairness turn is ever spent: no hand-back (a zero-length timer and an
    /// extra poll). Before the fix each direction handed the loop back every 16 round trips. (With the server
    /// on another core the answer may be there before each read: then no poll comes between the calls, and
    /// handing the loop back is right.)
    @Test func requestAndResponseNeverHandTheLoopBack() async throws { try await withDescriptorCheck {
        let rounds = 200
        let handBacks = try await Self.roundTripsOnOneLoop(rounds) { $0.handBacks }
        #expect(handBacks == 0, "\(handBacks) hand-backs in \(rounds) round trips")
    } }

    // MARK: Connect errors come out unchanged

    /// A refused connect throws the same `SocketError` as `connect` (one address and Happy Eyeballs forms);
    /// the body never runs.
    @Test func refusedConnectIsUnchanged() async throws { try await withDescriptorCheck {
        let refused = try RefusingPort()
        defer { refused.close() }
        let ran = Mutex(false)
        for form in ["address", "endpoint"] {
            do {
                if form == "address" {
                    try await AsyncSocket.withConnection(to: refused.address) { _ in ran.withLock { $0 = true } }
                } else {
                    try await AsyncSocket.withConnection(to: Endpoint(host: "127.0.0.1", port: refused.address.port ?? 0)) { _ in
                        ran.withLock { $0 = true }
                    }
                }
                Issue.record("\(form): the connect did not fail")
            } catch let error as SocketError {
                #expect(error.code == ECONNREFUSED, "\(form): \(error)")
                #expect(error.operation == "connect")
                #expect(error.address == refused.address)
                #expect(error.description == "connect to \(refused.address) failed: Connection refused (ECONNREFUSED)")
            }
        }
        #expect(!ran.withLock { $0 })
    } }

    /// With `allErrors`, the `ConnectErrorGroup` of every attempt, in attempt order.
    @Test func allErrorsGroupIsUnchanged() async throws { try await withDescriptorCheck {
        let a = try RefusingPort(), b = try RefusingPort(host: "::1")
        defer { a.close(); b.close() }
        let endpoint = Endpoint(host: "group.test", port: 1)
        do {
            try await AsyncSocket.withConnection(to: endpoint, allErrors: true, happyEyeballsDelay: .seconds(5),
                                                 resolver: FixedResolver([a.address, b.address])) { _ in
                Issue.record("the body ran")
                return
            }
            Issue.record("the connect did not fail")
        } catch let group as ConnectErrorGroup {
            #expect(group.endpoint == endpoint)
            let errors = group.errors.compactMap { $0 as? SocketError }
            #expect(errors.map(\.address) == [a.address, b.address])
            #expect(errors.allSatisfy { $0.code == ECONNREFUSED && $0.operation == "connect" })
        }
    } }

    /// The resolver's own error comes out as it is.
    @Test func resolverErrorIsUnchanged() async throws { try await withDescriptorCheck {
        let resolver = FixedResolver(failingWith: BodyError(id: 3))
        await #expect(throws: BodyError(id: 3)) {
            try await AsyncSocket.withConnection(to: Endpoint(host: "nowhere.test", port: 1), resolver: resolver) { _ in }
        }
    } }

    // MARK: Many in a row

    /// Many scoped connections, sequential and concurrent, leave no descriptor behind.
    @Test func manyConnectionsLeakNothing() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let address = server.localAddress
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await server.serve { client in
                    var buffer: [UInt8] = []
                    while try await client.read(into: &buffer, upTo: 4096) > 0 {
                        try await client.write(buffer)
                        buffer.removeAll(keepingCapacity: true)
                    }
                }
            }
            try await withThrowingTaskGroup(of: Void.self) { clients in
                for index in 0..<32 {
                    clients.addTask {
                        let message = Array("client \(index)".utf8)
                        let echoed = try await AsyncSocket.withConnection(to: address, timeout: .seconds(20)) { socket in
                            try await socket.write(message)
                            return try await socket.read(exactly: message.count)
                        }
                        #expect(echoed == message)
                    }
                }
                try await clients.waitForAll()
            }
            server.close()
            try await group.waitForAll()
        }
    } }
}

/// Whether this nonisolated async function runs on the event loop's thread.
private func runsOnLoop() async -> Bool { EventLoopGroup.shared.loops.contains { $0.inLoop } }

/// The main-actor half of `bodyRunsOnTheLoopFromTheMainActor`.
@MainActor private func connectFromTheMainActor() async throws {
    let peer = try Peer()
    defer { peer.close() }
    let result = try await AsyncSocket.withConnection(to: peer.address) { socket in
        NotSendable([socket.eventLoop.inLoop ? 1 : 0, socket.eventLoop.currentTaskPrefersLoop ? 1 : 0])
    }
    MainActor.preconditionIsolated()
    #expect(result.bytes == [1, 1])
    #expect(try await peer.acceptAndReadToEnd() == [])
}

/// Runs `body` and `other` concurrently (`other` in a child task); returns `body`'s result after both finish.
private func alongside<T: Sendable>(_ body: () async throws -> T,
                                             concurrently other: @escaping @Sendable () async throws -> Void) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await other() }
        let result = try await body()
        try await group.waitForAll()
        return result
    }
}
