// AsyncSockets UDP echo server: `for try await datagram in socket.datagrams` (batched receives, recvmmsg)
// and `send(_:to:)` back, inside `eventLoop.run { … }` so the loop's task runs without hops.
// With `--receive`, a plain `receive()` loop instead of the sequence (one recvmsg per datagram).
// Usage: UDPEchoAsyncSockets PORT [--receive]   (binds 127.0.0.1; port 0 = ephemeral; prints `listening PORT`)
import AsyncSockets
#if canImport(Glibc)
import Glibc
#endif

let port = CommandLine.arguments.count > 1 ? UInt16(CommandLine.arguments[1]) ?? 0 : 0
let plainReceive = CommandLine.arguments.contains("--receive")
let socket = try DatagramSocket.bind(host: "127.0.0.1", port: port)
print("listening \(try await socket.localAddress.port!)")
fflush(nil)
/// The echo loop, in a nonisolated function: top-level code is on the main actor, and a closure written there
/// would run there (a thread hop to the main thread and back per datagram), task executor preference or not.
func echo(_ socket: DatagramSocket) async throws {
    try await socket.eventLoop.run {
        if plainReceive {
            while true {
                let datagram = try await socket.receive()
                do { try await socket.send(datagram.bytes, to: datagram.sender!) } catch {}
            }
        }
        for try await datagram in socket.datagrams {
            do { try await socket.send(datagram.bytes, to: datagram.sender!) } catch {}
        }
    }
}
try await echo(socket)
