// In-process micro benchmark: connect + accept + close per second. An `AsyncServer` on 127.0.0.1 whose
// handler returns at once (so `serve` closes the connection); the client connects, waits for that close
// (end of stream), and closes its side. One cycle = one full connection lifetime on both ends.
//   ConnectAsyncSockets [--seconds D] [--warmup W] [--loop]
import AsyncSockets
import BenchSupport

let options = PingOptions(arguments: CommandLine.arguments + ["--in-process"])
let startedAt = nowNanoseconds()
let server = try AsyncServer(host: "127.0.0.1", port: 0)
let address = try SocketAddress(ipv4: "127.0.0.1", port: server.localAddress.port!)

@Sendable func run() async throws {
    let serving = Task { try await server.serve { _ in } }
    var buffer: [UInt8] = []
    buffer.reserveCapacity(16)
    try await runInProcessCycles(options, startedAt: startedAt, unit: "conn/s", scenario: "connect") {
        let socket = try await AsyncSocket.connect(to: address)
        buffer.removeAll(keepingCapacity: true)
        if try await socket.read(into: &buffer, upTo: 16) != 0 { fail("expected end of stream") }
        await socket.close()
    }
    server.close()
    serving.cancel()
    _ = try? await serving.value
}

if options.flags.contains("--loop") {
    try await EventLoop.shared.run { try await run() }
} else {
    try await run()
}
