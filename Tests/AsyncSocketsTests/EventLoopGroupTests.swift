#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization
import Testing
@testable import AsyncSockets

// Issue 13: `EventLoopGroup`, where new sockets live, servers over several loops, and sockets of different
// loops used together. The multi-loop tests use groups of their own, so they test the same thing whatever
// `ASYNCSOCKETS_LOOP_COUNT` makes of the shared group (CI also runs the suite with it set to 1).

enum GroupFixtures {
    /// Two loops for the tests (loops live as long as the process: one group for the whole suite).
    static let two = EventLoopGroup(loopCount: 2)
    /// One loop: a client and its server on the same thread, where timing must not matter.
    static let one = EventLoopGroup(loopCount: 1)
    /// Three loops: a server's clients must reach every one of them.
    static let three = EventLoopGroup(loopCount: 3)
    /// One loop that no other test uses, for counts of the loop's own work (its polls).
    static let quiet = EventLoopGroup(loopCount: 1)
    /// One loop for a server that streams (the TLS fairness tests): what it must not starve runs on it too.
    static let fairness = EventLoopGroup(loopCount: 1)

    /// Creates the groups' loops (epoll and eventfd descriptors) before a descriptor check takes its baseline.
    static func warmUp() {
        _ = one.loops.count + two.loops.count + three.loops.count + quiet.loops.count + fairness.loops.count
            + EventLoopGroup.shared.loops.count
    }

    /// An echo until end of stream, then shutting down the write side.
    static func echo(_ client: isolated AsyncSocket) async throws {
        var buffer: [UInt8] = []
        while try await client.read(into: &buffer, upTo: 65536) > 0 {
            try await client.write(buffer)
            buffer.removeAll(keepingCapacity: true)
        }
    }
}

@Suite struct EventLoopGroupTests {
    init() { GroupFixtures.warmUp() }

    // MARK: The group

    @Test func groupHasItsLoopsAndNextCyclesThroughThem() {
        let group = EventLoopGroup(loopCount: 3)  // its own counter: no other test moves it
        #expect(group.loops.count == 3)
        #expect(Set(group.loops.map { ObjectIdentifier($0) }).count == 3)
        let picked = (0..<9).map { _ in ObjectIdentifier(group.next()) }
        for loop in group.loops {
            #expect(picked.filter { $0 == ObjectIdentifier(loop) }.count == 3, "round-robin: each loop 3 times of 9")
        }
        #expect(group.contains(group.loops[1]))
        #expect(!group.contains(GroupFixtures.two.loops[0]))
    }

    @Test func sharedGroupFollowsTheEnvironmentOrTheCPUCount() {
        let expected: Int
        if let raw = ProcessInfo.processInfo.environment["ASYNCSOCKETS_LOOP_COUNT"], let count = Int(raw), count >= 1 {
            expected = count
        } else {
            expected = ProcessInfo.processInfo.activeProcessorCount  // the affinity mask's count on Linux
        }
        #expect(EventLoopGroup.shared.loops.count == expected)
        #expect(EventLoop.shared === EventLoopGroup.shared.loops[0])
        #expect(EventLoop.shared.description.hasPrefix("EventLoop(AsyncSockets,"))
    }

    // MARK: Where a new socket lives

