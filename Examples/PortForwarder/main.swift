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
// `--to HOST:PORT` (a name, an IPv4 address, or `[IPv6]:PORT`).
// Its first line on stdout (flushed) is `listening on HOST:PORT`; each connection logs one line on stderr.

import AsyncSockets
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Prints a line and flushes stdout at once (`fflush(nil)` flushes every output stream).
func say(_ line: String) {
    print(line)
    fflush(nil)
}

/// Writes one line to standard error.
func log(_ line: String) {
    let bytes = Array("PortForwarder: \(line)\n".utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

/// Prints a message on standard error and exits with status 2.
func fail(_ message: String) -> Never {
    log(message)
    exit(2)
}

/// Parses `HOST:PORT` or `[IPv6]:PORT`.
func parseTarget(_ text: String) -> Endpoint? {
    guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else { return nil }
    var host = Substring(text[..<colon])
    if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
    guard !host.isEmpty else { return nil }
    return Endpoint(host: String(host), port: port)
}

/// Parses `--listen PORT [--listen-host HOST] --to HOST:PORT`.
func parseArguments() -> (listenHost: String, listenPort: UInt16, target: Endpoint) {
    var listenHost = "127.0.0.1"
    var listenPort: UInt16?
    var target: Endpoint?
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
        case "-h", "--help":
            say("usage: PortForwarder --listen PORT [--listen-host HOST] --to HOST:PORT")
            exit(0)
        default:
            fail("unknown argument \(argument); try --help")
        }
    }
    guard let listenPort, let target else { fail("--listen and --to are required; try --help") }
    return (listenHost, listenPort, target)
}

/// Copies bytes from `source` to `destination` until `source` reaches end of stream, then half-closes
/// `destination` so its peer sees end of stream too. Returns the number of bytes copied.
func pipe(from source: AsyncSocket, to destination: AsyncSocket) async throws -> Int {
    var buffer: [UInt8] = []
    buffer.reserveCapacity(64 * 1024)
    var total = 0
    while true {
        buffer.removeAll(keepingCapacity: true)
        let count = try await source.read(into: &buffer, upTo: 64 * 1024)
        if count == 0 { break }
        try await destination.write(buffer)
        total += count
    }
    try await destination.shutdown(.write)
    return total
}

func main() async {
    let (listenHost, listenPort, target) = parseArguments()
    let server: AsyncServer
    do {
        server = try AsyncServer(host: listenHost, port: listenPort, family: listenHost.contains(":") ? .ipv6 : .ipv4)
    } catch {
        fail("\(error)")
    }
    let signals = [SIGINT, SIGTERM].map { number in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler { server.close() }
        source.resume()
        return source
    }

    say("listening on \(server.localAddress), forwarding to \(target)")

    do {
        try await server.serve(onError: { error, _ in
            if !(error is CancellationError) { log("connection ended with an error: \(error)") }
        }) { inbound in
            let client = (try? inbound.remoteAddress.description) ?? "?"
            // `withConnection` closes `outbound` when its body returns or throws; `serve` closes `inbound`
            // when this handler does.
            // (`[inbound]`: Swift 6.3's region checker rejects the handler's isolated parameter captured
            // directly in the child tasks below, "pattern ... does not understand"; a captured copy is fine.)
            let (up, down) = try await AsyncSocket.withConnection(to: target, timeout: .seconds(10)) { [inbound] outbound in
                // The connect timeout stays as the socket's read/write timeout: a forwarder waits as long as
                // the two ends like, so turn it off again.
                outbound.timeout = nil
                // Both directions at once. If one throws (a reset, say), the group cancels the other.
                return try await withThrowingTaskGroup(of: (Bool, Int).self) { group in
                    group.addTask { (true, try await pipe(from: inbound, to: outbound)) }
                    group.addTask { (false, try await pipe(from: outbound, to: inbound)) }
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
exit(0)
