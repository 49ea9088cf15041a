// EchoClient: connects to an echo server, sends a message, half-closes and prints what comes back.
//
// What it shows:
// - `AsyncSocket.withConnection(to: Endpoint(host:port:))`: name resolution plus Happy Eyeballs in one call
//   ("localhost" tries ::1 and 127.0.0.1, the first to answer wins), a body that runs on the event loop's
//   thread, isolated to the socket, and the socket closed when it ends;
// - writing and reading at the same time from two tasks (a task group): a large stdin cannot deadlock
//   against the echo coming back;
// - the rule of code on the loop, never block: reading standard input blocks, so it runs on Swift's global
//   pool (`withTaskExecutorPreference(globalConcurrentExecutor)`) while the body awaits it;
// - half-close with `shutdown(.write)`: the server sees end of stream, finishes echoing and closes, and our
//   read loop ends on `[]` (end of stream);
// - errors that say what failed: `connect to 127.0.0.1:9 failed: Connection refused (ECONNREFUSED)`.
//
// Run it (with `swift run -c release EchoServer` running in another terminal):
//   swift run EchoClient --port PORT hello world          sends "hello world\n", prints the echo
//   printf 'one\ntwo\n' | swift run EchoClient --port PORT   sends standard input
//   swift run EchoClient --host localhost --port PORT hi
//   swift run EchoClient --port PORT --multipath hi      Multipath TCP; says on stderr whether it was used
// Exit status: 0 when the server closed after echoing, 1 on a socket error, 2 on bad arguments.

import AsyncSockets
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Prints a message on standard error and exits with `status`.
func fail(_ message: String, status: Int32) -> Never {
    let bytes = Array("EchoClient: \(message)\n".utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(status)
}

/// Writes raw bytes to standard output (no line buffering, no text conversion).
func writeStdout(_ bytes: [UInt8]) {
    var offset = 0
    while offset < bytes.count {
        let n = bytes[offset...].withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
        if n <= 0 { return }
        offset += n
    }
}

/// Parses `[--host HOST] --port PORT [--multipath] [words...]`.
func parseArguments() -> (endpoint: Endpoint, words: [String], multipath: Bool) {
    var host = "127.0.0.1"
    var port: UInt16?
    var multipath = false
    var words: [String] = []
    var arguments = CommandLine.arguments.dropFirst()
    while let argument = arguments.popFirst() {
        switch argument {
        case "--host":
            guard let value = arguments.popFirst() else { fail("--host needs a value", status: 2) }
            host = value
        case "--port":
            guard let value = arguments.popFirst(), let number = UInt16(value) else {
                fail("--port needs a number 0-65535", status: 2)
            }
            port = number
        case "--multipath":
            multipath = true
        case "--tls": break  // see TLS.swift
        case "--ca-file", "--server-name": _ = arguments.popFirst()  // see TLS.swift
        case "-h", "--help":
            print("usage: EchoClient [--host HOST] --port PORT [--multipath] [--tls [--ca-file PEM] [--server-name NAME]] [words...]   (without words: sends standard input)")
            exit(0)
        default:
            words.append(argument)
        }
    }
    guard let port else { fail("--port is required; try --help", status: 2) }
    return (Endpoint(host: host, port: port), words, multipath)
}

/// Reads standard input to its end in chunks, passing each chunk to `send`.
///
/// The `read(2)` on descriptor 0 blocks the thread it runs on; that is fine for a command-line tool (it
/// blocks one thread of Swift's pool, not the event loop), but a server must never do it.
func forEachStdinChunk(_ send: @Sendable ([UInt8]) async throws -> Void) async throws {
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        try await send(Array(chunk[..<n]))
    }
}

func main() async -> Int32 {
    let (endpoint, words, multipath) = parseArguments()
    do {
        if tlsRequested {
            try await runTLS(endpoint, words)
            return 0
        }
        try await AsyncSocket.withConnection(to: endpoint, timeout: .seconds(10), multipath: multipath) { socket in
        if multipath {
            // Falling back to TCP is silent (no MPTCP in the kernel, or a server without it): say which it was.
            let note = socket.isMultipath ? "connected with Multipath TCP" : "connected with plain TCP (MPTCP fell back)"
            let bytes = Array("EchoClient: \(note)\n".utf8)
            _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            // The reader: print the echo as it arrives, until the server closes its side.
            group.addTask {
                var buffer: [UInt8] = []
                buffer.reserveCapacity(64 * 1024)
                while true {
                    buffer.removeAll(keepingCapacity: true)
                    let count = try await socket.read(into: &buffer, upTo: 64 * 1024)
                    if count == 0 { return }
                    writeStdout(buffer)
                }
            }
            // The writer: the words (joined by spaces, plus a newline), or standard input; then half-close.
            if words.isEmpty {
                // Off the loop: `read(2)` on standard input blocks its thread (see forEachStdinChunk).
                try await withTaskExecutorPreference(globalConcurrentExecutor) {
                    try await forEachStdinChunk { chunk in try await socket.write(chunk) }
                }
            } else {
                let message = words.joined(separator: " ") + "\n"
                try await socket.write(message)
            }
            try socket.shutdown(.write)
            try await group.waitForAll()
        }
        }                                           // closes the socket
        return 0
    } catch {
        fail("\(error)", status: 1)
    }
}

exit(await main())