    @Test func socketsLiveOnTheLoopTheirTaskPrefers() async throws { try await withDescriptorCheck {
        let listener = try AsyncServer(host: "127.0.0.1", port: 0, group: GroupFixtures.two)
        defer { listener.close() }
        for loop in GroupFixtures.two.loops {
            try await loop.run {
                let (a, b) = try AsyncSocket.pair()
                #expect(a.eventLoop === loop && b.eventLoop === loop)
                let direct = try await AsyncSocket.connect(to: listener.localAddress, timeout: .seconds(10))
                #expect(direct.eventLoop === loop, "connect(to: SocketAddress)")
                let raced = try await AsyncSocket.connect(to: Endpoint(host: "127.0.0.1", port: listener.localAddress.port!),
                                                          timeout: .seconds(10))
                #expect(raced.eventLoop === loop, "connect(to: Endpoint): the attempts inherit the preference")
                // A structured child task inherits the preference too.
                let child = try await withThrowingTaskGroup(of: EventLoop.self) { group in
                    group.addTask { try AsyncSocket.pair().0.eventLoop }
                    return try await group.next()!
                }
                #expect(child === loop)
                for socket in [a, b, direct, raced] { await socket.close() }
            }
        }
        // The accepted ones (two per loop) live on the server's group.
        for _ in 0..<(2 * GroupFixtures.two.loops.count) {
            let accepted = try #require(try await ServerTesting.within(.seconds(10), "accept") { try await listener.accept() })
            #expect(GroupFixtures.two.contains(accepted.eventLoop))
            await accepted.close()
        }
    } }

    @Test func socketsOfTasksWithoutAPreferenceSpreadOverTheSharedGroup() async throws { try await withDescriptorCheck {
        let shared = EventLoopGroup.shared
        let loops = try await Task.detached {
            try (0..<(2 * shared.loops.count)).map { _ in
                let (a, b) = try AsyncSocket.pair()
                #expect(a.eventLoop === b.eventLoop, "both ends of a pair on one loop")
                return a.eventLoop
            }
        }.value
        #expect(loops.allSatisfy { shared.contains($0) })
        #expect(Set(loops.map { ObjectIdentifier($0) }).count == shared.loops.count, "every shared loop gets sockets")
    } }

    @Test func anExplicitLoopWinsOverThePreference() async throws { try await withDescriptorCheck {
        let (here, there) = (GroupFixtures.two.loops[0], GroupFixtures.two.loops[1])
        let live = try SilentListener()
        let refused = try RefusingPort()
        defer { live.close(); refused.close() }
        try await here.run {
            let (a, b) = try AsyncSocket.pair(on: there)
            #expect(a.eventLoop === there && b.eventLoop === there)
            let direct = try await AsyncSocket.connect(to: live.address, timeout: .seconds(10), on: there)
            #expect(direct.eventLoop === there)
            // Happy Eyeballs on `there`: a refused attempt, then the live one; the race itself runs on `there`.
            let offLoop = Mutex(0)
            let raced = try await AsyncSocket.connect(
                to: Endpoint(host: "race.test", port: 1), timeout: .seconds(10), happyEyeballsDelay: .seconds(5),
                resolver: FixedResolver([refused.address, live.address]), on: there,
                observer: { _ in if !there.inLoop { offLoop.withLock { $0 += 1 } } })
            #expect(raced.eventLoop === there)
            #expect(offLoop.withLock { $0 } == 0, "the race ran on the loop it was given")
            let defaulted = try AsyncSocket.pair(on: nil)
            #expect(defaulted.0.eventLoop === here, "nil: the loop the task prefers")
            for socket in [a, b, direct, raced, defaulted.0, defaulted.1] { await socket.close() }
        }
    } }

    // MARK: Servers over several loops

