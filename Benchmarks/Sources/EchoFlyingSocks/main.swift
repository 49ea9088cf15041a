// FlyingSocks (FlyingFox 0.27.1) echo server: AsyncSocket on a SocketPool backed by epoll
// (edge-triggered, the library's Linux default). The pool runs in one task; FlyingSocks resumes
// connection tasks on Swift's global concurrency pool.
// Usage: EchoFlyingSocks PORT   (binds 127.0.0.1; port 0 = ephemeral; prints `listening PORT` when ready)
import FlyingSocks
import Foundation

#if canImport(Glibc)
import Glibc
#endif

signal(SIGPIPE, SIG_IGN)
let port = CommandLine.arguments.count > 1 ? UInt16(CommandLine.arguments[1]) ?? 0 : 0

let pool: SocketPool<ePoll> = .ePoll(maxEvents: 64)
try await pool.prepare()

let listener = try Socket(domain: AF_INET)
try listener.setValue(true, for: .localAddressReuse)
try listener.bind(to: .inet(ip4: "127.0.0.1", port: port))
try listener.listen(maxPendingConnection: 1024)
guard case let .ip4(_, boundPort) = try listener.sockname() else { fatalError("not an IPv4 socket") }
print("listening \(boundPort)")
fflush(nil)  // not `stdout`: Swift 6 rejects the global var as not concurrency-safe

let server = try AsyncSocket(socket: listener, pool: pool)

func setNoDelay(_ socket: Socket) {
    var one: Int32 = 1
    _ = setsockopt(socket.file.rawValue, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
}

try await withThrowingDiscardingTaskGroup { group in
    group.addTask { try await pool.run() }
    for try await client in server.sockets {
        setNoDelay(client.socket)
        group.addTask {
            do {
                while true {
                    // FlyingSocks caps a single read at 4096 bytes; an empty read means end of stream.
                    let bytes = try await client.read(atMost: 65536)
                    if bytes.isEmpty { break }
                    try await client.write(Data(bytes))
                }
            } catch {
                // Disconnects (SocketError.disconnected) are the normal way a connection ends here.
            }
            try? client.close()
        }
    }
}
