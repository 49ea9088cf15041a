// PortForwarder: a TCP port forwarder (a tiny `socat TCP-LISTEN:PORT,fork TCP:HOST:PORT`).
//
// What it shows:
// - a server whose handlers are themselves clients: each accepted connection connects onward with
//   `AsyncSocket.withConnection(to: Endpoint(...))`, so the target may be a host name and gets Happy
//   Eyeballs, and the upstream socket is closed however the connection ends;
// - full-duplex piping with two child tasks per connection, one per direction;
// - half-close done right: when one side reaches end of stream, the forwarder calls `shutdown(.write)` on
//   the other side and keeps the opposite direction flowing until it ends too;
// - structured concurrency: `serve` runs many connections at once, an error in one connection ends only
//   that connection (its other direction is cancelled), and SIGINT/SIGTERM closes the server, which cancels
//   every connection and returns.
//
// Run it, in front of the echo server for example:
//   swift run -c release EchoServer --port 7000
//   swift run -c release PortForwarder --listen 7001 --to 127.0.0.1:7000
//   swift run EchoClient --port 7001 hello through the forwarder
// Options: `--listen PORT` (0 picks a free one), `--listen-host HOST` (default 127.0.0.1),
// `--to HOST:PORT` (a name, an IPv4 address, or `[IPv6]:PORT`), `--loops N` (a group of N event loop threads;
// default: the shared group, one loop per core), `--idle-timeout SECONDS` (close a connection on which no byte
// moved either way for that long; default: never). Each outbound connection lives on its inbound connection's
// loop (it is created by the handler, which prefers that loop), so the two pipes of a connection never
// cross threads.
// Its first line on stdout (flushed) is `listening on HOST:PORT`; each connection logs one line on stderr.
// Both go through a `Logger` (Examples/Support/Logger.swift): output nobody reads drops log lines, never blocks the loop.

import AsyncSockets
import ExampleSupport
import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The logs of stdout and stderr: a line is queued, and written (at once) by a task of its own.
let standardOutput = Logger(descriptor: 1)
let standardError = Logger(descriptor: 2)

/// Queues a line for stdout (written at once, unbuffered), never blocking the caller.
func say(_ line: String) {
    standardOutput.log(line)
}

/// Queues one line for standard error, never blocking the caller (handlers call it on the event loop).
func log(_ line: String) {
    standardError.log("PortForwarder: \(line)")
}

/// Parses `HOST:PORT` or `[IPv6]:PORT`.
func parseTarget(_ text: String) -> Endpoint? {
    guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else { return nil }
    var host = Substring(text[..<colon])
    if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
    guard !host.isEmpty else { return nil }
    return Endpoint(host: String(host), port: port)
}

/// Parses `--listen PORT [--listen-host HOST] --to HOST:PORT [--loops N] [--idle-timeout SECONDS]`.
func parseArguments() -> (listenHost: String, listenPort: UInt16, target: Endpoint, group: EventLoopGroup,
                          idleTimeout: Duration?) {
    var group = EventLoopGroup.shared
    var listenHost = "127.0.0.1"
    var listenPort: UInt16?
    var target: Endpoint?
    var idleTimeout: Duration?
    var arguments = CommandLine.arguments.dropFirst()
    while let argument = arguments.popFirst() {
        switch argument {
        case "--listen":
            guard let value = arguments.popFirst(), let port = UInt16(value) else { fail("--listen needs a port 0-65535") }
            listenPort = port
        case "--listen-host":
            guard let value = arguments.popFirst() else { fail("--listen-host needs a value") }
            listenHost = value
        case "--to":
            guard let value = arguments.popFirst(), let endpoint = parseTarget(value) else { fail("--to needs HOST:PORT") }
            target = endpoint
        case "--loops":
            guard let value = arguments.popFirst(), let count = Int(value), count >= 1 else { fail("--loops needs a number >= 1") }
            group = EventLoopGroup(loopCount: count)
        case "--idle-timeout":
            guard let value = arguments.popFirst(), let seconds = Double(value), seconds.isFinite, seconds > 0, seconds < 1e9 else {
                fail("--idle-timeout needs a number of seconds greater than 0")
            }
            idleTimeout = .milliseconds(Int64((seconds * 1000).rounded(.up)))
        case "-h", "--help":
            writeAll(1, "usage: PortForwarder --listen PORT [--listen-host HOST] --to HOST:PORT [--loops N] [--idle-timeout SECONDS]\n")
            exit(0)
        default:
            fail("unknown argument \(argument); try --help")
        }
    }
    guard let listenPort, let target else { fail("--listen and --to are required; try --help") }
    return (listenHost, listenPort, target, group, idleTimeout)
}

