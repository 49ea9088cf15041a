// AsyncSockets echo server, written exactly the way the README teaches it: `AsyncServer.serve`
// with one reused read buffer per connection. No executor or event-loop configuration: whatever
// performance this shows is what a user gets by default (the shared group: one loop per CPU the process may
// run on, or `ASYNCSOCKETS_LOOP_COUNT`).
// Usage: EchoAsyncSockets PORT [--reuseport N]   (binds 127.0.0.1; port 0 = ephemeral; prints `listening PORT`)
//   --reuseport N: instead, N servers on one port with SO_REUSEPORT, each on a group of one loop of its own
//   (one listener per loop, the kernel spreading connections), to compare with the single acceptor.
import AsyncSockets

#if canImport(Glibc)
import Glibc
#endif

let port = CommandLine.arguments.count > 1 ? UInt16(CommandLine.arguments[1]) ?? 0 : 0
let reusePortListeners = CommandLine.arguments.count > 3 && CommandLine.arguments[2] == "--reuseport"
    ? Int(CommandLine.arguments[3]) ?? 0 : 0

// The same handler as the README's "serve" snippet: the buffer grows to the largest read and is reused.
@Sendable func echo(_ client: isolated AsyncSocket) async throws {
    var buffer: [UInt8] = []
    while try await client.read(into: &buffer, upTo: 65536) > 0 {
        try await client.write(buffer)
        buffer.removeAll(keepingCapacity: true)
    }
}

if reusePortListeners > 0 {
    let first = try AsyncServer(host: "127.0.0.1", port: port, reusePort: true, group: EventLoopGroup(loopCount: 1))
    var servers = [first]
    for _ in 1..<reusePortListeners {
        servers.append(try AsyncServer(host: "127.0.0.1", port: first.localAddress.port!, reusePort: true,
                                       group: EventLoopGroup(loopCount: 1)))
    }
    print("listening \(first.localAddress.port!)")
    fflush(nil)
    try await withThrowingTaskGroup(of: Void.self) { tasks in
        for server in servers { tasks.addTask { try await server.serve(handler: echo) } }
        try await tasks.waitForAll()
    }
} else {
    let server = try AsyncServer(host: "127.0.0.1", port: port)
    print("listening \(server.localAddress.port!)")
    fflush(nil)  // not `stdout`: Swift 6 rejects the global var as not concurrency-safe
    try await server.serve(handler: echo)
}
