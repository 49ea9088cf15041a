#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Testing
@testable import AsyncSockets

// Happy Eyeballs (`AsyncSocket.connect(to: Endpoint, ...)`), on loopback with an injected resolver.
//
// trio's scenario table (test_highlevel_open_tcp_stream.py) uses a fake network with a virtual clock; here
// the network is real and its behaviours are made deterministic (see Support/LoopbackBehaviours.swift):
// R = refused at once (`RefusingPort`), B = hangs (`BlackholeListener`), L = connects at once (`SilentListener`).
// Attempt start times come from the race's observer events. Bounds are generous for a loaded 2-core machine
// but far apart enough to tell "started after the delay" from "started because the previous attempt failed"
// from "waited for a timeout".

/// The endpoint every race with an injected resolver asks for (the resolver ignores it).
private let raceEndpoint = Endpoint(host: "race.test", port: 1)

/// Runs one race to `addresses` (through a ``FixedResolver``), recording its events in `recorder`.
private func race(_ addresses: [SocketAddress], delay: Duration = .milliseconds(300), timeout: Duration? = nil,
                  source: Endpoint? = nil, allErrors: Bool = false,
                  recorder: RaceRecorder = RaceRecorder()) async throws -> AsyncSocket {
    try await AsyncSocket.connect(to: raceEndpoint, timeout: timeout, sourceAddress: source, allErrors: allErrors,
                                  happyEyeballsDelay: delay, resolver: FixedResolver(addresses),
                                  observer: recorder.observer)
}

/// The error `body` throws, or nil (closing the socket it unexpectedly returned).
private func error(of body: () async throws -> AsyncSocket) async -> (any Error)? {
    do {
        let socket = try await body()
        await socket.close()
        return nil
    } catch {
        return error
    }
}

private func ms(_ value: Double) -> Duration { .milliseconds(value) }

@Suite struct HappyEyeballsTests {

    // MARK: trio's scenarios

    /// A refusal starts the next attempt at once, long before the delay (trio: "errors expedite").
    @Test func refusedThenLive() async throws { try await withDescriptorCheck {
        let refused = try RefusingPort()
        let live = try SilentListener()
        defer { refused.close(); live.close() }
        let recorder = RaceRecorder()
        let begin = ContinuousClock.now
        let socket = try await race([refused.address, live.address], delay: .seconds(5), recorder: recorder)
        let elapsed = ContinuousClock.now - begin
        #expect(try await socket.remoteAddress == live.address)
        await socket.close()
        let starts = recorder.startTimes
        #expect(starts.count == 2, "\(recorder.timeline)")
        #expect(starts[1].map { $0 < ms(1500) } == true, "the second attempt waited for the delay:\n\(recorder.timeline)")
        #expect(recorder.outcomes == [0: "failed ECONNREFUSED", 1: "won"], "\(recorder.timeline)")
        #expect(elapsed < .milliseconds(1500))
    } }

    /// An attempt that hangs is joined by the next one after the delay; the late one wins, the first is
    /// cancelled.
    @Test func slowThenLiveAfterTheDelay() async throws { try await withDescriptorCheck {
        let hole = try BlackholeListener()
        let live = try SilentListener()
        defer { hole.close(); live.close() }
        let recorder = RaceRecorder()
        let socket = try await race([hole.address, live.address], delay: ms(300), recorder: recorder)
        #expect(try await socket.remoteAddress == live.address)
        await socket.close()
        let starts = recorder.startTimes
        let second = try #require(starts[1], "\(recorder.timeline)")
        #expect(second >= ms(295) && second < ms(2000), "started after the delay:\n\(recorder.timeline)")
        #expect(recorder.outcomes == [0: "cancelled", 1: "won"], "\(recorder.timeline)")
    } }

