import Foundation
import Testing
@testable import AsyncSockets

private typealias T = ServerTesting

/// Lowers this process's `RLIMIT_NOFILE` to just above the descriptors in use and opens /dev/null until
/// `EMFILE`, so that the next `accept` fails for lack of descriptors; ``release()`` closes them and restores
/// the limit (call it on every path).
///
/// Use ``make()``: Dispatch (behind `Task.sleep` and `asyncAfter`) creates one timerfd per clock when a timer
/// on that clock is first armed, and if it cannot, that timer silently never fires. `make()` first runs a
/// timer on each of Dispatch's three clocks, so that all three timerfds exist before the table fills.
private final class DescriptorExhaustion {
    private let original: rlimit
    private var fillers: [Int32] = []
    private var released = false

    static func make() async throws -> DescriptorExhaustion {
        try await armEachClock() // (already done by warmUpClocks: this only makes sure)
        return try DescriptorExhaustion()
    }

    /// Runs a timer on each Dispatch clock, holding the descriptor-test gate so that no other test's leak
    /// check sees the timerfds appear. Call it before `withDescriptorCheck`: the timerfds stay open for the
    /// life of the process and are not a leak of the test.
    static func warmUpClocks() async throws {
        await DescriptorTestGate.shared.enter()
        do {
            try await armEachClock()
        } catch {
            await DescriptorTestGate.shared.leave()
            throw error
        }
        await DescriptorTestGate.shared.leave()
    }

    private static func armEachClock() async throws {
        try await Task.sleep(until: .now + .milliseconds(1), clock: .continuous)
        try await Task.sleep(until: .now + .milliseconds(1), clock: .suspending)
        await withCheckedContinuation { continuation in
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(1)) { continuation.resume() }
        }
        await withCheckedContinuation { continuation in
            DispatchQueue.global().asyncAfter(wallDeadline: .now() + .milliseconds(1)) { continuation.resume() }
        }
    }

    private init() throws {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { throw SocketError.fromErrno("getrlimit") }
        original = limit
        let highest = openDescriptors().max() ?? 0
        var lowered = limit
        lowered.rlim_cur = min(limit.rlim_cur, rlim_t(highest + 8))
        guard setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &lowered) == 0 else { throw SocketError.fromErrno("setrlimit") }
        while true {
            let fd = open("/dev/null", O_RDONLY | O_CLOEXEC)
            if fd < 0 {
                let code = errno
                if code != EMFILE {
                    release()
                    throw SocketError(code: code, operation: "open", detail: "filling the descriptor table")
                }
                break
            }
            fillers.append(fd)
            if fillers.count > 10_000 {
                release()
                throw SocketError(code: EINVAL, operation: "open", detail: "the lowered limit did not take effect")
            }
        }
    }

    /// Closes one of the filling descriptors, so that exactly one descriptor can be opened.
    func freeOne() {
        if let fd = fillers.popLast() { close(fd) }
    }

    func release() {
        guard !released else { return }
        released = true
        for fd in fillers { close(fd) }
        var limit = original
        let rc = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        precondition(rc == 0, "could not restore RLIMIT_NOFILE")
    }

    deinit { release() }
}

