#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
@testable import AsyncSockets

// Deterministic network behaviours on loopback, for connection tests (Happy Eyeballs and others):
//
// - `RefusingPort`: a port bound but not listening; a connect to it is refused at once (RST).
// - `SilentListener`: a listening socket nobody accepts from; the kernel still completes handshakes, so a
//   connect to it succeeds at once.
// - `BlackholeListener`: a listener whose accept queue is full; the kernel drops further SYNs, so a connect to it
//   hangs (SYN retransmits, `ETIMEDOUT` only after about two minutes), like an unreachable host.
//
// Measured on this machine (Linux 6.18): with backlog 0 the accept queue holds one connection (the kernel's
// "full" test is `queued > backlog`; backlog 1 holds two), the next SYN is dropped and the connect hangs, on
// IPv4 and IPv6 alike, with net.ipv4.tcp_syncookies = 0, 1 (this host's setting) and 2 (checked in a private
// network namespace): syncookies answer for a full SYN queue, never for a full accept queue. Rather than
// hard-code that count, `BlackholeListener` connects fillers until one does not complete within 200 ms.
//
// All of them use blocking raw descriptors owned by the test (never accepted, never read), closed by `close()`.

/// A stream socket of `family` bound to `host` port 0 (an ephemeral port); returns the descriptor.
private func boundSocket(_ host: String) throws -> (Int32, SocketAddress) {
    let requested = try SocketAddress(numericHost: host, port: 0)
    let fd = socket(requested.family == .ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw SocketError.fromErrno("socket") }
    let rc = requested.withSockAddr { bind(fd, $0, $1) }
    guard rc == 0 else {
        let error = SocketError.fromErrno("bind", address: requested)
        _ = Glibc.close(fd)
        throw error
    }
    guard let read = SocketAddress.read({ getsockname(fd, $0, $1) }), let bound = read else {
        _ = Glibc.close(fd)
        throw SocketError.fromErrno("getsockname")
    }
    return (fd, bound)
}

/// A port where nothing listens: bound (so no other socket takes it) but not listening, so a connect is
/// refused at once with `ECONNREFUSED`.
final class RefusingPort: Sendable {
    /// Where connects are refused.
    let address: SocketAddress
    private let fd: Int32

    init(host: String = "127.0.0.1") throws {
        (fd, address) = try boundSocket(host)
    }

    func close() { _ = Glibc.close(fd) }
}

/// A listener nobody accepts from: handshakes complete (connect succeeds), connections pile up in the queue.
final class SilentListener: Sendable {
    /// Where connects succeed.
    let address: SocketAddress
    private let fd: Int32

    init(host: String = "127.0.0.1", backlog: Int32 = 64) throws {
        (fd, address) = try boundSocket(host)
        guard listen(fd, backlog) == 0 else {
            let error = SocketError.fromErrno("listen", address: address)
            _ = Glibc.close(fd)
            throw error
        }
    }

    /// Whether a completed connection waits in the accept queue (the listener polls readable).
    var hasPendingConnection: Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) == 1 && entry.revents & Int16(POLLIN) != 0
    }

    func close() { _ = Glibc.close(fd) }
}

/// A listener that swallows SYNs: its accept queue is full of connections nobody accepts, so the kernel
/// drops every further SYN and a connect to ``address`` hangs until cancelled or timed out.
///
/// Defaults to 127.0.0.2 (any 127.0.0.0/8 address is loopback on Linux); `::1` works as well.
final class BlackholeListener: Sendable {
    /// Where connects hang.
    let address: SocketAddress
    /// How many filler connections it took to fill the accept queue (1 on Linux with backlog 0).
    let fillerCount: Int
    private let listener: Int32
    private let fillers: [Int32]

    struct SetupError: Error, CustomStringConvertible {
        var description: String
    }