    @Test func clientsOfAMultiLoopServerSpreadOverItsLoopsAndHandlersRunOnTheirClientsLoop() async throws { try await withDescriptorCheck {
        let group = GroupFixtures.three
        let server = try AsyncServer(host: "127.0.0.1", port: 0, group: group)
        #expect(server.group === group && group.contains(server.eventLoop))
        let seen = Mutex<[ObjectIdentifier: Int]>([:])
        let misplaced = Mutex<[String]>([])
        let serving = Task {
            try await server.serve { client in
                let loop = client.eventLoop
                if !loop.inLoop { misplaced.withLock { $0.append("handler code off its client's loop") } }
                if !loop.currentTaskPrefersLoop { misplaced.withLock { $0.append("handler does not prefer its client's loop") } }
                // A socket the handler creates (a proxy's upstream) lives on the client's loop.
                let (up, _) = try AsyncSocket.pair()
                if up.eventLoop !== loop { misplaced.withLock { $0.append("handler's new socket on another loop") } }
                seen.withLock { $0[ObjectIdentifier(loop), default: 0] += 1 }
                try await GroupFixtures.echo(client)
            }
        }
        let clients = 12
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for index in 0..<clients {
                tasks.addTask {
                    let socket = try await AsyncSocket.connect(to: server.localAddress, timeout: .seconds(10))
                    try await socket.write([UInt8(index)])
                    #expect(try await socket.read(exactly: 1) == [UInt8(index)])
                    await socket.close()
                }
            }
            try await tasks.waitForAll()
        }
        server.close()
        try await CoreFixtures.value(of: serving, within: .seconds(20))
        #expect(misplaced.withLock { $0 } == [])
        let counts = seen.withLock { $0 }
        #expect(counts.values.reduce(0, +) == clients)
        #expect(counts.count == group.loops.count, "clients on every loop: \(counts.values.sorted())")
        #expect(counts.values.allSatisfy { $0 >= 2 }, "round-robin spreads 12 clients over 3 loops: \(counts.values.sorted())")
    } }

    @Test func bothServerInitialisersTakeAGroup() async throws { try await withDescriptorCheck {
        let path = "/tmp/asyncsockets-group-\(getpid()).sock"
        unlink(path)
        let unix = try AsyncServer(unixPath: path, group: GroupFixtures.two)
        let tcp = try AsyncServer(host: "127.0.0.1", port: 0, group: GroupFixtures.two)
        let plain = try AsyncServer(host: "127.0.0.1", port: 0)
        #expect(unix.group === GroupFixtures.two && tcp.group === GroupFixtures.two)
        #expect(plain.group === EventLoopGroup.shared, "the default is the shared group")
        let client = try await AsyncSocket.connect(to: unix.localAddress, timeout: .seconds(10))
        let accepted = try #require(try await unix.accept())
        #expect(GroupFixtures.two.contains(accepted.eventLoop))
        await client.close()
        await accepted.close()
        for server in [unix, tcp, plain] { server.close() }
    } }

    /// A burst of queued connections comes in through batches: `serve` gets all of them, in bounded steps.
    @Test func aBurstOfQueuedConnectionsIsAcceptedInBatches() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0, group: GroupFixtures.two)
        defer { server.close() }
        var clients: [AsyncSocket] = []
        for _ in 0..<40 { clients.append(try await AsyncSocket.connect(to: server.localAddress, timeout: .seconds(10))) }
        let batch = try #require(try await server.listener.acceptBatch(upTo: 16))
        #expect(batch.count == 16, "a full batch from a backlog of 40")
        let rest = try #require(try await server.listener.acceptBatch(upTo: 100))
        #expect(rest.count == 24, "the rest, without waiting for more")
        for socket in clients + batch + rest { await socket.close() }
    } }

    // MARK: Sockets of different loops together

    /// A proxy task on loop A between a socket on A and one on B moves 64 MiB up, byte-exact, and a reply down,
    /// with the half-close passed on in both directions.
    @Test func proxyBetweenTwoLoopsMovesBytesExactlyWithHalfClose() async throws { try await withDescriptorCheck {
        let (loopA, loopB) = (GroupFixtures.two.loops[0], GroupFixtures.two.loops[1])
        let (source, proxyIn) = try AsyncSocket.pair(on: loopA)
        let (proxyOut, sink) = try AsyncSocket.pair(on: loopB)
        let chunk = CoreFixtures.pattern(count: 1 << 20)
        let chunks = 64
        let reply = CoreFixtures.pattern(count: 100_000, seed: 7)

        @Sendable func pipe(_ from: AsyncSocket, _ to: AsyncSocket) async throws -> Int {
            var buffer: [UInt8] = []
            buffer.reserveCapacity(65536)
            var total = 0
            while true {
                buffer.removeAll(keepingCapacity: true)
                let n = try await from.read(into: &buffer, upTo: 65536)
                if n == 0 { break }
                try await to.write(buffer)
                total += n
            }
            try await to.shutdown(.write)
            return total
        }

        try await CoreFixtures.within(.seconds(120), "64 MiB through a cross-loop proxy") {
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                // The proxy: both directions prefer loop A; up writes to B's socket, down reads from it.
                tasks.addTask(executorPreference: loopA) {
                    let moved = try await pipe(proxyIn, proxyOut)
                    #expect(moved == chunks << 20)
                }
                tasks.addTask(executorPreference: loopA) {
                    let moved = try await pipe(proxyOut, proxyIn)
                    #expect(moved == reply.count)
                }
                tasks.addTask {
                    for index in 0..<chunks {
                        var piece = chunk
                        withUnsafeBytes(of: UInt32(index).bigEndian) { piece.replaceSubrange(0..<4, with: $0) }
                        try await source.write(piece)
                    }
                    try await source.shutdown(.write)
                    // The reply comes after our half-close, then the end of stream.
                    let answer = try await source.read(exactly: reply.count)
                    #expect(CoreFixtures.sameBytes(answer, reply))
                    #expect(try await source.read(upTo: 16) == [])
                }
                tasks.addTask(executorPreference: loopB) {
                    for index in 0..<chunks {
                        var expected = chunk
                        withUnsafeBytes(of: UInt32(index).bigEndian) { expected.replaceSubrange(0..<4, with: $0) }
                        let got = try await sink.read(exactly: 1 << 20)
                        guard CoreFixtures.sameBytes(got, expected) else {
                            Issue.record("MiB \(index) differs")
                            return
                        }
                    }
                    #expect(try await sink.read(upTo: 16) == [], "the half-close came through")
                    try await sink.write(reply)
                    try await sink.shutdown(.write)
                }
                try await tasks.waitForAll()
            }
        }
        for socket in [source, proxyIn, proxyOut, sink] { await socket.close() }
    } }

    @Test func closeFromAnotherLoopWakesAWaiterPromptly() async throws { try await withDescriptorCheck {
        let (loopA, loopB) = (GroupFixtures.two.loops[0], GroupFixtures.two.loops[1])
        let (a, b) = try AsyncSocket.pair(on: loopB)
        // A task on loop A waits in a read of a socket on loop B; code on loop A closes it.
        let reader = Task(executorPreference: loopA) { try await b.read(upTo: 16) }
        try await CoreFixtures.waitUntil("the read waits") { await b.coreTestWaitState().reading }
        let start = ContinuousClock.now
        await loopA.run { await b.close() }
        let error = await caught { _ = try await CoreFixtures.value(of: reader, within: .seconds(10)) }
        expectSocketError(error, [EBADF], "the reader was woken by the close")
        #expect(ContinuousClock.now - start < .seconds(5))
        await a.close()
    } }

    @Test func cancellationFromAnotherLoopWakesAWaiterPromptlyAndTheSocketStaysUsable() async throws { try await withDescriptorCheck {
        let (loopA, loopB) = (GroupFixtures.two.loops[0], GroupFixtures.two.loops[1])
        let (a, b) = try AsyncSocket.pair(on: loopB)
        let reader = Task(executorPreference: loopA) { try await b.read(upTo: 16) }
        try await CoreFixtures.waitUntil("the read waits") { await b.coreTestWaitState().reading }
        let start = ContinuousClock.now
        // Cancelled from loop A's thread (the cancellation handler runs there and hands off to loop B).
        loopA.execute { reader.cancel() }
        let error = await caught { _ = try await CoreFixtures.value(of: reader, within: .seconds(10)) }
        #expect(error is CancellationError, "got \(String(describing: error))")
        #expect(ContinuousClock.now - start < .seconds(5))
        try await a.write([42])
        #expect(try await loopA.run { try await b.read(upTo: 16) } == [42])
        await a.close()
        await b.close()
    } }

    /// Two loops each block in an `executeAndWait` aimed at the other (as two handlers do when each closes a
    /// server whose listener is on the other loop): both finish, neither deadlocks.
    @Test func loopsWaitingOnEachOtherDoNotDeadlock() async throws {
        let group = EventLoopGroup(loopCount: 2)  // its own loops: a deadlock would wedge them for good
        let (x, y) = (group.loops[0], group.loops[1])
        let arrived = Atomic<Int>(0)
        let finished = Mutex(0)
        let done = DispatchSemaphore(value: 0)
        for (here, there) in [(x, y), (y, x)] {
            here.execute {
                // Both loops are inside their closures before either waits on the other.
                arrived.add(1, ordering: .relaxed)
                while arrived.load(ordering: .relaxed) < 2 { sched_yield() }
                there.executeAndWait { if there.inLoop { finished.withLock { $0 += 1 } } }
                done.signal()
            }
        }
        let result = await Task.detached {
            (done.wait(timeout: .now() + 20), done.wait(timeout: .now() + 20))
        }.value
        #expect(result == (.success, .success), "two loops waiting on each other deadlocked")
        #expect(finished.withLock { $0 } == 2)
    }

    @Test func serverClosedFromAHandlerOnAnotherLoop() async throws { try await withDescriptorCheck {
        let group = GroupFixtures.two
        let server = try AsyncServer(host: "127.0.0.1", port: 0, group: group)
        let serving = Task {
            try await server.serve { client in
                if client.eventLoop !== server.eventLoop {
                    server.close()  // from the other loop's thread: waits for the listener's loop
                    try await client.write([1])
                } else {
                    try await client.write([0])
                }
                _ = try await client.read(upTo: 1)
            }
        }
        var closedFromOtherLoop = false
        for _ in 0..<8 where !closedFromOtherLoop {
            let socket = try await AsyncSocket.connect(to: server.localAddress, timeout: .seconds(10))
            closedFromOtherLoop = try await socket.read(exactly: 1) == [1]
            await socket.close()
        }
        #expect(closedFromOtherLoop)
        try await CoreFixtures.value(of: serving, within: .seconds(20))
        #expect(server.isClosed)
    } }
}

