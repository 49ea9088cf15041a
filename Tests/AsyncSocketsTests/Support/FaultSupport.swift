import Foundation
import Testing
@testable import AsyncSockets

/// The deadline passed before the bounded work finished: something hangs.
struct DeadlineExceeded: Error, CustomStringConvertible {
    let seconds: Double
    let what: String
    var description: String { "\(what) did not finish within \(seconds) s (a hang)" }
}

/// Runs `body` in its own task and returns its result, or throws ``DeadlineExceeded`` after `seconds`
/// without waiting for `body` any longer: a hung continuation fails the test instead of hanging the run.
/// On timeout the body's task is cancelled and abandoned.
///
/// The deadline is kept by a plain thread waiting on a condition, not by `Task.sleep`: a long dispatch
/// timer can make libdispatch open another timerfd, which the descriptor check would count as a leak.
func withDeadline<T: Sendable>(_ seconds: Double, _ what: String = "the test body",
                               _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let once = OnceFlag()
    let finished = NSCondition()
    let done = Mutex(false)
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        let work = Task {
            if debugDeadlines { print("DL start \(what) \(Date().timeIntervalSince1970)") }
            let result = await Result { try await body() }
            if debugDeadlines { print("DL end \(what) \(Date().timeIntervalSince1970)") }
            if once.claim() { continuation.resume(with: result) }
            signal(finished) { done.withLock { $0 = true } }
        }
        let watchdog = Thread {
            let limit = Date(timeIntervalSinceNow: seconds)
            finished.lock()
            while !done.withLock({ $0 }) && finished.wait(until: limit) {}
            finished.unlock()
            if once.claim() {
                print("DL TIMEOUT \(what):")
                work.cancel()
                continuation.resume(throwing: DeadlineExceeded(seconds: seconds, what: what))
            }
        }
        watchdog.start()
    }
}

private let debugDeadlines = ProcessInfo.processInfo.environment["DEBUG_DEADLINES"] != nil

private func signal(_ condition: NSCondition, _ change: () -> Void) {
    condition.lock()
    change()
    condition.broadcast()
    condition.unlock()
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}

/// True exactly once.
final class OnceFlag: Sendable {
    private let claimed = Mutex(false)
    func claim() -> Bool { claimed.withLock { old in defer { old = true }; return !old } }
}

/// A tiny lock-protected value for test bookkeeping (Foundation's NSLock; tests may use Foundation).
final class Mutex<Value>: @unchecked Sendable {
    // @unchecked Sendable: `value` is only touched inside `lock`.
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// `SO_LINGER {1, 0}`: the next `close()` sends a RST instead of a FIN.
func abortiveLingerBytes() -> [UInt8] {
    var value = linger(l_onoff: 1, l_linger: 0)
    return withUnsafeBytes(of: &value) { Array($0) }
}

/// Resets the connection: `SO_LINGER {1, 0}` then close, through the public API.
func reset(_ socket: AsyncSocket) async throws {
    try await socket.setRawOption(level: SOL_SOCKET, name: SO_LINGER, bytes: abortiveLingerBytes())
    await socket.close()
}

/// The error `body` throws, or nil (recorded as an issue) when it returns.
func caught(_ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async -> (any Error)? {
    do {
        try await body()
        Issue.record("expected an error", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

/// Expects a ``SocketError`` whose code is one of `codes`.
func expectSocketError(_ error: (any Error)?, _ codes: Set<Int32>, _ comment: String = "",
                       sourceLocation: SourceLocation = #_sourceLocation) {
    guard let error else { return }
    guard let socketError = error as? SocketError else {
        Issue.record("expected a SocketError with \(codes.map(Errno.name)), got \(type(of: error)): \(error) \(comment)",
                     sourceLocation: sourceLocation)
        return
    }
    #expect(codes.contains(socketError.code),
            "expected \(codes.map(Errno.name)), got \(socketError) \(comment)", sourceLocation: sourceLocation)
}

/// A listener whose accept queue is full, so the kernel drops further SYNs to it: a connect to it hangs
/// (SYN retransmits for about two minutes) until it is cancelled, closed or times out.
///
/// Built as `listen(fd, 0)` on `127.0.0.x` plus one completed connection nobody accepts (Linux lets
/// backlog + 1 connections wait). ``close()`` frees everything.
final class Blackhole: @unchecked Sendable {
    // @unchecked Sendable: written once in init, closed once by the test that owns it.
    let address: SocketAddress
    private let listenFD: Int32
    private var fillers: [Int32] = []

    init(host: String = "127.0.0.\(Int.random(in: 2...250))") throws {
        let listenFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        precondition(listenFD >= 0)
        let bindAddress = try SocketAddress(ipv4: host, port: 0)
        guard bindAddress.withSockAddr({ bind(listenFD, $0, $1) }) == 0, listen(listenFD, 0) == 0 else {
            let error = SocketError.fromErrno("listen", address: bindAddress)
            _ = Glibc.close(listenFD)
            throw error
        }
        self.listenFD = listenFD
        address = SocketAddress.read { getsockname(listenFD, $0, $1) }!!
        // Fill the accept queue: blocking connects that complete in the kernel, never accepted. Stop at the
        // first that does not complete at once (non-blocking connect still pending after a short poll).
        for _ in 0..<4 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            fillers.append(fd)
            _ = address.withSockAddr { connect(fd, $0, $1) }
            var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            if poll(&pfd, 1, 200) == 0 { break }  // this one hangs: the queue is full
        }
    }

    func close() {
        for fd in fillers { _ = Glibc.close(fd) }
        fillers.removeAll()
        _ = Glibc.close(listenFD)
    }
}

/// The RSS of this process in KiB (`VmRSS` in /proc/self/status).
func residentKiB() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.split(separator: " ")[1]) ?? 0
    }
    return 0
}