/// When bytes last moved on a connection, either way: with `--idle-timeout`, a read that times out while
/// the other direction is busy (a long download after a short request) just waits again.
final class Activity: Sendable {
    private let last = Mutex(ContinuousClock.now)

    /// Bytes moved now.
    func touch() { last.withLock { $0 = .now } }

    /// Whether nothing moved for `timeout`.
    func isIdle(for timeout: Duration) -> Bool { last.withLock { ContinuousClock.now - $0 >= timeout } }
}

/// Copies bytes from `source` to `destination` until `source` reaches end of stream, then half-closes
/// `destination` so its peer sees end of stream too. Returns the number of bytes copied. A read that times
/// out (the sockets' timeout is the idle timeout) ends the copy only when `activity` saw nothing move.
func pipe(from source: AsyncSocket, to destination: AsyncSocket, activity: Activity) async throws -> Int {
    var buffer: [UInt8] = []
    buffer.reserveCapacity(64 * 1024)
    var total = 0
    while true {
        buffer.removeAll(keepingCapacity: true)
        let count: Int
        do {
            count = try await source.read(into: &buffer, upTo: 64 * 1024)
        } catch let error as SocketError where error.isTimeout {
            if let timeout = await source.timeout, !activity.isIdle(for: timeout) { continue }
            throw error
        }
        if count == 0 { break }
        activity.touch()
        try await destination.write(buffer)
        activity.touch()
        total += count
    }
    try await destination.shutdown(.write)
    return total
}

func main() async {
    let (listenHost, listenPort, target, group, idleTimeout) = parseArguments()
    let server: AsyncServer
    do {
        server = try AsyncServer(host: listenHost, port: listenPort, family: listenHost.contains(":") ? .ipv6 : .ipv4,
                                 group: group)
    } catch {
        fail("\(error)")
    }
    let signals = onTermination { server.close() }

    say("listening on \(server.localAddress), forwarding to \(target)")

    do {
        try await server.serve(idleTimeout: idleTimeout, onError: { error, _ in
            if !(error is CancellationError) { log("connection ended with an error: \(error)") }
        }) { inbound in
            let client = (try? inbound.remoteAddress.description) ?? "?"
            // `withConnection` closes `outbound` when its body returns or throws; `serve` closes `inbound`
            // when this handler does.
            // (`[inbound]`: Swift 6.3's region checker rejects the handler's isolated parameter captured
            // directly in the child tasks below, "pattern ... does not understand"; a captured copy is fine.)
            let (up, down) = try await AsyncSocket.withConnection(to: target, timeout: .seconds(10)) { [inbound] outbound in
                // The connect timeout stays as the socket's read/write timeout: a forwarder waits as long as
                // the two ends like (or up to the idle timeout), so set that instead.
                outbound.timeout = idleTimeout
                let activity = Activity()
                // Both directions at once. If one throws (a reset, say), the group cancels the other.
                return try await withThrowingTaskGroup(of: (Bool, Int).self) { group in
                    group.addTask { (true, try await pipe(from: inbound, to: outbound, activity: activity)) }
                    group.addTask { (false, try await pipe(from: outbound, to: inbound, activity: activity)) }
                    var up = 0, down = 0
                    for try await (isUp, count) in group {
                        if isUp { up = count } else { down = count }
                    }
                    return (up, down)
                }
            }
            log("\(client) -> \(target): \(up) bytes up, \(down) bytes down")
        }
    } catch {
        fail("\(error)")
    }
    signals.forEach { $0.cancel() }
    say("stopped")
}

await main()
await standardOutput.finish()
await standardError.finish()
exit(0)