/// 1,000 connections through a server on two loops: every one echoed, both loops used, no descriptor left.
@Suite(.serialized) struct EventLoopGroupChurnTests {
    @Test func thousandConnectionsOverTwoLoopsLeaveNoDescriptors() async throws {
        GroupFixtures.warmUp()
        try await withDescriptorCheck {
            let group = GroupFixtures.two
            let server = try AsyncServer(host: "127.0.0.1", port: 0, group: group)
            let perLoop = Mutex<[ObjectIdentifier: Int]>([:])
            let serving = Task {
                try await server.serve { client in
                    perLoop.withLock { $0[ObjectIdentifier(client.eventLoop), default: 0] += 1 }
                    try await GroupFixtures.echo(client)
                }
            }
            try await CoreFixtures.within(.seconds(120), "1,000 connections") {
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    for worker in 0..<8 {
                        tasks.addTask {
                            for index in 0..<125 {
                                let socket = try await AsyncSocket.connect(to: server.localAddress, timeout: .seconds(10))
                                let token = [UInt8(worker), UInt8(index)]
                                try await socket.write(token)
                                #expect(try await socket.read(exactly: 2) == token)
                                await socket.close()
                            }
                        }
                    }
                    try await tasks.waitForAll()
                }
            }
            server.close()
            try await CoreFixtures.value(of: serving, within: .seconds(20))
            let counts = perLoop.withLock { $0 }
            #expect(counts.values.reduce(0, +) == 1000)
            #expect(counts.count == 2 && counts.values.allSatisfy { $0 >= 400 }, "round-robin over 2 loops: \(counts.values.sorted())")
        }
    }
}
