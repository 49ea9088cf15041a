// Demo: the quick-start tour of AsyncSockets in one process, no arguments, about a second.
//
// What it shows, step by step (each step prints what happened):
//  1. an echo server on 127.0.0.1 with an ephemeral port (`AsyncServer` + `serve`);
//  2. five clients connecting at once (`AsyncSocket.connect(to: Endpoint(...))`), each doing round trips;
//  3. a Happy Eyeballs race to "localhost" with the observer's timeline: the IPv6 attempt is refused (the
//     server listens on IPv4 only) and the IPv4 attempt starts at once instead of after the 250 ms delay;
//  4. a socket pair (`AsyncSocket.pair()`, Python's `socketpair`) with a half-close;
//  5. a read timeout (`SocketError` with `ETIMEDOUT`);
//  6. a refused connection and its error message;
//  7. cancelling a task that waits in `read`, and closing a socket under a waiting reader;
//  8. a clean shutdown: `server.close()` ends `serve`, which returns once every handler is done.
//
// Run it:
//   bash scripts/demo.sh              (installs libevent-dev if missing, then runs this)
//   swift run -c release Demo
// It exits with status 0 when every step behaved as described, 1 otherwise.

import AsyncSockets
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Prints a step's title.
func step(_ number: Int, _ title: String) {
    print("\n[\(number)] \(title)")
}

/// Prints an indented line of a step.
func show(_ line: String) {
    print("    " + line)
}

/// Something in the demo did not behave as described.
struct Unexpected: Error, CustomStringConvertible {
    var description: String
}

/// Checks an expectation of the demo: a failed one ends the demo with exit status 1.
func check(_ condition: Bool, _ what: String) throws {
    if !condition { throw Unexpected(description: what) }
}

/// Milliseconds of a duration, rounded, for display.
func milliseconds(_ duration: Duration) -> Int {
    Int(duration.components.seconds) * 1000 + Int(duration.components.attoseconds / 1_000_000_000_000_000)
}

/// "localhost" as a dual-stack machine resolves it: `::1` first (RFC 6724 prefers IPv6), then `127.0.0.1`.
/// Pinned so that the demo shows the same race on every machine, whatever its `/etc/hosts` says.
struct DualStackLocalhost: AddressResolver {
    func resolve(_ endpoint: Endpoint) async throws -> [SocketAddress] {
        [try SocketAddress(ipv6: "::1", port: endpoint.port), try SocketAddress(ipv4: "127.0.0.1", port: endpoint.port)]
    }
}

/// Collects the Happy Eyeballs observer's events (the observer is called on the connecting task, in order).
final class Timeline: @unchecked Sendable {
    // @unchecked Sendable: `events` is appended to only by the observer, which `connect` calls on the
    // connecting task, one event after another, and read only after `connect` has returned.
    var events: [ConnectionRaceEvent] = []
}

