#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
@testable import AsyncSockets

/// Shared helpers of the core socket tests (StreamIO, ConcurrencyRules, CancellationAndClose, Timeout, BadInput,
/// Address, SocketOption tests). Namespaced so they cannot clash with other suites' helpers.
enum CoreFixtures {
    /// A test step that did not happen in time, or a state that should not occur.
    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// `count` bytes of a position-dependent pattern: byte `i` is `(i % 251) + seed`. 251 is prime, so the
    /// pattern does not line up with any power-of-two chunk size and a shifted or repeated chunk shows up.
    static func pattern(count: Int, seed: UInt8 = 0) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            var value = 0
            for index in 0..<count {
                buffer[index] = UInt8(truncatingIfNeeded: value) &+ seed
                value += 1
                if value == 251 { value = 0 }
            }
            initialized = count
        }
    }

    /// Whether `a` and `b` hold the same bytes (memcmp: the debug-build element loop is too slow for MiBs).
    static func sameBytes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { x in b.withUnsafeBytes { y in memcmp(x.baseAddress!, y.baseAddress!, a.count) == 0 } }
    }

    /// A connected TCP socket pair over loopback: the connecting side and the accepted side.
    /// The listening socket is closed before this returns.
    static func tcpPair(host: String = "127.0.0.1") async throws -> (client: AsyncSocket, server: AsyncSocket) {
        let family: SocketFamily = host.contains(":") ? .ipv6 : .ipv4
        let listener = try AsyncServer(host: host, port: 0, family: family)
        defer { listener.close() }
        // The kernel completes the handshake from the backlog, so connecting before accepting cannot block.
        let client = try await AsyncSocket.connect(to: listener.localAddress, timeout: .seconds(10))
        await client.setTimeout(nil)
        guard let accepted = try await listener.accept() else {
            await client.close()
            throw Failure("accept returned nil on an open server")
        }
        return (client, accepted)
    }

    /// Both kinds of stream this library offers: a `socketpair` and a loopback TCP connection.
    enum Transport: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case pair, tcp4, tcp6
        var testDescription: String { rawValue }

        /// Opens a connected pair of this kind.
        func open() async throws -> (AsyncSocket, AsyncSocket) {
            switch self {
            case .pair: return try AsyncSocket.pair()
            case .tcp4: return try await CoreFixtures.tcpPair(host: "127.0.0.1")
            case .tcp6: return try await CoreFixtures.tcpPair(host: "::1")
            }
        }
    }

    /// Polls `condition` (1 ms apart) until it holds; throws after `timeout`. For states that have no event to
    /// await, such as "a task is now suspended in `read`".
    static func waitUntil(_ what: String, timeout: Duration = .seconds(20),
                          _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await !condition() {
            guard ContinuousClock.now < deadline else { throw Failure("gave up waiting until \(what)") }
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    /// Runs `body`, but fails the test (and cancels `body`) if it takes longer than `limit`: keeps a deadlock
    /// from hanging the whole run.
    static func within<T: Sendable>(_ limit: Duration, _ what: String,
                                    sourceLocation: SourceLocation = #_sourceLocation,
                                    _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        guard let value = try await firstWithin(limit, body) else {
            Issue.record("\(what) did not finish within \(limit)", sourceLocation: sourceLocation)
            throw Failure("\(what) did not finish within \(limit)")
        }
        return value
    }

    /// `body`'s value, or nil when `limit` passes first; either way the other one is cancelled. The shared
    /// core of ``within(_:_:sourceLocation:_:)`` and `ServerTesting.within`.
    static func firstWithin<T: Sendable>(_ limit: Duration,
                                         _ body: @escaping @Sendable () async throws -> T) async throws -> T? {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: limit)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
    }

    /// `task.value`, but failing the test (and cancelling the task) if it does not finish within `limit`:
    /// a call that should return promptly must not hang the whole run when it does not.
    ///
    /// The task itself is cancelled at the deadline. (Awaiting `task.value` does not respond to cancellation,
    /// so running it under ``within(_:_:sourceLocation:_:)`` and cancelling the task afterwards waited forever
    /// for a task that never finished: the run hung instead of failing.)
    static func value<T: Sendable>(of task: Task<T, any Error>, within limit: Duration = .seconds(30),
                                   sourceLocation: SourceLocation = #_sourceLocation) async throws -> T {
        let timedOut = Mutex(false)
        let watchdog = Task {
            try await Task.sleep(for: limit)
            timedOut.withLock { $0 = true }
            task.cancel()
        }
        defer { watchdog.cancel() }
        let result = await task.result
        if timedOut.withLock({ $0 }) {
            Issue.record("the task did not finish within \(limit)", sourceLocation: sourceLocation)
            throw Failure("the task did not finish within \(limit)")
        }
        return try result.get()
    }

    /// Writes on `socket` until the kernel's buffers are full: the next write of any size would wait.
    /// Returns how many bytes went in. Uses the raw descriptor so the test knows exactly when it is full.
    static func fillSendBuffer(_ socket: AsyncSocket) async -> Int {
        let fd = await socket.descriptor
        let chunk = [UInt8](repeating: 0xAB, count: 64 * 1024)
        var total = 0
        while true {
            let n = chunk.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
            if n <= 0 { return total }
            total += n
        }
    }

    /// Reads from `socket` until the bytes read end with `marker`; returns everything read.
    static func readUntil(_ marker: [UInt8], from socket: AsyncSocket) async throws -> [UInt8] {
        var received: [UInt8] = []
        while !(received.count >= marker.count && Array(received.suffix(marker.count)) == marker) {
            let n = try await socket.read(into: &received, upTo: 64 * 1024)
            if n == 0 { throw Failure("end of stream before the marker; \(received.count) bytes read") }
        }
        return received
    }
}

extension AsyncSocket {
    /// The core's wait state, read on the socket's loop (test helper).
    func coreTestWaitState() -> SocketCore.WaitState { core.waitState }

    /// Whether the core's read readiness event is registered, read on the socket's loop (test helper).
    func coreTestReadRegistered() -> Bool { core.isRegistered(.read) }
}

extension Listener {
    /// The listening descriptor, read on the listener's loop (test helper).
    func coreTestDescriptor() -> Int32 { core.fd }
}
