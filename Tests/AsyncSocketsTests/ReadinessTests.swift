import Foundation
import Testing
@testable import AsyncSockets

/// Readiness is level-triggered, and a short read is taken to mean "drained" (the next read waits instead of
/// calling `recv` for an `EAGAIN`). These tests pin down what makes that safe: whatever arrives behind the data
/// in the same readiness report (an end of stream, a reset) is still seen, and readiness that nobody waits for
/// does not keep the loop busy.
@Suite(.serialized) struct ReadinessTests {
    /// Data and end of stream arrive in one readiness report while a read waits: the read gets the data (a short
    /// read), and the next read gets end of stream instead of waiting for a report that would never come.
    @Test(arguments: CoreFixtures.Transport.allCases)
    func dataAndEndOfStreamInOneReport(_ transport: CoreFixtures.Transport) async throws { try await withDescriptorCheck {
        let (a, b) = try await transport.open()
        let firstRead = Task { try await b.read(upTo: 1024) }
        try await CoreFixtures.waitUntil("the read waits") { await b.coreTestWaitState().reading }
        // Both on the loop thread in one step, so the loop cannot poll in between: one report carries both.
        let fd = await a.descriptor
        a.eventLoop.executeAndWait {
            _ = [UInt8](repeating: 7, count: 3).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            _ = shutdown(fd, Int32(SHUT_WR))
        }
        #expect(try await CoreFixtures.value(of: firstRead) == [7, 7, 7])
        let secondRead = Task { try await b.read(upTo: 1024) }
        #expect(try await CoreFixtures.value(of: secondRead, within: .seconds(10)) == [], "end of stream after the data")
        await a.close()
        await b.close()
    } }

