// DatagramEcho: a UDP echo server, the smallest complete DatagramSocket program.
//
// What it shows:
// - `DatagramSocket.bind(host:port:)` (port 0 picks a free one; `localAddress` tells which);
// - `for try await datagram in socket.datagrams`: every readiness report drained in batches (recvmmsg on
//   Linux), each datagram with its bytes, its sender and whether it was truncated;
// - `send(_:to:)` back to the sender, and errors about one datagram (a sender that went away) skipped;
// - a clean shutdown on SIGINT/SIGTERM: `close()` ends the `datagrams` loop; the process exits with status 0.
//
// Run it:
//   swift run -c release DatagramEcho [--host 127.0.0.1] [--port 0]
// Its first line on stdout (flushed at once) is exactly `listening on HOST:PORT`, with the real port.
// Then try it from another terminal:
//   echo hello | nc -u -w1 127.0.0.1 PORT
//   python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"hi", ("127.0.0.1", PORT)); print(s.recv(100))'
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

/// Parses `[--host HOST] [--port PORT]`.
func parseArguments() -> (host: String, port: UInt16) {
    var host = "127.0.0.1"
    var port: UInt16 = 0
    var arguments = CommandLine.arguments.dropFirst()
    while let argument = arguments.popFirst() {
        switch argument {
        case "--host":
            guard let value = arguments.popFirst() else { fail("--host needs a value") }
            host = value
        case "--port":
            guard let value = arguments.popFirst(), let number = UInt16(value) else { fail("--port needs a number 0-65535") }
            port = number
        case "-h", "--help":
            printLine("usage: DatagramEcho [--host HOST] [--port PORT]   (defaults: 127.0.0.1, 0 = any free port)")
            exit(0)
        default:
            fail("unknown argument \(argument); try --help")
        }
    }
    return (host, port)
}

func main() async {
    let (host, port) = parseArguments()
    let socket: DatagramSocket
    let local: SocketAddress
    do {
        // An IPv6 literal such as "::1" needs the IPv6 family; anything else is served over IPv4.
        socket = try DatagramSocket.bind(host: host, port: port, family: host.contains(":") ? .ipv6 : .ipv4)
        local = try await socket.localAddress
    } catch {
        fail("\(error)")
    }

    // Stop on SIGINT (Ctrl-C) and SIGTERM: turn off their default action, and close the socket when one
    // arrives, which ends the `datagrams` loop below.
    let signals = onTermination { Task { await socket.close() } }

    printLine("listening on \(local)")

    // The loop runs on the socket's event loop: no thread hop per datagram.
    await socket.eventLoop.run {
        while true {
            do {
                for try await datagram in socket.datagrams {
                    guard let sender = datagram.sender else { continue }
                    // An error about one datagram (its sender's network went away, no buffer space) fails only
                    // that send: skip it and keep serving.
                    do { try await socket.send(datagram.bytes, to: sender) } catch {}
                }
                return  // the socket was closed
            } catch is CancellationError {
                return
            } catch {
                // A receive error (the socket stays usable): report it and keep serving.
                writeAll(2, "DatagramEcho: \(error)\n")
            }
        }
    }
    signals.forEach { $0.cancel() }
    printLine("stopped")
}

await main()
exit(0)
