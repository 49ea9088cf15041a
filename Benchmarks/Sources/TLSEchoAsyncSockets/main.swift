// AsyncSockets TLS echo server: `AsyncServer.serveTLS` (the default fast path) with one reused read buffer per
// connection, `read(into:upTo:)` + `write`. No executor or event-loop configuration, as EchoAsyncSockets:
// the shared group (one loop per CPU the process may run on, or `ASYNCSOCKETS_LOOP_COUNT`).
// Usage: TLSEchoAsyncSockets PORT CERT.pem KEY.pem   (binds 127.0.0.1; port 0 = ephemeral; prints `listening PORT`)
import AsyncSockets
import AsyncSocketsTLS

#if canImport(Glibc)
import Glibc
#endif

let arguments = CommandLine.arguments
guard arguments.count > 3 else {
    print("usage: TLSEchoAsyncSockets PORT CERT.pem KEY.pem")
    exit(2)
}
let port = UInt16(arguments[1]) ?? 0
let context = try TLSContext(.server(certificateChain: .file(arguments[2]), privateKey: .file(arguments[3])))

let server = try AsyncServer(host: "127.0.0.1", port: port)
print("listening \(server.localAddress.port!)")
fflush(nil)  // not `stdout`: Swift 6 rejects the global var as not concurrency-safe
try await server.serveTLS(context: context) { client in
    var buffer: [UInt8] = []
    while try await client.read(into: &buffer, upTo: 65536) > 0 {
        try await client.write(buffer)
        buffer.removeAll(keepingCapacity: true)
    }
}
