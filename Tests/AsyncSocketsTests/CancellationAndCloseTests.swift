#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
@testable import AsyncSockets

/// Cancelling a waiting call, closing a socket under a waiting call, and using a closed socket.
@Suite("Cancellation and close") struct CancellationAndCloseTests {
    typealias Transport = CoreFixtures.Transport

    /// How long "promptly" may take on a loaded 2-core machine (the operations themselves take microseconds).
    static let prompt: Duration = .seconds(2)

    /// Cancels `task` and returns its error and how long it took to come back.
    static func cancel<T: Sendable>(_ task: Task<T, any Error>) async -> (error: (any Error)?, elapsed: Duration) {
        let start = ContinuousClock.now
        task.cancel()
        do {
            _ = try await CoreFixtures.value(of: task)
            return (nil, ContinuousClock.now - start)
        } catch {
            return (error, ContinuousClock.now - start)
        }
    }

    // MARK: Cancellation

    @Test("cancelling a read returns CancellationError at once; the socket stays usable", arguments: Transport.allCases)
    func cancelRead(_ transport: Transport) async throws { try await withDescriptorCheck {
        let (a, b) = try await transport.open()
        let reader = Task { try await b.read(upTo: 100) }
        try await CoreFixtures.waitUntil("the read waits") { await b.coreTestWaitState().reading }
        let (error, elapsed) = await Self.cancel(reader)
        #expect(error is CancellationError, "\(String(describing: error))")
        #expect(elapsed < Self.prompt)
        #expect(await b.coreTestWaitState() == .init(reading: false, writing: false, queuedReaders: 0, queuedWriters: 0))

        try await a.write("still here")
        #expect(try await b.read(exactly: 10) == Array("still here".utf8))
        await a.close()
        await b.close()
    } }

    @Test("cancelling a write blocked on a full buffer returns at once; the socket stays usable",
          arguments: Transport.allCases)
    func cancelWrite(_ transport: Transport) async throws { try await withDescriptorCheck {
        let (a, b) = try await transport.open()
        _ = await CoreFixtures.fillSendBuffer(a)
        let writer = Task { try await a.write([UInt8](repeating: 0xAB, count: 1 << 20)) }
        try await CoreFixtures.waitUntil("the write waits") { await a.coreTestWaitState().writing }
        let (error, elapsed) = await Self.cancel(writer)
        #expect(error is CancellationError, "\(String(describing: error))")
        #expect(elapsed < Self.prompt)
        #expect(await a.coreTestWaitState().writing == false)

        // A prefix of the cancelled write may have gone out; the stream goes on after it.
        async let drained = CoreFixtures.readUntil(Array("END".utf8), from: b)
        try await a.write("END")
        let bytes = try await drained
        #expect(bytes.dropLast(3).allSatisfy { $0 == 0xAB })
        try await b.write("back")
        #expect(try await a.read(exactly: 4) == Array("back".utf8))
        await a.close()
        await b.close()
    } }

    @Test("cancelling a read queued behind another read leaves the first one waiting")
    func cancelQueuedRead() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        let first = Task { try await b.read(exactly: 3) }
        try await CoreFixtures.waitUntil("the first read waits") { await b.coreTestWaitState().reading }
        let second = Task { try await b.read(exactly: 3) }
        try await CoreFixtures.waitUntil("the second read is queued") { await b.coreTestWaitState().queuedReaders == 1 }

        let (error, elapsed) = await Self.cancel(second)
        #expect(error is CancellationError, "\(String(describing: error))")
        #expect(elapsed < Self.prompt)
        let state = await b.coreTestWaitState()
        #expect(state.reading && state.queuedReaders == 0)

