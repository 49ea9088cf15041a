import Foundation
import Testing
@testable import AsyncSockets

/// The descriptors this process has open now (names in /proc/self/fd, minus the one used to list them).
func openDescriptors() -> Set<Int32> {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    var result = Set(names.compactMap { Int32($0) })
    // The directory listing itself holds one descriptor while it runs; it is closed by now.
    result = result.filter { fcntl($0, F_GETFD) != -1 }
    // libdispatch opens timerfds lazily, one per timer class, the first time a `Task.sleep` (ours, the
    // library's Happy Eyeballs delay, or another test's running in parallel) lands in that class; which class
    // depends on thread QoS and timing, so one may appear during any test. The library never creates
    // timerfds (libevent times out through epoll_wait), so they are not counted.
    return result.filter { fd in
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")) != "anon_inode:[timerfd]"
    }
}

/// Serialises the tests that count descriptors: Swift Testing runs tests in parallel, and a count is only
/// meaningful while no other socket test opens or closes descriptors.
actor DescriptorTestGate {
    static let shared = DescriptorTestGate()
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var warmedUp = false

    func enter() async {
        if busy {
            await withCheckedContinuation { waiters.append($0) }
        } else {
            busy = true
        }
        if !warmedUp {
            warmedUp = true
            // Descriptors the runtime opens once, lazily: the event loop's epoll and eventfd, Dispatch's timer
            // machinery behind Task.sleep. Open them before the first baseline.
            _ = EventLoop.shared.description
            try? await Task.sleep(for: .milliseconds(1))
        }
    }

    func leave() {
        if waiters.isEmpty {
            busy = false
        } else {
            waiters.removeFirst().resume()
        }
    }
}

/// Runs `body` and then checks that every descriptor it opened is closed again: the shared leak check of
/// the socket tests. Tests using it never overlap with each other (see ``DescriptorTestGate``).
///
/// Closing can finish on the event loop a moment after `body` returns (a socket's last reference dropped on
/// another thread), so the check allows up to 5 seconds for the count to come back before failing.
func withDescriptorCheck<T>(_ sourceLocation: SourceLocation = #_sourceLocation,
                            _ body: () async throws -> T) async throws -> T {
    await DescriptorTestGate.shared.enter()
    GroupFixtures.warmUp()  // the test groups' loops exist before the baseline, whichever test makes them first
    let before = openDescriptors()
    let result: T
    do {
        result = try await body()
    } catch {
        await expectNoLeak(since: before, sourceLocation)
        await DescriptorTestGate.shared.leave()
        throw error
    }
    await expectNoLeak(since: before, sourceLocation)
    await DescriptorTestGate.shared.leave()
    return result
}

private func expectNoLeak(since before: Set<Int32>, _ sourceLocation: SourceLocation) async {
    let deadline = ContinuousClock.now + .seconds(5)
    var leaked = openDescriptors().subtracting(before)
    while !leaked.isEmpty && ContinuousClock.now < deadline {
        try? await Task.sleep(for: .milliseconds(10))
        leaked = openDescriptors().subtracting(before)
    }
    #expect(leaked.isEmpty, "descriptors left open: \(leaked.sorted().map { describe($0) })", sourceLocation: sourceLocation)
}

private func describe(_ fd: Int32) -> String {
    let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")) ?? "?"
    return "\(fd) -> \(target)"
}
