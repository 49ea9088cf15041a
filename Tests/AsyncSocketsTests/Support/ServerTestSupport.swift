import Dispatch
import Foundation
import Testing
@testable import AsyncSockets

/// Helpers of the server tests (ServerTests, ServerResourceTests, PythonInteropTests), in a namespace so
/// that they cannot clash with other test files' helpers.
enum ServerTesting {
    /// A bounded wait ran out.
    struct TimedOut: Error, CustomStringConvertible {
        var what: String
        var description: String { "timed out: \(what)" }
    }

    /// Runs `body`, throwing ``TimedOut`` (and cancelling it) if it takes longer than `limit`.
    static func within<T: Sendable>(_ limit: Duration = .seconds(30), _ what: String = "operation",
                                    _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        guard let value = try await CoreFixtures.firstWithin(limit, body) else { throw TimedOut(what: what) }
        return value
    }

    /// Polls `condition` every few milliseconds until it holds or `limit` passes; whether it held.
    /// (For states that have no notification of their own, such as a kernel queue length.)
    static func eventually(_ limit: Duration = .seconds(20), _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + limit
        while true {
            if try await condition() { return true }
            if ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Echoes everything until end of stream.
    static func echo(_ client: AsyncSocket) async throws {
        while true {
            let bytes = try await client.read(upTo: 64 * 1024)
            if bytes.isEmpty { return }
            try await client.write(bytes)
        }
    }

    static func loopback(_ port: UInt16) throws -> SocketAddress {
        try SocketAddress(ipv4: "127.0.0.1", port: port)
    }

    /// Connects to 127.0.0.1:`port` (10 s connect timeout).
    static func connect(_ port: UInt16) async throws -> AsyncSocket {
        try await AsyncSocket.connect(to: loopback(port), timeout: .seconds(10))
    }

    /// `getsockopt` of an `int` option; nil when the call fails.
    static func intOption(_ fd: Int32, _ level: Int32, _ name: Int32) -> Int32? {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(fd, level, name, &value, &length) == 0 ? value : nil
    }

    /// The accept queue of the listening TCP socket on `port`: connections the kernel completed that nobody
    /// has accepted yet (the `rx_queue` column of a LISTEN row in /proc/net/tcp or tcp6).
    static func acceptQueueLength(port: UInt16) -> Int? {
        for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                guard fields.count > 4, fields[3] == "0A", let colon = fields[1].lastIndex(of: ":"),
                      UInt16(fields[1][fields[1].index(after: colon)...], radix: 16) == port else { continue }
                let queues = fields[4].split(separator: ":")
                guard queues.count == 2 else { continue }
                return Int(queues[1], radix: 16)
            }
        }
        return nil
    }

    /// The listen backlog the kernel uses for the TCP listener on `port` (`ss -ltn`'s Send-Q column).
    static func listenBacklog(port: UInt16) async throws -> Int? {
        let output = try await run("ss", ["-ltnH", "sport = :\(port)"])
        let fields = output.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count >= 3 else { return nil }
        return Int(fields[2])
    }

    /// A fresh path for a unix socket under /tmp (short enough for `sun_path`).
    static func temporarySocketPath() -> String {
        "/tmp/as-server-\(getpid())-\(UInt32.random(in: 0 ... .max)).sock"
    }

    static func fileExists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    // MARK: CPU time