        try await a.write([1, 2, 3, 4, 5, 6])
        #expect(try await CoreFixtures.value(of: first) == [1, 2, 3])
        #expect(try await b.read(exactly: 3) == [4, 5, 6], "the lock was released after the cancelled read")
        await a.close()
        await b.close()
    } }

    @Test("cancelling a write queued behind a blocked write leaves the first one going")
    func cancelQueuedWrite() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        _ = await CoreFixtures.fillSendBuffer(a)
        let first = Task { try await a.write([UInt8](repeating: 0xAB, count: 1000) + Array("END".utf8)) }
        try await CoreFixtures.waitUntil("the first write waits") { await a.coreTestWaitState().writing }
        let second = Task { try await a.write([0xFF]) }
        try await CoreFixtures.waitUntil("the second write is queued") { await a.coreTestWaitState().queuedWriters == 1 }

        let (error, elapsed) = await Self.cancel(second)
        #expect(error is CancellationError, "\(String(describing: error))")
        #expect(elapsed < Self.prompt)

        let bytes = try await CoreFixtures.readUntil(Array("END".utf8), from: b)
        try await CoreFixtures.value(of: first)
        #expect(!bytes.contains(0xFF), "the cancelled write sent nothing")
        try await a.write("more")
        #expect(try await b.read(exactly: 4) == Array("more".utf8))
        await a.close()
        await b.close()
    } }

    @Test("a task cancelled before it calls read gets CancellationError instead of waiting")
    func alreadyCancelled() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await b.read(upTo: 10)
        }
        await #expect(throws: CancellationError.self) { try await CoreFixtures.value(of: task) }
        await a.close()
        await b.close()
    } }

    // MARK: close() under a waiting call

    @Test("close() while another task waits in read makes the read throw EBADF promptly",
          arguments: Transport.allCases)
    func closeWhileReading(_ transport: Transport) async throws { try await withDescriptorCheck {
        let (a, b) = try await transport.open()
        let reader = Task { try await b.read(upTo: 100) }
        let queued = Task { try await b.read(exactly: 1) }
        try await CoreFixtures.waitUntil("one read waits, one is queued") {
            let state = await b.coreTestWaitState()
            return state.reading && state.queuedReaders == 1
        }
        let start = ContinuousClock.now
        await b.close()
        for task in [reader, queued] {
            let error = await #expect(throws: SocketError.self) { _ = try await CoreFixtures.value(of: task) }
            #expect(error?.code == EBADF)
            #expect(error?.operation == "read")
        }
        #expect(ContinuousClock.now - start < Self.prompt)
        await a.close()
    } }

    @Test("close() while another task waits in write makes the write throw EBADF promptly",
          arguments: Transport.allCases)
    func closeWhileWriting(_ transport: Transport) async throws { try await withDescriptorCheck {
        let (a, b) = try await transport.open()
        _ = await CoreFixtures.fillSendBuffer(a)
        let writer = Task { try await a.write([UInt8](repeating: 1, count: 1 << 20)) }
        let queued = Task { try await a.write([2]) }
        try await CoreFixtures.waitUntil("one write waits, one is queued") {
            let state = await a.coreTestWaitState()
            return state.writing && state.queuedWriters == 1
        }
        let start = ContinuousClock.now
        await a.close()
        for task in [writer, queued] {
            let error = await #expect(throws: SocketError.self) { try await CoreFixtures.value(of: task) }
            #expect(error?.code == EBADF)
            #expect(error?.operation == "write")
        }
        #expect(ContinuousClock.now - start < Self.prompt)
        await b.close()
    } }

    // MARK: Use after close

    @Test("every call after close() throws EBADF naming the operation; close twice is harmless")
    func useAfterClose() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        await a.close()
        await a.close()
        #expect(await a.isClosed)
        #expect(await a.descriptor == -1)

        func expectClosed(_ operation: String, _ sourceLocation: SourceLocation = #_sourceLocation,
                          _ body: () async throws -> Void) async {
            let error = await #expect(throws: SocketError.self, sourceLocation: sourceLocation) { try await body() }
            #expect(error?.code == EBADF, sourceLocation: sourceLocation)
            #expect(error?.description == "\(operation) failed: Bad file descriptor (EBADF): the socket is closed",
                    sourceLocation: sourceLocation)
        }
        await expectClosed("read") { _ = try await a.read(upTo: 10) }
        await expectClosed("read") { _ = try await a.read(exactly: 10) }
        await expectClosed("read") { _ = try await a.read(exactly: 0) }
        var buffer: [UInt8] = []
        await expectClosed("read") { _ = try await a.read(into: &buffer, upTo: 10) }
        await expectClosed("write") { try await a.write([1]) }
        await expectClosed("write") { try await a.write([]) }
        await expectClosed("write") { try await a.write("x") }
        await expectClosed("shutdown") { try await a.shutdown(.write) }
        await expectClosed("localAddress") { _ = try await a.localAddress }
        await expectClosed("remoteAddress") { _ = try await a.remoteAddress }
        await expectClosed("setsockopt") { try await a.setOption(.keepAlive, true) }
        await expectClosed("getsockopt") { _ = try await a.option(.receiveBufferSize) }

        // The peer sees end of stream, and the closed socket's descriptor number is really free.
        #expect(try await b.read(upTo: 1) == [])
        await b.close()
    } }

    @Test("a TCP socket closed after use names its peer in the error")
    func useAfterCloseNamesPeer() async throws { try await withDescriptorCheck {
        let (client, server) = try await CoreFixtures.tcpPair()
        let peer = try await client.remoteAddress
        await client.close()
        let error = await #expect(throws: SocketError.self) { try await client.write([1]) }
        #expect(error?.address == peer)
        #expect(error?.description == "write to \(peer) failed: Bad file descriptor (EBADF): the socket is closed")
        await server.close()
    } }

    @Test("a socket dropped without close() closes its descriptor")
    func droppedSocketCloses() async throws { try await withDescriptorCheck {
        var (a, b): (AsyncSocket?, AsyncSocket?) = try AsyncSocket.pair()
        try await a!.write([1])
        #expect(try await b!.read(exactly: 1) == [1])
        a = nil
        b = nil
        // withDescriptorCheck fails the test if the two descriptors stay open.
    } }
}
