import Foundation
import Testing
@testable import AsyncSockets

/// Issue 11 item 4: lookups stuck in `getaddrinfo` (a DNS server that never answers) must not hold up later
/// ones once their callers have gone, and `connect`'s `timeout` bounds resolution too.
@Suite struct ResolverStallTests {
    /// Four stuck lookups whose callers were cancelled filled the old pool (four threads): the next lookup, even
    /// of a name the system answers at once, waited behind them. Now the abandoned threads stop counting.
    @Test func cancelledStuckLookupsDoNotHoldLaterOnes() async throws {
        let gate = StuckLookups()
        defer { gate.release() }
        let pool = ResolverPool(maximumThreads: 4, threadLimit: 8)
        let resolver = SystemResolver(pool: pool, lookup: gate.lookup)
        let stuck = (0..<4).map { n in Task { try await resolver.resolve(Endpoint(host: "stuck\(n).test", port: 1)) } }
        try await CoreFixtures.waitUntil("four lookups are stuck", timeout: .seconds(10)) { gate.stuckCount == 4 }
        for task in stuck { task.cancel() }
        for task in stuck { await #expect(throws: CancellationError.self) { try await task.value } }
        // A quick name resolves now, although all four earlier lookups are still inside "getaddrinfo".
        let quick = Task { try await resolver.resolve(Endpoint(host: "localhost", port: 1)) }
        #expect(try await CoreFixtures.value(of: quick, within: .seconds(5)).count == 1)
        #expect(gate.stuckCount == 4)
        #expect(pool.threadCounts.abandoned == 4)

        // The total stays bounded: with all eight threads taken (four abandoned, four live and stuck), a
        // further lookup queues until one comes back.
        let live = (0..<4).map { n in Task { try await resolver.resolve(Endpoint(host: "stuck-live\(n).test", port: 1)) } }
        try await CoreFixtures.waitUntil("eight lookups are stuck", timeout: .seconds(10)) { gate.stuckCount == 8 }
        #expect(pool.threadCounts.all == 8)
        let queued = Task { try await resolver.resolve(Endpoint(host: "localhost", port: 2)) }
        try await Task.sleep(for: .milliseconds(100))
        #expect(pool.threadCounts.all == 8, "no thread beyond threadLimit")
        gate.release()
        #expect(try await CoreFixtures.value(of: queued, within: .seconds(5)).count == 1)
        for task in live { #expect(try await CoreFixtures.value(of: task, within: .seconds(5)).count == 1) }
        // Back from the abandoned lookups, the surplus threads end: at most maximumThreads remain.
        try await CoreFixtures.waitUntil("the surplus threads ended", timeout: .seconds(10)) {
            pool.threadCounts.all <= 4 && pool.threadCounts.abandoned == 0
        }
    }

    /// Lookups whose caller's `connect` timed out count as abandoned too.
    @Test func timedOutLookupsDoNotHoldLaterOnes() async throws {
        let gate = StuckLookups()
        defer { gate.release() }
        let pool = ResolverPool(maximumThreads: 2, threadLimit: 8)
        let resolver = SystemResolver(pool: pool, lookup: gate.lookup)
        for n in 0..<2 {
            let started = ContinuousClock.now
            let error = await caught {
                _ = try await AsyncSocket.connect(to: Endpoint(host: "stuck\(n).test", port: 1), timeout: .milliseconds(200), resolver: resolver)
            }
            expectSocketError(error, [ETIMEDOUT])
            #expect((error as? SocketError)?.operation == "resolve")
            #expect(error.map { "\($0)" }?.contains("stuck\(n).test") == true, "\(String(describing: error))")
            #expect(ContinuousClock.now - started < .seconds(10), "the 200 ms timeout bounds a lookup that never returns")
        }
        // Both threads are stuck; a connect to a quick name still succeeds.
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let task = Task {
            try await AsyncSocket.connect(to: Endpoint(host: "localhost", port: server.localAddress.port!), timeout: .seconds(5), resolver: resolver)
        }
        let socket = try await CoreFixtures.value(of: task, within: .seconds(5))
        await socket.close()
        server.close()
    }

    /// `connect`'s `timeout` bounds resolution: a resolver that never answers (until cancelled) used to keep
    /// `connect(timeout: 200 ms)` waiting for as long as it took.
    @Test func connectTimeoutBoundsResolution() async throws {
        let started = ContinuousClock.now
        let task = Task {
            try await AsyncSocket.connect(to: Endpoint(host: "silent.test", port: 1), timeout: .milliseconds(200), resolver: SilentResolver())
        }
        let error = await caught { _ = try await CoreFixtures.value(of: task, within: .seconds(20)) }
        expectSocketError(error, [ETIMEDOUT])
        #expect((error as? SocketError)?.operation == "resolve")
        // The resolver never answers (it sleeps for 60 s): any bound well below that proves the timeout ends
        // it; 10 s leaves room for a loaded 2-core machine (3 s was exceeded once, at 3.19 s, while every test
        // that started in the suite's first seconds took ~3.2 s).
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .milliseconds(190) && elapsed < .seconds(10), "took \(elapsed)")
        // Without a timeout, cancellation still ends it.
        let unbounded = Task { try await AsyncSocket.connect(to: Endpoint(host: "silent.test", port: 1), resolver: SilentResolver()) }
        try await Task.sleep(for: .milliseconds(20))
        unbounded.cancel()
        await #expect(throws: CancellationError.self) { _ = try await CoreFixtures.value(of: unbounded, within: .seconds(5)) }
    }

    /// The rest of the timeout, not a fresh one, bounds the attempts after a slow resolution: 1 s to resolve
    /// and a 1.2 s timeout end a connect to an address that never answers after 1.2 s (it took 2.2 s).
    @Test func attemptsGetWhatIsLeftOfTheTimeout() async throws { try await withDescriptorCheck {
        let (server, filler) = try await TimeoutTests.blackhole()
        let target = server.localAddress
        let started = ContinuousClock.now
        let error = await caught {
            _ = try await AsyncSocket.connect(to: Endpoint(host: "slow.test", port: target.port!), timeout: .milliseconds(1200),
                                              resolver: SlowResolver(delay: .seconds(1), address: target))
        }
        let elapsed = ContinuousClock.now - started
        expectSocketError(error, [ETIMEDOUT])
        #expect((error as? SocketError)?.operation == "connect")
        #expect(elapsed >= .milliseconds(1150) && elapsed < .milliseconds(2000), "took \(elapsed)")
        await filler.close()
        // With time to spare, the socket keeps the full timeout for its reads and writes.
        let live = try AsyncServer(host: "127.0.0.1", port: 0)
        let socket = try await AsyncSocket.connect(to: Endpoint(host: "slow.test", port: 1), timeout: .seconds(5),
                                                   resolver: SlowResolver(delay: .milliseconds(50), address: live.localAddress))
        #expect(await socket.timeout == .seconds(5))
        await socket.close()
        live.close()
        server.close()
    } }
}

/// A resolver that answers only when cancelled (with `CancellationError`).
private struct SilentResolver: AddressResolver {
    func resolve(_ endpoint: Endpoint) async throws -> [SocketAddress] {
        try await Task.sleep(for: .seconds(60))
        return []
    }
}

/// A resolver that answers `address` after `delay`.
private struct SlowResolver: AddressResolver {
    let delay: Duration
    let address: SocketAddress
    func resolve(_ endpoint: Endpoint) async throws -> [SocketAddress] {
        try await Task.sleep(for: delay)
        return [address]
    }
}

/// A stand-in `getaddrinfo`: names starting with "stuck" block until ``release()`` (or 20 s, so that a
/// failing test never hangs); others answer 127.0.0.1 at once.
private final class StuckLookups: Sendable {
    private let condition = Locked<(released: Bool, stuck: Int)>((false, 0))
    private let wake = NSCondition()

