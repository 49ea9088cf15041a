// EchoServer: a TCP echo server, the smallest complete AsyncSockets server.
//
// What it shows:
// - `AsyncServer(host:port:)` binding a port (0 picks a free one; `localAddress` tells which);
// - `server.serve { client in ... }`: one child task per client, many clients at once, each handler running
//   on the socket's event loop (no thread hops), each client closed when its handler returns;
// - reading into one reused buffer per connection (`read(into:upTo:)`, no allocation per read);
// - a clean shutdown on SIGINT/SIGTERM: `server.close()` ends `serve`, which cancels the running handlers
//   and returns once they are done; the process then exits with status 0.
//
// Run it:
//   swift run -c release EchoServer [--host 127.0.0.1] [--port 0] [--loops N] [--multipath]
// `--loops N` serves on a group of N event loop threads (default: the shared group, one loop per core).
// `--multipath` listens with Multipath TCP where the kernel allows it, plain TCP otherwise.
// Its first line on stdout (flushed at once) is exactly `listening on HOST:PORT`, with the real port.
// Then try it from another terminal:
//   swift run EchoClient --port PORT hello world
//   printf 'hi\n' | nc -q1 127.0.0.1 PORT        (or: nc -N 127.0.0.1 PORT)
// Stop it with Ctrl-C.
//
// Dispatch is used only to receive the signals; everything else is the library and plain Swift.

import AsyncSockets
import ExampleSupport
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Parses `[--host HOST] [--port PORT] [--loops N] [--multipath]`.
func parseArguments() -> (host: String, port: UInt16, group: EventLoopGroup, multipath: Bool) {
    var host = "127.0.0.1"
    var port: UInt16 = 0
    var group = EventLoopGroup.shared
    var multipath = false
    var arguments = CommandLine.arguments.dropFirst()
    while let argument = arguments.popFirst() {
        switch argument {
        case "--host":
            guard let value = arguments.popFirst() else { fail("--host needs a value") }
            host = value
        case "--port":
            guard let value = arguments.popFirst(), let number = UInt16(value) else { fail("--port needs a number 0-65535") }
            port = number
        case "--loops":
            guard let value = arguments.popFirst(), let count = Int(value), count >= 1 else { fail("--loops needs a number >= 1") }
            group = EventLoopGroup(loopCount: count)
        case "--multipath":
            multipath = true
        case "--tls-certificate", "--tls-key": _ = arguments.popFirst()  // see TLS.swift
        case "-h", "--help":
            printLine("usage: EchoServer [--host HOST] [--port PORT] [--loops N] [--multipath] [--tls-certificate PEM --tls-key PEM]   (defaults: 127.0.0.1, 0 = any free port, one loop per core)")
            exit(0)
        default:
            fail("unknown argument \(argument); try --help")
        }
    }
    return (host, port, group, multipath)
}

func main() async {
    let (host, port, group, multipath) = parseArguments()
    let server: AsyncServer
    do {
        // An IPv6 literal such as "::1" needs the IPv6 family; anything else is served over IPv4.
        server = try AsyncServer(host: host, port: port, family: host.contains(":") ? .ipv6 : .ipv4,
                                 multipath: multipath, group: group)
    } catch {
        fail("\(error)")
    }

    // Stop on SIGINT (Ctrl-C) and SIGTERM: turn off their default action, and close the server when one
    // arrives. `close()` is safe from any thread; it makes `serve` stop accepting, cancel its handlers and return.
    let signals = onTermination { server.close() }

    let tls = tlsContext()
    printLine("listening on \(server.localAddress)\(tls == nil ? "" : " (TLS)")")

    do {
        if let tls {
            try await serveTLS(server, tls)
        } else {
            try await server.serve { client in
                // One buffer per connection, reused for every read: no allocation per read once it has grown.
                var buffer: [UInt8] = []
                buffer.reserveCapacity(64 * 1024)
                while true {
                    buffer.removeAll(keepingCapacity: true)
                    let count = try await client.read(into: &buffer, upTo: 64 * 1024)
                    if count == 0 { return }          // the client shut down its side: we are done
                    try await client.write(buffer)
                }
            }
        }
    } catch {
        fail("\(error)")
    }
    // `serve` returned: the server is closed and every handler has finished (and closed its client).
    signals.forEach { $0.cancel() }
    printLine("stopped")
}

await main()
exit(0)