    /// trio's "basic fallthrough": two attempts that hang, a third that connects; attempts start a delay apart.
    @Test func threeStaggeredAttempts() async throws { try await withDescriptorCheck {
        let hole1 = try BlackholeListener()
        let hole2 = try BlackholeListener()
        let live = try SilentListener()
        defer { hole1.close(); hole2.close(); live.close() }
        let recorder = RaceRecorder()
        let socket = try await race([hole1.address, hole2.address, live.address], delay: ms(300), recorder: recorder)
        #expect(try await socket.remoteAddress == live.address)
        await socket.close()
        let starts = recorder.startTimes
        let s0 = try #require(starts[0]), s1 = try #require(starts[1]), s2 = try #require(starts[2])
        #expect(s1 - s0 >= ms(295) && s2 - s1 >= ms(295), "a delay apart:\n\(recorder.timeline)")
        #expect(s2 < ms(2500), "\(recorder.timeline)")
        #expect(recorder.outcomes == [0: "cancelled", 1: "cancelled", 2: "won"], "\(recorder.timeline)")
    } }

    /// trio's "early success": the second attempt connects at once, so the third address is never tried.
    @Test func earlySuccessLeavesLaterAddressesUntried() async throws { try await withDescriptorCheck {
        let hole = try BlackholeListener()
        let live = try SilentListener()
        let untried = try SilentListener()
        defer { hole.close(); live.close(); untried.close() }
        let recorder = RaceRecorder()
        let socket = try await race([hole.address, live.address, untried.address], delay: ms(300), recorder: recorder)
        #expect(try await socket.remoteAddress == live.address)
        await socket.close()
        #expect(recorder.startedAddresses == [hole.address, live.address], "\(recorder.timeline)")
        #expect(live.hasPendingConnection)
        #expect(!untried.hasPendingConnection, "the third address was connected to")
    } }

    /// The first attempt answers within the delay: it wins and no other attempt starts.
    @Test func firstAnswerWithinTheDelayWins() async throws { try await withDescriptorCheck {
        let first = try SilentListener()
        let second = try SilentListener(host: "::1")
        defer { first.close(); second.close() }
        let recorder = RaceRecorder()
        let socket = try await race([first.address, second.address], delay: .seconds(2), recorder: recorder)
        #expect(try await socket.remoteAddress == first.address)
        await socket.close()
        #expect(recorder.startedAddresses == [first.address], "\(recorder.timeline)")
        #expect(recorder.outcomes == [0: "won"])
        #expect(!second.hasPendingConnection)
    } }

