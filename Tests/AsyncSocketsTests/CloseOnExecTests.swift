import Foundation
import Testing
@testable import AsyncSockets

/// A child process started with `posix_spawn` inherits none of our sockets: every descriptor the library
/// creates (`socket`, `socketpair`, `accept4`, the loop's epoll and eventfd) is close-on-exec.
@Suite struct CloseOnExecTests {
    /// What `/proc/self/fd/N` points to, such as `socket:[12345]`.
    static func target(_ fd: Int32) -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")) ?? "?"
    }

    /// Runs `/bin/sh -c 'ls -l /proc/$$/fd'` through posix_spawn and returns its output: the shell's own
    /// open descriptors, as inherited from us.
    static func childDescriptorListing() throws -> String {
        var pipeFDs: [Int32] = [-1, -1]
        #expect(pipe(&pipeFDs) == 0)
        for fd in pipeFDs { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
        // `; exit 0` keeps the shell from exec'ing ls in its place, so $$ is the shell that inherited.
        let argv = ["/bin/sh", "-c", "ls -l /proc/$$/fd; exit 0"]
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for arg in cArgs { free(arg) } }
        var pid = pid_t()
        let rc = posix_spawn(&pid, "/bin/sh", &actions, nil, &cArgs, environ)
        _ = Glibc.close(pipeFDs[1])
        defer { _ = Glibc.close(pipeFDs[0]) }
        guard rc == 0 else { throw SocketError(code: rc, operation: "posix_spawn") }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(pipeFDs[0], $0.baseAddress, $0.count) }
            if n <= 0 { break }
            output += buffer[..<n]
        }
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
        return String(decoding: output, as: UTF8.self)
    }

    /// The targets of our open descriptors, such as `socket:[12345]`.
    static func targets() -> Set<String> { Set(openDescriptors().map(target)) }

    @Test func spawnedChildInheritsNoSocket() async throws { try await withDescriptorCheck {
        let before = Self.targets()
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let client = try await AsyncSocket.connect(to: server.localAddress)
        let accepted = try #require(try await server.accept())
        let (a, b) = try AsyncSocket.pair()
        let unixPath = "/tmp/as-cloexec-\(getpid()).sock"
        unlink(unixPath)
        let unixServer = try AsyncServer(unixPath: unixPath)
        let unixClient = try await AsyncSocket.connect(to: SocketAddress(unixPath: unixPath))
        // Every socket this test made: 2 listeners, 2 connected clients, 1 accepted, 2 of the pair.
        let ours = Self.targets().subtracting(before).filter { $0.hasPrefix("socket:[") }
        #expect(ours.count == 7, "\(ours)")

        let listing = try Self.childDescriptorListing()
        #expect(listing.contains("/proc/") || listing.contains("->"), "the child listed nothing: \(listing)")
        for name in ours { #expect(!listing.contains(name), "the child inherited \(name):\n\(listing)") }
        // Nor the event loop's epoll instance and wakeup eventfd.
        #expect(!listing.contains("[eventpoll]"), "\(listing)")
        #expect(!listing.contains("[eventfd]"), "\(listing)")

        for socket in [client, accepted, a, b, unixClient] { await socket.close() }
        server.close()
        unixServer.close()
    } }
}