    var lookup: @Sendable (Endpoint) -> Result<[SocketAddress], any Error> {
        { [self] endpoint in
            if endpoint.host.hasPrefix("stuck") {
                condition.withLock { $0.stuck += 1 }
                let deadline = Date(timeIntervalSinceNow: 20)
                wake.lock()
                while !condition.withLock({ $0.released }) && wake.wait(until: deadline) {}
                wake.unlock()
            }
            return Result { [try SocketAddress(ipv4: "127.0.0.1", port: endpoint.port)] }
        }
    }

    var stuckCount: Int { condition.withLock { $0.stuck } }

    func release() {
        wake.lock()
        condition.withLock { $0.released = true }
        wake.broadcast()
        wake.unlock()
    }
}

/// The real case, with glibc's resolver: in private network and mount namespaces whose resolv.conf points
/// at a UDP port that never answers (AsyncSocketsProbe binds 127.0.0.1:53 and never reads), four connects
/// by name cancelled after 200 ms, then `connect(to: "localhost", timeout: 1 s)` (it took 9.8 s: the four
/// threads sat in getaddrinfo), then a connect by name with a 500 ms timeout (it took 10 s).
@Suite struct StalledDNSNamespaceTests {
    @Test(.enabled(if: getuid() == 0, "needs root for unshare --net --mount"))
    func localhostAfterFourStalledLookups() async throws {
        let probe = try ExampleProcess.path("AsyncSocketsProbe")
        let resolv = "/tmp/as-stalled-resolv-\(getpid())"
        try "nameserver 127.0.0.1\noptions timeout:5 attempts:2\n".write(toFile: resolv, atomically: true, encoding: .utf8)
        defer { unlink(resolv) }
        let script = "ip link set lo up && mount --bind \"$1\" /etc/resolv.conf && exec \"$2\" stalled-dns 4"
        let result = try await ServerTesting.run("unshare", ["--net", "--mount", "sh", "-c", script, "sh", resolv, probe],
                                                 limit: .seconds(60))
        #expect(result.status == 0, "probe: \(result.stdout) \(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map { $0.split(separator: " ") }
        let localhost = try #require(lines.first, "probe printed: \(result.stdout) \(result.stderr)")
        #expect(localhost.prefix(2) == ["localhost", "ok"], "\(result.stdout)")
        #expect(localhost.count >= 3 && Int(localhost[2]).map { $0 < 1000 } == true, "\(result.stdout)")
        let stuck = try #require(lines.dropFirst().first, "probe printed: \(result.stdout)")
        #expect(stuck.prefix(2) == ["stuck", "ETIMEDOUT"], "\(result.stdout)")
        #expect(stuck.count >= 3 && Int(stuck[2]).map { $0 >= 450 && $0 < 2000 } == true, "\(result.stdout)")
    }
}