    /// The same with `read(exactly:)` and `read(into:upTo:)`: each stops at the end of stream behind the data.
    @Test func everyReadSeesTheEndOfStreamBehindTheData() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        let fd = await a.descriptor
        let exact = Task { try await b.read(exactly: 10) }
        try await CoreFixtures.waitUntil("read(exactly:) waits") { await b.coreTestWaitState().reading }
        a.eventLoop.executeAndWait {
            _ = [UInt8](repeating: 1, count: 4).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            _ = shutdown(fd, Int32(SHUT_WR))
        }
        do {
            _ = try await CoreFixtures.value(of: exact, within: .seconds(10))
            Issue.record("read(exactly: 10) returned with only 4 bytes sent")
        } catch let error as IncompleteReadError {
            #expect(error.partial == [1, 1, 1, 1])
        }
        let into = Task {
            var buffer: [UInt8] = []
            return try await b.read(into: &buffer, upTo: 100)
        }
        #expect(try await CoreFixtures.value(of: into, within: .seconds(10)) == 0)
        await a.close()
        await b.close()
    } }

    /// Data and a reset (`SO_LINGER {1, 0}` then close) arrive in one report while a read waits: the read gets
    /// the data, and the next read throws `ECONNRESET` at once instead of waiting forever.
    @Test(arguments: [CoreFixtures.Transport.tcp4, .tcp6])
    func dataAndResetInOneReport(_ transport: CoreFixtures.Transport) async throws { try await withDescriptorCheck {
        let (a, b) = try await transport.open()
        try await a.setRawOption(level: SOL_SOCKET, name: SO_LINGER, bytes: abortiveLingerBytes())
        let firstRead = Task { try await b.read(upTo: 1024) }
        try await CoreFixtures.waitUntil("the read waits") { await b.coreTestWaitState().reading }
        let fd = await a.descriptor
        a.eventLoop.executeAndWait {
            _ = [UInt8](repeating: 9, count: 5).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            a.core.close()  // sends the RST
        }
        #expect(try await CoreFixtures.value(of: firstRead) == [9, 9, 9, 9, 9])
        let secondRead = Task { try await b.read(upTo: 1024) }
        let error = await caught { _ = try await CoreFixtures.value(of: secondRead, within: .seconds(10)) }
        expectSocketError(error, [ECONNRESET], "the reset behind the data")
        await b.close()
    } }

    /// A socket that is readable with nobody reading, and one that is writable with nobody writing (both with
    /// their readiness registered by an earlier wait), leave the loop asleep: level-triggered events that nobody
    /// wants are removed instead of being reported on every poll.
    @Test func unwantedReadinessLeavesTheLoopIdle() async throws { try await withDescriptorCheck {
        let loops = EventLoopGroup.shared.loops  // the sockets are spread over all of them
        // Readable, nobody reading: a read waited (registering the read event), then more data than it took.
        let readable = try (0..<20).map { _ in try AsyncSocket.pair() }
        for (a, b) in readable {
            let reader = Task { try await b.read(upTo: 1) }
            try await CoreFixtures.waitUntil("the read waits") { await b.coreTestWaitState().reading }
            try await a.write([1, 2])
            #expect(try await CoreFixtures.value(of: reader) == [1])
        }
        // Writable, nobody writing: a write waited for room (registering the write event), then the peer drained.
        let (w, r) = try await CoreFixtures.tcpPair()
        let filled = await CoreFixtures.fillSendBuffer(w)
        let writer = Task { try await w.write([UInt8](repeating: 3, count: 100_000)) }
        try await CoreFixtures.waitUntil("the write waits") { await w.coreTestWaitState().writing }
        var drained = 0
        while drained < filled + 100_000 { drained += try await r.read(upTo: 1 << 20).count }
        try await CoreFixtures.value(of: writer)

        // Let the loop see each socket once more, then measure.
        for loop in loops {
            loop.executeAndWait {}
            loop.executeAndWait {}
        }
        // Idle on purpose: the quantity measured is CPU time over wall time while nothing is wanted.
        let (used, wall) = try await ServerTesting.loopCPUTime(of: loops, over: .seconds(1))
        #expect(used < wall * 0.05, "the busiest loop thread used \(used) of CPU in \(wall) with readiness nobody wants")

        // Still usable: the leftover byte is read, and a write goes through.
        for (a, b) in readable {
            #expect(try await b.read(upTo: 10) == [2])
            await a.close()
            await b.close()
        }
        try await w.write([4])
        #expect(try await r.read(upTo: 10) == [4])
        await w.close()
        await r.close()
    } }
    /// A reader that finds its data without waiting, in a job after a poll that reported the socket with
    /// nobody waiting (a request/response body whose reads come in a later job), keeps its read event
    /// registered: the reports were followed by reads that took the data, so they were not unwanted, and
    /// removing the event would only cost an `epoll_ctl` to remove it and another to add it at the next wait.
    @Test func aReaderBetweenReadsKeepsItsRegistration() async throws { try await withDescriptorCheck {
        let loop = EventLoop.next()
        let (a, b) = try AsyncSocket.pair(on: loop)
        // A read waits: that registers b's read event.
        let first = Task { try await b.read(upTo: 1) }
        try await CoreFixtures.waitUntil("the read waits") { await b.coreTestWaitState().reading }
        try await a.write([0])
        #expect(try await CoreFixtures.value(of: first) == [0])
        #expect(await b.coreTestReadRegistered(), "a wait registers the read event")
        let receivesBefore = await b.emptyReceives
        let rounds = try await loop.run { () async throws -> [Bool] in
            var registered: [Bool] = []
            for round in 1...8 {
                try await a.write([UInt8(round)])
                // Exactly one poll before the read (a zero-length sleep on the loop's timer): it reports b
                // readable while nobody waits on b.
                _ = await a.yieldToLoop(.write)
                #expect(try await b.read(upTo: 1) == [UInt8(round)])
                registered.append(await b.coreTestReadRegistered())
            }
            return registered
        }
        #expect(rounds == Array(repeating: true, count: 8), "read event registered after each round: \(rounds)")
        #expect(await b.emptyReceives == receivesBefore, "every read found its byte")
        await a.close()
        await b.close()
    } }
}
