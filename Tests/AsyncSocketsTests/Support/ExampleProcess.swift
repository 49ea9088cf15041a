import Foundation
@testable import AsyncSockets

/// A built example (or other executable of this package) run as a child process, found next to the test
/// binary (`swift build --build-tests` and `swift test` build every executable target into the same
/// directory).
final class ExampleProcess: Sendable {
    let pid: pid_t
    /// The read end of the pipe that the child's stdout and stderr both go to.
    let output: Int32

    /// The path of the executable `name` in the build directory of the running tests.
    static func path(_ name: String) throws -> String {
        var buffer = [CChar](repeating: 0, count: 4097)
        let n = readlink("/proc/self/exe", &buffer, 4096)
        guard n > 0 else { throw CoreFixtures.Failure("readlink /proc/self/exe failed") }
        let exe = String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let directory = exe[..<(exe.lastIndex(of: "/") ?? exe.endIndex)]
        let path = "\(directory)/\(name)"
        guard access(path, X_OK) == 0 else {
            throw CoreFixtures.Failure("\(path) does not exist: build the examples first (swift build --build-tests)")
        }
        return path
    }

    /// Starts `program` with stdout and stderr both going to one pipe whose capacity is `pipeSize` bytes
    /// (the kernel's minimum is a page), read by nobody unless the test calls ``readLine(within:)``.
    init(_ program: String, _ arguments: [String], pipeSize: Int32 = 4096) throws {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw SocketError.fromErrno("pipe") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        _ = fcntl(fds[1], 1031 /* F_SETPIPE_SZ */, pipeSize)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([program] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] =
            ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, program, &actions, nil, argv, envp)
        posix_spawn_file_actions_destroy(&actions)
        for pointer in argv + envp { free(pointer) }
        close(fds[1])
        guard rc == 0 else {
            close(fds[0])
            throw SocketError(code: rc, operation: "posix_spawn", detail: program)
        }
        self.pid = pid
        self.output = fds[0]
    }

    /// Reads one line of output (without the newline), waiting at most `limit`.
    ///
    /// The blocking `poll` and `read` run on a Dispatch thread, not in the calling task: a child that is slow
    /// to start (a debug build on a loaded 2-core machine takes seconds) would otherwise hold one of the
    /// cooperative pool's two threads for that long, and stall every other test running meanwhile.
    func readLine(within limit: Duration = .seconds(30)) async throws -> String {
        let output = self.output
        return try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try Self.readLine(from: output, within: limit) })
            }
        }
    }

    private static func readLine(from output: Int32, within limit: Duration) throws -> String {
        var bytes: [UInt8] = []
        let deadline = ContinuousClock.now + limit
        while true {
            var entry = pollfd(fd: output, events: Int16(POLLIN), revents: 0)
            let left = deadline - ContinuousClock.now
            guard left > .zero else { throw CoreFixtures.Failure("no line within \(limit); got \(String(decoding: bytes, as: UTF8.self))") }
            let rc = poll(&entry, 1, Int32(left.components.seconds * 1000 + 1))
            if rc < 0 && errno == EINTR { continue }
            if rc <= 0 { continue }
            var byte: UInt8 = 0
            let n = read(output, &byte, 1)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { throw CoreFixtures.Failure("the output ended; got \(String(decoding: bytes, as: UTF8.self))") }
            if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
    }

    /// Kills the child, reaps it and closes the pipe.
    func stop() {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        close(output)
    }

    /// The port in a line such as `listening on 127.0.0.1:PORT` or `listening on 127.0.0.1:PORT, forwarding …`.
    static func port(inListeningLine line: String) -> UInt16? {
        guard line.hasPrefix("listening on ") else { return nil }
        let address = line.dropFirst("listening on ".count).prefix { $0 != "," }
        return address.lastIndex(of: ":").flatMap { UInt16(address[address.index(after: $0)...]) }
    }
}