/// Tests that change process-wide resources (the descriptor limit) and measure CPU time: one at a time.
///
/// While the descriptor table is full, each test runs on an event loop and waits on its timers
/// (``LoopSleeper``), never through Dispatch: libdispatch's worker monitor crashes the process when it cannot
/// open `/proc/<tid>/stat` while a global queue has work waiting.
@Suite(.serialized) struct ServerResourceTests {
    /// Out of descriptors, the accept loop neither dies nor spins: it backs off and accepts again once
    /// descriptors are free.
    @Test func acceptBacksOffWithoutSpinningWhenOutOfDescriptors() async throws {
        try await DescriptorExhaustion.warmUpClocks()
        try await withDescriptorCheck {
        let sleeper = try LoopSleeper()
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let port = server.localAddress.port!
        let waiting = try await T.connect(port) // in the kernel's queue until accepted
        try await waiting.write("1")

        let exhaustion = try await DescriptorExhaustion.make()
        defer { exhaustion.release() }
        let (accepting, processCPU, loopCPU, wall, backoffs, totalBackoffs) = await sleeper.loop.run {
            let accepting = Task(executorPreference: sleeper.loop) { try await server.accept() }
            #expect(await sleeper.eventually { await server.listener.backoffCount >= 1 }, "accept never hit EMFILE")

            // Measure while backing off. (The pause is the measurement window, not an ordering device.)
            let backoffsBefore = await server.listener.backoffCount
            let processBefore = T.processCPUTime()
            let loopBefore = T.threadCPUTime(of: server.eventLoop)
            let wallBefore = ContinuousClock.now
            await sleeper.pause(.seconds(1))
            let wall = ContinuousClock.now - wallBefore
            let processCPU = T.processCPUTime() - processBefore
            let loopAfter = T.threadCPUTime(of: server.eventLoop)
            let totalBackoffs = await server.listener.backoffCount
            #expect(await server.listener.pendingAccepts == 1, "the accept is still waiting")
            let loopCPU = loopBefore.flatMap { before in loopAfter.map { $0 - before } }
            return (accepting, processCPU, loopCPU, wall, totalBackoffs - backoffsBefore, totalBackoffs)
        }
        exhaustion.release()
        let accepted = try #require(try await T.within(.seconds(10), "accept after descriptors came back") { try await accepting.value })

        // A spinning loop burns a whole core (~1 s of CPU per second); backing off from 10 ms to 1 s costs
        // a handful of syscalls.
        #expect(processCPU < wall / 2, "process used \(processCPU) of CPU in \(wall) while backing off")
        if let loopCPU {
            #expect(loopCPU < .milliseconds(200), "the loop thread used \(loopCPU) of CPU in \(wall)")
        }
        // Retried (10, 30, 70, 150, … ms after the first failure), but only a handful of times.
        #expect(totalBackoffs >= 2, "the loop stopped retrying (\(totalBackoffs) retries)")
        #expect(backoffs <= 12, "\(backoffs) retries in \(wall): not backing off")

        // The accepted client is the one that waited, and the server goes on accepting.
        #expect(try await accepted.read(exactly: 1) == Array("1".utf8))
        let next = try await T.connect(port)
        let nextAccepted = try #require(try await T.within(.seconds(10)) { try await server.accept() })
        for socket in [waiting, accepted, next, nextAccepted] { await socket.close() }
        server.close()
        await sleeper.close()
    } }

    @Test func closeEndsAnAcceptThatIsBackingOff() async throws {
        try await DescriptorExhaustion.warmUpClocks()
        try await withDescriptorCheck {
        let sleeper = try LoopSleeper()
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let waiting = try await T.connect(server.localAddress.port!)
        let exhaustion = try await DescriptorExhaustion.make()
        defer { exhaustion.release() }
        try await sleeper.loop.run {
            let accepting = Task(executorPreference: sleeper.loop) { try await server.accept() }
            // After 7 failures the loop sleeps 640 ms (10, 20, 40, … ms before): close() must cut that sleep short.
            #expect(await sleeper.eventually { await server.listener.backoffCount >= 7 })
            let start = ContinuousClock.now
            server.close()
            let result = try await sleeper.within(.seconds(10), "the accept after close()") { try await accepting.value }
            #expect(result == nil)
            #expect(ContinuousClock.now - start < .milliseconds(400), "close() took \(ContinuousClock.now - start)")
        }
        exhaustion.release()
        await waiting.close()
        await sleeper.close()
    } }

    @Test func serveSurvivesRunningOutOfDescriptors() async throws {
        try await DescriptorExhaustion.warmUpClocks()
        try await withDescriptorCheck {
        let sleeper = try LoopSleeper()
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let port = server.localAddress.port!
        async let served: Void = server.serve(handler: T.echo)
        #expect(await T.eventually { await server.listener.pendingAccepts == 1 })
        let client = try await T.connect(port)
        try await client.write("a")
        #expect(try await client.read(exactly: 1) == Array("a".utf8))

        let exhaustion = try await DescriptorExhaustion.make()
        defer { exhaustion.release() }
        let second = try await sleeper.loop.run {
            // Free exactly one descriptor for the client's socket: the server's accept then finds none.
            exhaustion.freeOne()
            let second = try await T.connect(port)
            #expect(await sleeper.eventually { await server.listener.backoffCount >= 2 }, "serve's accept never hit EMFILE")
            try await second.write("b")
            return second
        }
        exhaustion.release()
        #expect(try await T.within(.seconds(10)) { try await second.read(exactly: 1) } == Array("b".utf8))
        // The first client's handler was not disturbed either.
        try await client.write("c")
        #expect(try await client.read(exactly: 1) == Array("c".utf8))
        await second.close()
        await client.close()
        server.close()
        try await served
        await sleeper.close()
    } }
}
