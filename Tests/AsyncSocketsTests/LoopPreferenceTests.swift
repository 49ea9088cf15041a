import Testing
@testable import AsyncSockets

extension AsyncSocket {
    /// Reads once (the caller makes sure the read has to wait) and says whether the loop then takes the calling
    /// task to prefer it as its task executor.
    fileprivate func readThenAskPreference() async throws -> Bool {
        _ = try await read(upTo: 16)
        return core.loop.currentTaskPrefersLoop
    }

    fileprivate func isWaitingToRead() -> Bool { core.waitState.reading }
}

/// The loop remembers per job whether the task running it prefers the loop (`EventLoop.currentTaskPrefersLoop`),
/// instead of walking the task's status records twice per round trip. The remembered answer must follow the task:
/// a plain task waits with the loop preferred (`LoopBound` wraps its wait in `withTaskExecutorPreference`), is
/// resumed in a job the loop counts as preferring it, and must be seen as a plain task again once the wrapped
/// wait is over, or its next wait would skip the preference and resume through the global pool. (With Swift 6.3
/// this test also passes without the reset `LoopBound` does where its wrapper ends, so the runtime does not
/// leave the wrapper in the resuming job with the flag still set; the reset stays, for a runtime that does.)
@Suite struct LoopPreferenceTests {
    @Test("after a wait, the task is seen as preferring the loop exactly when it does", arguments: [false, true])
    func preferenceAfterAWait(preferLoop: Bool) async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        let reader = Task(executorPreference: preferLoop ? a.eventLoop : nil) { try await a.readThenAskPreference() }
        try await CoreFixtures.waitUntil("the read waits") { await a.isWaitingToRead() }
        try await b.write([1])
        let prefers = try await CoreFixtures.within(.seconds(20), "the read") { try await reader.value }
        #expect(prefers == preferLoop)
        await a.close()
        await b.close()
    } }

    /// The same inside `withConnection`, whose body always prefers the socket's loop.
    @Test func scopedBodyPrefersTheLoop() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let address = server.localAddress
        async let served: Void = server.serve { client in try await client.write([1]) }
        let prefers = try await AsyncSocket.withConnection(to: address, timeout: .seconds(20)) { socket in
            _ = try await socket.read(upTo: 16)
            return socket.core.loop.currentTaskPrefersLoop
        }
        #expect(prefers)
        server.close()
        try await served
    } }
}