func runDemo() async throws {
    let started = ContinuousClock.now
    print("AsyncSockets demo: Python's socket module, async, on libevent.")

    // MARK: 1. Server
    step(1, "Start an echo server")
    let server = try AsyncServer(host: "127.0.0.1", port: 0)
    let port = server.localAddress.port!
    show("listening on \(server.localAddress) (port 0 asked the kernel for a free port)")
    let serving = Task {
        try await server.serve { client in
            // One task per client, on the event loop's thread; the client is closed when this returns.
            var buffer: [UInt8] = []
            while try await client.read(into: &buffer, upTo: 65536) > 0 {
                try await client.write(buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
    }

    // MARK: 2. Concurrent clients
    step(2, "Connect 5 clients at once, 3 round trips each")
    let clientsStart = ContinuousClock.now
    let reports = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
        for id in 1...5 {
            group.addTask {
                let socket = try await AsyncSocket.connect(to: Endpoint(host: "127.0.0.1", port: port))
                var allEchoed = true
                for round in 1...3 {
                    let message = Array("client \(id), round \(round)\n".utf8)
                    try await socket.write(message)
                    let echo = try await socket.read(exactly: message.count)
                    allEchoed = allEchoed && echo == message
                }
                await socket.close()
                return (id, allEchoed)
            }
        }
        var reports: [(Int, Bool)] = []
        for try await report in group { reports.append(report) }
        return reports.sorted { $0.0 < $1.0 }
    }
    for (id, ok) in reports {
        show("client \(id): 3 messages sent, 3 echoes \(ok ? "matched" : "DID NOT MATCH")")
        try check(ok, "client \(id)'s echoes differ")
    }
    show("all 5 done in \(milliseconds(ContinuousClock.now - clientsStart)) ms")

    // MARK: 3. Happy Eyeballs
    step(3, "Happy Eyeballs: connect to \"localhost\":\(port) (resolving to ::1 and 127.0.0.1)")
    let timeline = Timeline()
    let raced = try await AsyncSocket.connect(to: Endpoint(host: "localhost", port: port),
                                              resolver: DualStackLocalhost()) { event in
        timeline.events.append(event)
    }
    for event in timeline.events { show("\(event)") }
    let winner = try await raced.remoteAddress
    show("connected to \(winner): the IPv6 attempt failed fast, so IPv4 started at once (no 250 ms wait)")
    try check(winner.family == .ipv4, "expected the IPv4 address to win")
    try await raced.write("via Happy Eyeballs\n")
    try check(try await raced.read(exactly: 19) == Array("via Happy Eyeballs\n".utf8), "echo over the raced socket")
    await raced.close()

    // MARK: 4. Socket pair
    step(4, "A socket pair (socketpair(AF_UNIX, SOCK_STREAM)) with a half-close")
    let (left, right) = try AsyncSocket.pair()
    try await left.write("ping")
    let ping = try await right.read(exactly: 4)
    try await right.write("pong")
    let pong = try await left.read(exactly: 4)
    show("left -> right: \(String(decoding: ping, as: UTF8.self)); right -> left: \(String(decoding: pong, as: UTF8.self))")
    try await left.shutdown(.write)
    let end = try await right.read(upTo: 100)
    show("left.shutdown(.write): right reads \(end) (end of stream), and can still write back")
    try check(end.isEmpty, "expected end of stream")
    try await right.write("bye")
    try check(try await left.read(exactly: 3) == Array("bye".utf8), "write after the peer's half-close")

    // MARK: 5. Timeout
    step(5, "A read timeout: nothing arrives within 100 ms")
    await left.setTimeout(.milliseconds(100))
    let waitStart = ContinuousClock.now
    do {
        _ = try await left.read(upTo: 100)
        try check(false, "the read should have timed out")
    } catch let error as SocketError where error.isTimeout {
        show("after \(milliseconds(ContinuousClock.now - waitStart)) ms: \(error)")
    }
    await left.close()
    await right.close()

    // MARK: 6. Refused
    step(6, "Connecting to a port nobody listens on")
    let closed = try AsyncServer(host: "127.0.0.1", port: 0)
    let closedPort = closed.localAddress.port!
    closed.close()     // the port was free a moment ago and nobody listens on it now
    do {
        _ = try await AsyncSocket.connect(to: Endpoint(host: "127.0.0.1", port: closedPort))
        try check(false, "the connection should have been refused")
    } catch let error as SocketError {
        show("\(error)")
        show("code: \(error.codeName), operation: \(error.operation), address: \(error.address.map { "\($0)" } ?? "-")")
        try check(error.codeName == "ECONNREFUSED", "expected ECONNREFUSED")
    }

    // MARK: 7. Cancellation and close
    step(7, "Cancelling a waiting read, then closing a socket under a waiting reader")
    let (a, b) = try AsyncSocket.pair()
    let reader = Task { try await a.read(upTo: 100) }
    try await Task.sleep(for: .milliseconds(20))    // let the reader start waiting (a demo, not a test)
    let cancelAt = ContinuousClock.now
    reader.cancel()
    do {
        _ = try await reader.value
        try check(false, "the read should have been cancelled")
    } catch is CancellationError {
        show("reader.cancel(): the read threw CancellationError after \(milliseconds(ContinuousClock.now - cancelAt)) ms")
    }
    try await b.write("still usable")
    let after = try await a.read(exactly: 12)
    show("the socket stays usable: read \"\(String(decoding: after, as: UTF8.self))\"")
    let blocked = Task { try await a.read(upTo: 100) }
    try await Task.sleep(for: .milliseconds(20))
    await a.close()
    do {
        _ = try await blocked.value
        try check(false, "the read should have failed")
    } catch let error as SocketError {
        show("a.close() under a waiting read: \(error)")
    }
    await b.close()

    // MARK: 8. Shutdown
    step(8, "Shut down")
    server.close()
    try await serving.value
    show("server.close(): serve returned after its handlers finished; all sockets closed")
    print("\nDone in \(milliseconds(ContinuousClock.now - started)) ms.")
}

do {
    try await runDemo()
} catch {
    print("\nThe demo failed: \(error)")
    exit(1)
}