    /// trio's "errors expedite": two refusals start the third attempt at once; the fourth waits for the delay.
    @Test func errorsExpediteTheNextAttempt() async throws { try await withDescriptorCheck {
        let refused1 = try RefusingPort()
        let refused2 = try RefusingPort()
        let hole = try BlackholeListener()
        let live = try SilentListener()
        defer { refused1.close(); refused2.close(); hole.close(); live.close() }
        let recorder = RaceRecorder()
        let delay = Duration.seconds(1)
        let socket = try await race([refused1.address, refused2.address, hole.address, live.address],
                                    delay: delay, recorder: recorder)
        #expect(try await socket.remoteAddress == live.address)
        await socket.close()
        let starts = recorder.startTimes
        let s2 = try #require(starts[2], "\(recorder.timeline)"), s3 = try #require(starts[3], "\(recorder.timeline)")
        #expect(s2 < ms(600), "refusals did not expedite:\n\(recorder.timeline)")
        #expect(s3 - s2 >= delay && s3 - s2 < ms(2500), "the fourth attempt waits one delay:\n\(recorder.timeline)")
        #expect(recorder.outcomes == [0: "failed ECONNREFUSED", 1: "failed ECONNREFUSED", 2: "cancelled", 3: "won"],
                "\(recorder.timeline)")
    } }

    // MARK: Family interleaving

    /// trio's "reorders families": the IPv6 address moves right after the first IPv4 one, and wins.
    @Test func familyInterleavingIPv4First() async throws { try await withDescriptorCheck {
        let hole4 = try BlackholeListener(host: "127.0.0.2")
        let live4 = try SilentListener(host: "127.0.0.1")
        let live6 = try SilentListener(host: "::1")
        defer { hole4.close(); live4.close(); live6.close() }
        let recorder = RaceRecorder()
        let socket = try await race([hole4.address, live4.address, live6.address], delay: ms(300), recorder: recorder)
        #expect(try await socket.remoteAddress == live6.address)
        await socket.close()
        let resolved = recorder.events.first { if case .resolved = $0.kind { true } else { false } }
        #expect(resolved?.addresses == [hole4.address, live6.address, live4.address])
        #expect(recorder.startedAddresses == [hole4.address, live6.address], "\(recorder.timeline)")
        #expect(!live4.hasPendingConnection)
    } }

    /// The same with IPv6 first: the first IPv4 address moves to the second place.
    @Test func familyInterleavingIPv6First() async throws { try await withDescriptorCheck {
        let hole6 = try BlackholeListener(host: "::1")
        let live6 = try SilentListener(host: "::1")
        let live4 = try SilentListener(host: "127.0.0.1")
        defer { hole6.close(); live6.close(); live4.close() }
        let recorder = RaceRecorder()
        let socket = try await race([hole6.address, live6.address, live4.address], delay: ms(300), recorder: recorder)
        #expect(try await socket.remoteAddress == live4.address)
        await socket.close()
        #expect(recorder.startedAddresses == [hole6.address, live4.address], "\(recorder.timeline)")
        #expect(!live6.hasPendingConnection)
    } }

    // MARK: Every attempt fails

    /// Without `allErrors` the error of the last address in attempt order is thrown (Python's rule).
    @Test func allRefusedThrowsTheLastAddressError() async throws { try await withDescriptorCheck {
        let a4 = try RefusingPort(), b4 = try RefusingPort(), a6 = try RefusingPort(host: "::1")
        defer { a4.close(); b4.close(); a6.close() }
        let recorder = RaceRecorder()
        let thrown = await error { try await race([a4.address, b4.address, a6.address], delay: .seconds(5), recorder: recorder) }
        let socketError = try #require(thrown as? SocketError, "\(String(describing: thrown))")
        #expect(socketError.code == ECONNREFUSED)
        #expect(socketError.address == b4.address, "attempt order is a4, a6, b4")
        #expect(recorder.startedAddresses == [a4.address, a6.address, b4.address])
    } }

    /// With `allErrors`, a group of one SocketError per address, in attempt order, each naming its address.
    @Test func allRefusedWithAllErrors() async throws { try await withDescriptorCheck {
        let a4 = try RefusingPort(), b4 = try RefusingPort(), a6 = try RefusingPort(host: "::1")
        defer { a4.close(); b4.close(); a6.close() }
        let thrown = await error { try await race([a4.address, b4.address, a6.address], delay: .seconds(5), allErrors: true) }
        let group = try #require(thrown as? ConnectErrorGroup, "\(String(describing: thrown))")
        let errors = group.errors.compactMap { $0 as? SocketError }
        #expect(errors.count == 3)
        #expect(errors.map(\.address) == [a4.address, a6.address, b4.address])
        #expect(errors.allSatisfy { $0.code == ECONNREFUSED })
        #expect(group.endpoint == raceEndpoint)
        let lines = group.description.split(separator: "\n")
        #expect(lines.first == "all 3 connection attempts to race.test:1 failed:")
        #expect(lines.count == 4)
        #expect(lines.dropFirst().first?.contains("1. connect to \(a4.address) failed: Connection refused (ECONNREFUSED)") == true,
                "\(group.description)")
    } }

    /// trio's "all fail" with a slow failure: the last address in attempt order fails first in time, the
    /// first one last (a timeout). Python's rule picks by attempt order; the group lists attempt order.
    @Test func errorsFollowAttemptOrderNotCompletionOrder() async throws { try await withDescriptorCheck {
        let hole = try BlackholeListener()
        let refused = try RefusingPort(host: "::1")
        defer { hole.close(); refused.close() }
        let thrown = await error { try await race([hole.address, refused.address], delay: ms(100), timeout: ms(700)) }
        let last = try #require(thrown as? SocketError, "\(String(describing: thrown))")
        #expect(last.address == refused.address && last.code == ECONNREFUSED, "\(last)")

        let recorder = RaceRecorder()
        let grouped = await error {
            try await race([hole.address, refused.address], delay: ms(100), timeout: ms(700), allErrors: true, recorder: recorder)
        }
        let group = try #require(grouped as? ConnectErrorGroup, "\(String(describing: grouped))")
        let errors = group.errors.compactMap { $0 as? SocketError }
        #expect(errors.map(\.address) == [hole.address, refused.address])
        #expect(errors.map(\.code) == [ETIMEDOUT, ECONNREFUSED])
        // The completion order was the reverse: the refusal came first.
        let failures = recorder.events.compactMap { if case .failed = $0.kind { $0.attempt } else { nil } }
        #expect(failures == [1, 0], "\(recorder.timeline)")
    } }

    // MARK: timeout

    /// `timeout` bounds the attempts: a connect that hangs fails with ETIMEDOUT naming the address.
    @Test func perAttemptTimeout() async throws { try await withDescriptorCheck {
        let hole = try BlackholeListener()
        defer { hole.close() }
        #if os(Linux)
        #expect(hole.fillerCount == 1, "backlog 0 admits one connection on Linux")
        #endif
        let begin = ContinuousClock.now
        let thrown = await error { try await race([hole.address], timeout: ms(500)) }
        let elapsed = ContinuousClock.now - begin
        let socketError = try #require(thrown as? SocketError, "\(String(describing: thrown))")
        #expect(socketError.code == ETIMEDOUT)
        #expect(socketError.isTimeout)
        #expect(socketError.address == hole.address)
        #expect(elapsed >= ms(500) && elapsed < ms(3000), "\(elapsed)")
    } }

    /// `timeout` bounds the whole call (issue 11): an attempt that hangs until it passes ends the race, and
    /// no later attempt starts after it (they used to get a fresh `timeout` each, so a call could take
    /// several times its timeout); the winner keeps `timeout` as its default for reads.
    @Test func timeoutEndsTheRaceAndStaysOnTheSocket() async throws { try await withDescriptorCheck {
        let hole = try BlackholeListener()
        let live = try SilentListener()
        defer { hole.close(); live.close() }
        let recorder = RaceRecorder()
        let begin = ContinuousClock.now
        let thrown = await error { try await race([hole.address, live.address], delay: .seconds(10), timeout: ms(600), recorder: recorder) }
        let elapsed = ContinuousClock.now - begin
        #expect((thrown as? SocketError)?.code == ETIMEDOUT, "\(String(describing: thrown))")
        #expect(elapsed >= ms(590) && elapsed < ms(3000), "\(elapsed)")
        #expect(recorder.outcomes == [0: "failed ETIMEDOUT"], "\(recorder.timeline)")

        let socket = try await race([live.address], timeout: ms(600))
        #expect(await socket.timeout == ms(600))
        // The silent listener never sends: the read times out after the socket's timeout.
        let readBegin = ContinuousClock.now
        do {
            _ = try await socket.read(upTo: 10)
            Issue.record("read returned without data being sent")
        } catch let error as SocketError {
            #expect(error.code == ETIMEDOUT)
        }
        let waited = ContinuousClock.now - readBegin
        #expect(waited >= ms(600) && waited < ms(3000), "\(waited)")
        await socket.setTimeout(nil)
        #expect(await socket.timeout == nil)
        await socket.close()
    } }

    // MARK: Losers and cancellation

    /// Every loser's descriptor is closed before `connect` returns: only the winner's is new.
    @Test func losersAreClosedBeforeConnectReturns() async throws { try await withDescriptorCheck {
        let hole1 = try BlackholeListener()
        let hole2 = try BlackholeListener(host: "::1")
        let live = try SilentListener()
        defer { hole1.close(); hole2.close(); live.close() }
        let before = openDescriptors()
        let recorder = RaceRecorder()
        let socket = try await race([hole1.address, hole2.address, live.address], delay: ms(200), recorder: recorder)
        let opened = openDescriptors().subtracting(before)
        let winner = await socket.descriptor
        #expect(opened == [winner], "\(recorder.timeline)")
        #expect(recorder.outcomes == [0: "cancelled", 1: "cancelled", 2: "won"], "\(recorder.timeline)")
        await socket.close()
    } }

    /// With no delay every attempt starts at once and several may connect: one socket survives.
    @Test func simultaneousConnectsLeaveOneSocket() async throws { try await withDescriptorCheck {
        let listeners = try [SilentListener(), SilentListener(host: "::1"), SilentListener(host: "127.0.0.3")]
        defer { for listener in listeners { listener.close() } }
        let before = openDescriptors()
        let recorder = RaceRecorder()
        let socket = try await race(listeners.map(\.address), delay: .zero, recorder: recorder)
        let opened = openDescriptors().subtracting(before)
        let winner = await socket.descriptor
        #expect(opened == [winner], "\(recorder.timeline)")
        let outcomes = recorder.outcomes
        #expect(outcomes.values.filter { $0 == "won" }.count == 1, "\(recorder.timeline)")
        #expect(outcomes.count == recorder.startTimes.count, "every started attempt ends:\n\(recorder.timeline)")
        await socket.close()
    } }

    /// Cancelling the caller mid-race (three attempts hanging) returns promptly and leaves nothing open.
    @Test func cancellationMidRace() async throws { try await withDescriptorCheck {
        let holes = try [BlackholeListener(), BlackholeListener(host: "::1"), BlackholeListener()]
        defer { for hole in holes { hole.close() } }
        let before = openDescriptors()
        let recorder = RaceRecorder()
        let addresses = holes.map(\.address)
        let task = Task { try await race(addresses, delay: ms(200), recorder: recorder) }
        Task { _ = await task.result; recorder.finish() }
        var started = 0
        for await event in recorder.stream {
            if case .started = event.kind { started += 1 }
            if started == 3 { break }
        }
        #expect(started == 3, "\(recorder.timeline)")
        let cancelledAt = ContinuousClock.now
        task.cancel()
        let result = await task.result
        let returnedAfter = ContinuousClock.now - cancelledAt
        switch result {
        case .success(let socket):
            Issue.record("connected to \(String(describing: try? await socket.remoteAddress))")
            await socket.close()
        case .failure(let error):
            #expect(error is CancellationError, "\(error)")
        }
        #expect(returnedAfter < ms(1000), "\(returnedAfter)")
        #expect(openDescriptors().subtracting(before).isEmpty)
        #expect(recorder.outcomes == [0: "cancelled", 1: "cancelled", 2: "cancelled"], "\(recorder.timeline)")
    } }

    /// Cancelling while the resolver works returns promptly; no attempt starts.
    @Test func cancellationDuringResolution() async throws {
        let (asked, askedContinuation) = AsyncStream.makeStream(of: Void.self)
        let recorder = RaceRecorder()
        let task = Task {
            try await AsyncSocket.connect(to: raceEndpoint, resolver: StalledResolver(asked: askedContinuation),
                                          observer: recorder.observer)
        }
        for await _ in asked { break }
        let cancelledAt = ContinuousClock.now
        task.cancel()
        let result = await task.result
        #expect(ContinuousClock.now - cancelledAt < ms(1000))
        if case .success(let socket) = result { await socket.close() }
        #expect(throws: CancellationError.self) { try result.get() }
        #expect(recorder.events.isEmpty)
    }

    // MARK: sourceAddress

    /// Each attempt binds the source address first.
    @Test func sourceAddressIsBound() async throws { try await withDescriptorCheck {
        let live = try SilentListener()
        defer { live.close() }
        let socket = try await race([live.address], source: Endpoint(host: "127.0.0.3", port: 0))
        let local = try await socket.localAddress
        #expect(local.host == "127.0.0.3")
        #expect(local.port != 0)
        await socket.close()
    } }

    /// `""` means any address, of either family.
    @Test func emptySourceHostMeansAnyAddress() async throws { try await withDescriptorCheck {
        let live4 = try SilentListener()
        let live6 = try SilentListener(host: "::1")
        defer { live4.close(); live6.close() }
        for live in [live4, live6] {
            let socket = try await race([live.address], source: Endpoint(host: "", port: 0))
            #expect(try await socket.localAddress.family == live.address.family)
            #expect(try await socket.remoteAddress == live.address)
            await socket.close()
        }
    } }

    /// An IPv4 source address cannot serve an IPv6 attempt: that attempt alone fails, at once, with an
    /// error naming its address; the IPv4 attempt starts without waiting for the delay and wins.
    @Test func sourceFamilyMismatchFailsOnlyThatAttempt() async throws { try await withDescriptorCheck {
        let live6 = try SilentListener(host: "::1")
        let live4 = try SilentListener()
        defer { live6.close(); live4.close() }
        let recorder = RaceRecorder()
        let socket = try await race([live6.address, live4.address], delay: .seconds(5),
                                    source: Endpoint(host: "127.0.0.3", port: 0), recorder: recorder)
        #expect(try await socket.remoteAddress == live4.address)
        #expect(try await socket.localAddress.host == "127.0.0.3")
        await socket.close()
        #expect(recorder.outcomes == [0: "failed EAFNOSUPPORT", 1: "won"], "\(recorder.timeline)")
        #expect(recorder.startTimes[1].map { $0 < ms(1500) } == true, "\(recorder.timeline)")
        #expect(!live6.hasPendingConnection)

        let thrown = await error { try await race([live6.address], source: Endpoint(host: "127.0.0.3", port: 0), allErrors: true) }
        let group = try #require(thrown as? ConnectErrorGroup, "\(String(describing: thrown))")
        let only = try #require(group.errors.first as? SocketError)
        #expect(group.errors.count == 1)
        #expect(only.code == EAFNOSUPPORT && only.address == live6.address, "\(only)")
        #expect(only.description.contains("127.0.0.3"), "\(only)")
    } }

    /// A bind failure (a source address this host does not have) is reported for the attempt's address.
    @Test func sourceBindFailureNamesTheAttemptAddress() async throws { try await withDescriptorCheck {
        let live = try SilentListener()
        defer { live.close() }
        // 192.0.2.0/24 (TEST-NET-1) is not on loopback: bind fails with EADDRNOTAVAIL before any packet.
        let thrown = await error { try await race([live.address], source: Endpoint(host: "192.0.2.123", port: 0)) }
        let socketError = try #require(thrown as? SocketError, "\(String(describing: thrown))")
        #expect(socketError.code == EADDRNOTAVAIL)
        #expect(socketError.address == live.address)
        #expect(socketError.description.contains("192.0.2.123"), "\(socketError)")
        #expect(!live.hasPendingConnection)
    } }

    /// A source host that is not numeric fails the call at once with EINVAL, before resolution.
    @Test func nonNumericSourceAddressIsRejected() async throws {
        let resolver = FixedResolver([try SocketAddress(ipv4: "127.0.0.1", port: 9)])
        let thrown = await error {
            try await AsyncSocket.connect(to: raceEndpoint, sourceAddress: Endpoint(host: "localhost", port: 0), resolver: resolver)
        }
        let socketError = try #require(thrown as? SocketError, "\(String(describing: thrown))")
        #expect(socketError.code == EINVAL)
        #expect(resolver.calls.all.isEmpty)
    }

    // MARK: Resolution

    /// The resolver's error is the call's error; it is asked for the endpoint as given.
    @Test func resolverErrorIsThrown() async throws {
        struct LookupFailed: Error, Equatable { var reason: String }
        let resolver = FixedResolver(failingWith: LookupFailed(reason: "no route to DNS"))
        let recorder = RaceRecorder()
        let thrown = await error {
            try await AsyncSocket.connect(to: raceEndpoint, resolver: resolver, observer: recorder.observer)
        }
        #expect(thrown as? LookupFailed == LookupFailed(reason: "no route to DNS"))
        #expect(resolver.calls.all == [raceEndpoint])
        #expect(recorder.events.isEmpty)
    }

    /// An empty resolution fails with ENOENT (operation "resolve") naming the endpoint.
    @Test func emptyResolutionFails() async throws {
        let thrown = await error { try await race([]) }
        let socketError = try #require(thrown as? SocketError, "\(String(describing: thrown))")
        #expect(socketError.code == ENOENT)
        #expect(socketError.operation == "resolve")
        #expect(socketError.description.contains("race.test:1"), "\(socketError)")
    }

    /// The system resolver, end to end: "localhost" (from /etc/hosts) reaches a listener on 127.0.0.1.
    @Test func systemResolverOnLocalhost() async throws { try await withDescriptorCheck {
        let live = try SilentListener()
        defer { live.close() }
        let port = try #require(live.address.port)
        let addresses = try await SystemResolver().resolve(Endpoint(host: "localhost", port: port))
        #expect(addresses.contains(live.address), "\(addresses)")
        #expect(addresses.allSatisfy { $0.port == port && ($0.family == .ipv4 || $0.family == .ipv6) })
        let socket = try await AsyncSocket.connect(to: Endpoint(host: "localhost", port: port))
        #expect(try await socket.remoteAddress == live.address)
        await socket.close()
    } }

    /// A name that does not exist fails with a SocketError for "resolve" (`.invalid` never resolves, RFC 6761).
    @Test func systemResolverUnknownName() async throws { try await withDescriptorCheck {
        // Gated: getaddrinfo may hold a DNS socket open for seconds, which other tests' checks would count.
        do {
            let addresses = try await SystemResolver().resolve(Endpoint(host: "no-such-host.invalid", port: 80))
            Issue.record("resolved to \(addresses)")
        } catch let error as SocketError {
            #expect(error.operation == "resolve")
            #expect(error.code == ENOENT || error.code == EIO, "\(error)")
            #expect(error.description.contains("no-such-host.invalid"), "\(error)")
        }
    } }

    /// Numeric hosts never reach the lookup; names do.
    @Test func numericHostsSkipTheLookup() async throws {
        let lookups = FixedResolver.CallLog()
        let resolver = SystemResolver(pool: ResolverPool(maximumThreads: 1)) { endpoint in
            lookups.append(endpoint)
            return .success([])
        }
        #expect(try await resolver.resolve(Endpoint(host: "127.0.0.9", port: 7)) == [try SocketAddress(ipv4: "127.0.0.9", port: 7)])
        #expect(try await resolver.resolve(Endpoint(host: "::1", port: 7)) == [try SocketAddress(ipv6: "::1", port: 7)])
        #expect(lookups.all.isEmpty)
        #expect(try await resolver.resolve(Endpoint(host: "example.test", port: 7)) == [])
        #expect(lookups.all == [Endpoint(host: "example.test", port: 7)])
    }

    /// A resolve in an already cancelled task throws at once, whether the system would be quick or not.
    @Test func systemResolverCancelledBeforeStart() async throws {
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await SystemResolver().resolve(Endpoint(host: "localhost", port: 80))
        }
        await #expect(throws: CancellationError.self) { try await task.value }
    }

    /// Slow lookups run on the resolver's own threads: the cooperative pool stays free while they block,
    /// up to `maximumThreads` run at once (also when they arrive together at an idle thread), and
    /// cancelling a waiting task returns at once although its lookup is still blocked.
    @Test func slowLookupsNeitherBlockThePoolNorCancellation() async throws {
        let gate = LookupGate()
        defer { gate.open() }
        let pool = ResolverPool(maximumThreads: 4)
        let resolver = SystemResolver(pool: pool, lookup: gate.lookup)
        // One quick lookup, then wait until its thread is idle.
        #expect(try await resolver.resolve(Endpoint(host: "quick.test", port: 1)).count == 1)
        let idleDeadline = ContinuousClock.now + .seconds(5)
        while pool.idleThreads != 1 && ContinuousClock.now < idleDeadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(pool.idleThreads == 1)
        // Two requests in a burst: the idle thread takes one, a new thread must take the other (counting the
        // signalled-but-not-yet-woken idle thread as free for both serialised them).
        pool.submit(LookupRequest(endpoint: Endpoint(host: "blocked-a.test", port: 1), lookup: gate.lookup))
        pool.submit(LookupRequest(endpoint: Endpoint(host: "blocked-b.test", port: 1), lookup: gate.lookup))
        #expect(await gate.waitUntilBlocked(2, within: .seconds(5)) == 2, "the burst was serialised")

        let tasks = (0..<6).map { n in
            Task { try await resolver.resolve(Endpoint(host: "blocked\(n).test", port: 1)) }
        }
        // Two more lookups block (the pool's limit is four); the other four wait in its queue.
        #expect(await gate.waitUntilBlocked(4, within: .seconds(5)) == 4)

        // The cooperative pool (2 threads on this machine) still runs tasks: nothing waits for the gate,
        // which opens by itself after 10 s.
        let begin = ContinuousClock.now
        let sum = await withTaskGroup(of: Int.self) { group in
            for n in 1...8 { group.addTask { n } }
            return await group.reduce(0, +)
        }
        #expect(sum == 36)
        #expect(ContinuousClock.now - begin < ms(1000), "the cooperative pool was blocked")
        #expect(gate.blockedCount == 4, "no more than maximumThreads lookups ran while their callers waited")

        // Cancelling returns at once, for running and for queued lookups alike.
        let cancelledAt = ContinuousClock.now
        for task in tasks { task.cancel() }
        for task in tasks {
            await #expect(throws: CancellationError.self) { try await task.value }
        }
        #expect(ContinuousClock.now - cancelledAt < ms(1000))
        #expect(gate.isOpen == false, "the lookups were still blocked when the tasks returned")
    }

    // MARK: Ordering (RFC 8305 section 4), a pure function

    @Test func interleavingKeepsTheFirstAddressAndAlternatesFamilies() throws {
        let a4 = try SocketAddress(ipv4: "192.0.2.1", port: 1), b4 = try SocketAddress(ipv4: "192.0.2.2", port: 1)
        let c4 = try SocketAddress(ipv4: "192.0.2.3", port: 1)
        let a6 = try SocketAddress(ipv6: "2001:db8::1", port: 1), b6 = try SocketAddress(ipv6: "2001:db8::2", port: 1)
        let c6 = try SocketAddress(ipv6: "2001:db8::3", port: 1)
        #expect(interleaveFamilies([]) == [])
        #expect(interleaveFamilies([a4]) == [a4])
        #expect(interleaveFamilies([a4, b4, c4]) == [a4, b4, c4])
        #expect(interleaveFamilies([a6, b6, a4, b4]) == [a6, a4, b6, b4])
        #expect(interleaveFamilies([a4, b4, c4, a6]) == [a4, a6, b4, c4])
        #expect(interleaveFamilies([a4, a6, b6, c6]) == [a4, a6, b6, c6])
        #expect(interleaveFamilies([a6, b6, c6, a4, b4]) == [a6, a4, b6, b4, c6])
        // Within each family the resolver's order is kept.
        #expect(interleaveFamilies([b4, a6, c4, b6, a4]) == [b4, a6, c4, b6, a4])
        #expect(interleaveFamilies([c6, a4, b4, a6, b6, c4]) == [c6, a4, a6, b4, b6, c4])
    }
}

