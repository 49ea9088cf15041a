// AsyncSockets echo server, written exactly the way the README teaches it: `AsyncServer.serve`
// with one reused read buffer per connection. No executor or event-loop configuration: whatever
// performance this shows is what a user gets by default.
// Usage: EchoAsyncSockets PORT   (binds 127.0.0.1; port 0 = ephemeral; prints `listening PORT` when ready)
import AsyncSockets

#if canImport(Glibc)
import Glibc
#endif

let port = CommandLine.arguments.count > 1 ? UInt16(CommandLine.arguments[1]) ?? 0 : 0

let server = try AsyncServer(host: "127.0.0.1", port: port)
print("listening \(server.localAddress.port!)")
fflush(nil)  // not `stdout`: Swift 6 rejects the global var as not concurrency-safe

// The same handler as the README's "serve" snippet: the buffer grows to the largest read and is reused.
try await server.serve { client in
    var buffer: [UInt8] = []
    while try await client.read(into: &buffer, upTo: 65536) > 0 {
        try await client.write(buffer)
        buffer.removeAll(keepingCapacity: true)
    }
}