    /// The CPU time this process has used (`clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`).
    static func processCPUTime() -> Duration {
        var now = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now)
        return .seconds(now.tv_sec) + .nanoseconds(now.tv_nsec)
    }

    /// The CPU time of `loop`'s thread so far (its `pthread_getcpuclockid` clock).
    static func threadCPUTime(of loop: EventLoop) -> Duration? {
        let thread = Locked(pthread_t())
        loop.executeAndWait { thread.withLock { $0 = pthread_self() } }
        var clock = clockid_t()
        guard pthread_getcpuclockid(thread.withLock { $0 }, &clock) == 0 else { return nil }
        var now = timespec()
        guard clock_gettime(clock, &now) == 0 else { return nil }
        return .seconds(now.tv_sec) + .nanoseconds(now.tv_nsec)
    }

    /// Sleeps for `duration` and returns how much CPU time `loop`'s thread used meanwhile, and the wall time
    /// that passed. The sleep is the point: what is measured is the loop's CPU use while nothing happens.
    static func loopCPUTime(of loop: EventLoop, over duration: Duration) async throws -> (used: Duration, wall: Duration) {
        guard let before = threadCPUTime(of: loop) else { throw CoreFixtures.Failure("pthread_getcpuclockid failed") }
        let wallStart = ContinuousClock.now
        try await Task.sleep(for: duration)
        let wall = ContinuousClock.now - wallStart
        guard let after = threadCPUTime(of: loop) else { throw CoreFixtures.Failure("pthread_getcpuclockid failed") }
        return (after - before, wall)
    }

    /// ``loopCPUTime(of:over:)`` for several loops at once (the shared group's, say): the CPU time of the
    /// busiest one over the same sleep.
    static func loopCPUTime(of loops: [EventLoop], over duration: Duration) async throws -> (used: Duration, wall: Duration) {
        let before = loops.map { threadCPUTime(of: $0) }
        let wallStart = ContinuousClock.now
        try await Task.sleep(for: duration)
        let wall = ContinuousClock.now - wallStart
        var busiest = Duration.zero
        for (loop, start) in zip(loops, before) {
            guard let start, let end = threadCPUTime(of: loop) else { throw CoreFixtures.Failure("pthread_getcpuclockid failed") }
            busiest = max(busiest, end - start)
        }
        return (busiest, wall)
    }

    // MARK: Child processes

    /// What a finished child process printed and how it exited.
    struct ChildResult: Sendable {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// A running child process (found on `PATH`, started with `posix_spawnp`) with stdout and stderr piped
    /// to us, killed with SIGKILL once `limit` passes.
    ///
    /// Not Foundation's `Process`: that opens run-loop descriptors (epoll, eventfd, timerfd, a socket pair)
    /// on first use and keeps them, which the descriptor leak check would report.
    final class Child: Sendable {
        let pid: pid_t
        private let stdoutFD: Int32
        private let stderrFD: Int32
        /// Whether the child was reaped (then its pid may be reused and must not be killed).
        private let reaped = Locked(false)

        init(_ program: String, _ arguments: [String], limit: Duration = .seconds(60)) throws {
            var out: [Int32] = [-1, -1]
            var err: [Int32] = [-1, -1]
            guard pipe(&out) == 0 else { throw SocketError.fromErrno("pipe") }
            guard pipe(&err) == 0 else {
                close(out[0]); close(out[1])
                throw SocketError.fromErrno("pipe")
            }
            for fd in out + err { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            posix_spawn_file_actions_adddup2(&actions, out[1], 1)
            posix_spawn_file_actions_adddup2(&actions, err[1], 2)
            let argv: [UnsafeMutablePointer<CChar>?] = ([program] + arguments).map { strdup($0) } + [nil]
            let envp: [UnsafeMutablePointer<CChar>?] =
                ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
            var pid: pid_t = 0
            let rc = posix_spawnp(&pid, program, &actions, nil, argv, envp)
            posix_spawn_file_actions_destroy(&actions)
            for pointer in argv + envp { free(pointer) }
            close(out[1])
            close(err[1])
            guard rc == 0 else {
                close(out[0]); close(err[0])
                throw SocketError(code: rc, operation: "posix_spawnp", detail: program)
            }
            self.pid = pid
            self.stdoutFD = out[0]
            self.stderrFD = err[0]
            let (reaped, child) = (self.reaped, pid)
            DispatchQueue.global().asyncAfter(deadline: .now() + Double(limit.components.seconds)) {
                reaped.withLock { done in if !done { kill(child, SIGKILL) } }
            }
        }

        /// Reads one line of the child's stdout (without the newline); nil at end of output.
        func readLine() async -> String? {
            let fd = stdoutFD
            return await withCheckedContinuation { continuation in
                DispatchQueue.global().async {
                    var bytes: [UInt8] = []
                    var byte: UInt8 = 0
                    while true {
                        let n = read(fd, &byte, 1)
                        if n < 0 && errno == EINTR { continue }
                        if n <= 0 {
                            continuation.resume(returning: bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self))
                            return
                        }
                        if byte == UInt8(ascii: "\n") { break }
                        bytes.append(byte)
                    }
                    continuation.resume(returning: String(decoding: bytes, as: UTF8.self))
                }
            }
        }

        /// Waits for the child to exit (reading the rest of its output meanwhile) and closes the pipes.
        func finish() async -> ChildResult {
            let (outFD, errFD, pid, reaped) = (stdoutFD, stderrFD, self.pid, self.reaped)
            return await withCheckedContinuation { continuation in
                DispatchQueue.global().async {
                    let group = DispatchGroup()
                    let stderr = Locked<[UInt8]>([])
                    DispatchQueue.global().async(group: group) {
                        let bytes = Self.readToEnd(errFD)
                        stderr.withLock { $0 = bytes }
                    }
                    let stdout = Self.readToEnd(outFD)
                    group.wait()
                    var status: Int32 = 0
                    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                    reaped.withLock { $0 = true }
                    close(outFD)
                    close(errFD)
                    // WIFEXITED: the low 7 bits are 0; then the exit code is in bits 8-15. Else 128 + signal.
                    let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
                    continuation.resume(returning: ChildResult(
                        status: code,
                        stdout: String(decoding: stdout, as: UTF8.self),
                        stderr: String(decoding: stderr.withLock { $0 }, as: UTF8.self)))
                }
            }
        }

        private static func readToEnd(_ fd: Int32) -> [UInt8] {
            var result: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return result }
                result += buffer[..<n]
            }
        }
    }

    /// Runs a program to completion (killed after `limit`).
    static func run(_ path: String, _ arguments: [String], limit: Duration = .seconds(60)) async throws -> ChildResult {
        try await Child(path, arguments, limit: limit).finish()
    }
}
