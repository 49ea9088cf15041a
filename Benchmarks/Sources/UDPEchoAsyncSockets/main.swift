// AsyncSockets UDP echo server: `for try await datagram in socket.datagrams` (batched receives, recvmmsg)
// and `send(_:to:)` back, inside `eventLoop.run { … }` so the loop's task runs without hops.
// Usage: UDPEchoAsyncSockets PORT   (binds 127.0.0.1; port 0 = ephemeral; prints `listening PORT` when ready)
import AsyncSockets
#if canImport(Glibc)
import Glibc
#endif

let port = CommandLine.arguments.count > 1 ? UInt16(CommandLine.arguments[1]) ?? 0 : 0
let socket = try DatagramSocket.bind(host: "127.0.0.1", port: port)
print("listening \(try await socket.localAddress.port!)")
fflush(nil)
try await socket.eventLoop.run {
    for try await datagram in socket.datagrams {
        do { try await socket.send(datagram.bytes, to: datagram.sender!) } catch {}
    }
}
