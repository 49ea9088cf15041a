// FlyingSocks (FlyingFox 0.27.1) UDP echo server: a datagram AsyncSocket on SocketPool<ePoll>,
// its `messages` sequence and `send(message:)` back (its tasks run on Swift's global pool).
// Usage: UDPEchoFlyingSocks PORT   (binds 127.0.0.1; port 0 = ephemeral; prints `listening PORT` when ready)
import FlyingSocks
#if canImport(Glibc)
import Glibc
#endif

let port = CommandLine.arguments.count > 1 ? UInt16(CommandLine.arguments[1]) ?? 0 : 0
let pool: SocketPool<ePoll> = .ePoll(maxEvents: 64)
try await pool.prepare()
let socket = try Socket(domain: AF_INET, type: .datagram)
try socket.bind(to: .inet(ip4: "127.0.0.1", port: port))
guard case let .ip4(_, boundPort) = try socket.sockname() else { fatalError("not an IPv4 socket") }
print("listening \(boundPort)")
fflush(nil)
let server = try AsyncSocket(socket: socket, pool: pool)
try await withThrowingDiscardingTaskGroup { group in
    group.addTask { try await pool.run() }
    do {
        // The `messages` sequence and `send(message:)` (recvmsg/sendmsg). On Linux (Swift 6.3, 2026-12-01) this
        // server, and the simpler `receive(atMost:)` -> (address, bytes) + `send(_:to:)`, died with SIGSEGV at
        // the first datagram; udp.sh leaves FlyingSocks out of its default list until that is understood.
        for try await message in server.messages(maxMessageLength: 65536) {
            try await server.send(message: message)
        }
    } catch {
        print("UDPEchoFlyingSocks: \(error)")
        fflush(nil)
        throw error
    }
}