    init(host: String = "127.0.0.2") throws {
        let (listener, address) = try boundSocket(host)
        guard listen(listener, 0) == 0 else {
            let error = SocketError.fromErrno("listen", address: address)
            _ = Glibc.close(listener)
            throw error
        }
        var fillers: [Int32] = []
        func fail(_ error: any Error) -> any Error {
            for fd in fillers { _ = Glibc.close(fd) }
            _ = Glibc.close(listener)
            return error
        }
        // Connect until an attempt does not complete: that one proves the queue is full (and is closed).
        // Loopback handshakes complete within the connect call; 200 ms is a generous bound for "it hangs".
        while true {
            guard fillers.count < 8 else {
                throw fail(SetupError(description: "\(address): the accept queue never filled (8 connections completed)"))
            }
            let fd = socket(address.family == .ipv6 ? AF_INET6 : AF_INET,
                            Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw fail(SocketError.fromErrno("socket")) }
            let rc = address.withSockAddr { connect(fd, $0, $1) }
            if rc != 0 && errno != EINPROGRESS {
                let error = SocketError.fromErrno("connect", address: address)
                _ = Glibc.close(fd)
                throw fail(error)
            }
            var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            if poll(&entry, 1, 200) == 0 {
                _ = Glibc.close(fd)  // the probe hung: the queue is full
                break
            }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            guard error == 0 else {
                _ = Glibc.close(fd)
                throw fail(SocketError(code: error, operation: "connect", address: address, detail: "filling the accept queue"))
            }
            fillers.append(fd)
        }
        self.listener = listener
        self.address = address
        self.fillers = fillers
        self.fillerCount = fillers.count
    }

    func close() {
        for fd in fillers { _ = Glibc.close(fd) }
        _ = Glibc.close(listener)
    }
}

/// An ``AddressResolver`` that returns fixed addresses (or throws a fixed error) and records its calls.
struct FixedResolver: AddressResolver {
    let result: Result<[SocketAddress], any Error>
    let calls = CallLog()

    init(_ addresses: [SocketAddress]) { result = .success(addresses) }
    init(failingWith error: any Error) { result = .failure(error) }

    func resolve(_ endpoint: Endpoint) async throws -> [SocketAddress] {
        calls.append(endpoint)
        return try result.get()
    }

    final class CallLog: @unchecked Sendable {
        // @unchecked Sendable: `endpoints` is only touched under `lock`.
        private let lock = NSLock()
        private var endpoints: [Endpoint] = []
        func append(_ endpoint: Endpoint) { lock.withLock { endpoints.append(endpoint) } }
        var all: [Endpoint] { lock.withLock { endpoints } }
    }
}

/// A resolver that signals when it is asked, then waits (honouring cancellation) for a minute.
struct StalledResolver: AddressResolver {
    let asked: AsyncStream<Void>.Continuation

    func resolve(_ endpoint: Endpoint) async throws -> [SocketAddress] {
        asked.yield()
        try await Task.sleep(for: .seconds(60))
        return []
    }
}

/// Records a race's events (the `observer:` of `connect`) and streams them, so a test can wait for one.
final class RaceRecorder: @unchecked Sendable {
    // @unchecked Sendable: `recorded` is only touched under `lock`; the stream continuation is thread-safe.
    private let lock = NSLock()
    private var recorded: [ConnectionRaceEvent] = []
    let stream: AsyncStream<ConnectionRaceEvent>
    private let continuation: AsyncStream<ConnectionRaceEvent>.Continuation

    init() {
        (stream, continuation) = AsyncStream.makeStream(of: ConnectionRaceEvent.self)
    }

    /// The observer to pass to `connect`.
    var observer: @Sendable (ConnectionRaceEvent) -> Void {
        { [self] event in
            lock.withLock { recorded.append(event) }
            continuation.yield(event)
        }
    }

    var events: [ConnectionRaceEvent] { lock.withLock { recorded } }

    /// Ends ``stream`` (when the race is over, so a test waiting for an event that never comes stops).
    func finish() { continuation.finish() }

    /// The start time of each attempt, by attempt index.
    var startTimes: [Int: Duration] {
        var result: [Int: Duration] = [:]
        for event in events {
            if case .started = event.kind, let attempt = event.attempt { result[attempt] = event.elapsed }
        }
        return result
    }

    /// The attempts that started, in the order they started.
    var startedAddresses: [SocketAddress] {
        events.compactMap { if case .started = $0.kind { return $0.address } else { return nil } }
    }

    /// The outcome of each attempt: "won", "cancelled", or "failed ERRNO" for a SocketError.
    var outcomes: [Int: String] {
        var result: [Int: String] = [:]
        for event in events {
            guard let attempt = event.attempt else { continue }
            switch event.kind {
            case .won: result[attempt] = "won"
            case .cancelled: result[attempt] = "cancelled"
            case .failed(let error): result[attempt] = "failed " + ((error as? SocketError)?.codeName ?? "\(error)")
            case .started, .resolved: break
            }
        }
        return result
    }

    /// A readable timeline, for failure messages.
    var timeline: String { events.map(\.description).joined(separator: "\n") }
}

extension Duration {
    /// Milliseconds, for readable expectations.
    var ms: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15 }
}