/// A stand-in for a slow `getaddrinfo`: names starting with "blocked" block until ``open()`` (or 10 s, so
/// a failing test never hangs); others answer 127.0.0.1 at once.
private final class LookupGate: @unchecked Sendable {
    // @unchecked Sendable: `opened` and `blocked` are only touched while holding `condition`.
    private let condition = NSCondition()
    private var opened = false
    private var blocked = 0

    var lookup: @Sendable (Endpoint) -> Result<[SocketAddress], any Error> {
        { [self] endpoint in
            if endpoint.host.hasPrefix("blocked") {
                condition.lock()
                blocked += 1
                condition.broadcast()
                let deadline = Date(timeIntervalSinceNow: 10)
                while !opened && condition.wait(until: deadline) {}
                condition.unlock()
            }
            return Result { [try SocketAddress(ipv4: "127.0.0.1", port: endpoint.port)] }
        }
    }

    var isOpen: Bool { condition.withLock { opened } }
    var blockedCount: Int { condition.withLock { blocked } }

    func open() {
        condition.withLock {
            opened = true
            condition.broadcast()
        }
    }

    /// Waits (on a thread of its own, not the cooperative pool) until `count` lookups block or `within`
    /// passes; returns how many blocked.
    func waitUntilBlocked(_ count: Int, within limit: Duration) async -> Int {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { [self] in
                condition.lock()
                let deadline = Date(timeIntervalSinceNow: Double(limit.components.seconds))
                while blocked < count && condition.wait(until: deadline) {}
                let result = blocked
                condition.unlock()
                continuation.resume(returning: result)
            }
        }
    }
}
