import Foundation
import Testing
@testable import AsyncSockets

/// Running out of descriptors (`RLIMIT_NOFILE` lowered, the remaining slots filled): creating sockets fails
/// with `EMFILE` cleanly, accepting waits (backing off) instead of spinning or failing, and everything works
/// again once descriptors are freed. The limit is restored on every path.
///
/// The window is short and the descriptor-check gate keeps other socket tests out while it lasts. While it
/// lasts, the test runs on an event loop and waits on its timers, not through Dispatch (see ``LoopSleeper``:
/// libdispatch's worker monitor crashes the process when it cannot open `/proc/<tid>/stat`).
@Suite(.serialized) struct DescriptorExhaustionTests {
    static let noFileLimit = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)

    /// Lowers the soft limit to just above the highest open descriptor, fills every free slot below it,
    /// runs `body` on `loop` (the loop as its task's preferred executor) with the fillers (close some to free
    /// slots), and restores limit and fillers.
    static func withExhaustedDescriptors<T>(on loop: EventLoop,
                                            _ body: (inout [Int32]) async throws -> T) async throws -> T {
        var saved = rlimit()
        #expect(getrlimit(Self.noFileLimit, &saved) == 0)
        let highest = openDescriptors().max() ?? 2
        var lowered = saved
        lowered.rlim_cur = rlim_t(highest + 1 + 16)
        #expect(setrlimit(Self.noFileLimit, &lowered) == 0)
        var fillers: [Int32] = []
        defer {
            for fd in fillers { _ = Glibc.close(fd) }
            var restore = saved
            _ = setrlimit(Self.noFileLimit, &restore)
        }
        while true {
            let fd = open("/dev/null", O_RDONLY | O_CLOEXEC)
            if fd < 0 {
                #expect(errno == EMFILE)
                break
            }
            fillers.append(fd)
        }
        return try await loop.run { try await body(&fillers) }
    }

    @Test func socketCreationFailsWithEMFILEAndRecovers() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let address = server.localAddress
        try await Self.withExhaustedDescriptors(on: server.eventLoop) { fillers in
            expectSocketError(await caught { _ = try AsyncSocket.pair() }, [EMFILE])
            expectSocketError(await caught { _ = try await AsyncSocket.connect(to: address) }, [EMFILE])
            expectSocketError(await caught { _ = try await AsyncSocket.connect(to: Endpoint(host: "127.0.0.1", port: address.port!)) },
                              [EMFILE])
            expectSocketError(await caught { _ = try AsyncServer(host: "127.0.0.1", port: 0) }, [EMFILE])
            // The error says what failed.
            if let error = await caught({ _ = try await AsyncSocket.connect(to: address) }) as? SocketError {
                #expect(error.operation == "socket")
                #expect(error.description.contains("EMFILE"))
            }
            // Free a few slots: everything works again.
            for fd in fillers.suffix(4) { _ = Glibc.close(fd) }
            fillers.removeLast(4)
            let (a, b) = try AsyncSocket.pair()
            try await a.write([42])
            #expect(try await b.read(upTo: 1) == [42])
            await a.close()
            await b.close()
            let client = try await AsyncSocket.connect(to: address)
            let accepted = try #require(try await server.accept())
            await client.close()
            await accepted.close()
        }
        server.close()
    } }

    @Test func acceptWaitsWhileOutOfDescriptorsAndRecovers() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        // A connection waits in the backlog; a pair gives us a timer that needs no new descriptor.
        let client = try await AsyncSocket.connect(to: server.localAddress)
        let (timerA, timerB) = try AsyncSocket.pair()
        await timerA.setTimeout(.milliseconds(300))
        let sleeper = try LoopSleeper()
        try await Self.withExhaustedDescriptors(on: sleeper.loop) { fillers in
            let accepting = Task(executorPreference: sleeper.loop) { try await server.accept() }
            // While no descriptor is free, accept4 fails with EMFILE: the accept backs off and retries,
            // it neither returns nor throws.
            expectSocketError(await caught { _ = try await timerA.read(upTo: 1) }, [ETIMEDOUT])
            // Free one slot: the pending accept completes with the waiting connection.
            _ = Glibc.close(fillers.removeLast())
            let accepted = try #require(try await sleeper.within(.seconds(30), "accept after EMFILE") { try await accepting.value })
            try await client.write([7])
            #expect(try await accepted.read(upTo: 1) == [7])
            await accepted.close()
        }
        await client.close()
        await timerA.close()
        await timerB.close()
        await sleeper.close()
        server.close()
    } }
}
