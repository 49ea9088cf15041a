// In-process micro benchmark: connect + accept + close per second with SwiftNIO's async API (one event
// loop thread). The server's per-connection task closes at once; the client connects with
// ClientBootstrap + NIOAsyncChannel, reads until end of stream, and closes. Same output as
// ConnectAsyncSockets.
import BenchSupport
import NIOCore
import NIOPosix

let options = PingOptions(arguments: CommandLine.arguments + ["--in-process"])
let startedAt = nowNanoseconds()
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

let serverChannel = try await ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 1024)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .bind(host: "127.0.0.1", port: 0) { child in
        child.eventLoop.makeCompletedFuture {
            try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: child)
        }
    }
let port = serverChannel.channel.localAddress!.port!

@Sendable func run() async throws {
    try await withThrowingDiscardingTaskGroup { tasks in
        tasks.addTask {
            try await serverChannel.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { connections in
                    for try await connection in inbound {
                        connections.addTask {
                            try? await connection.executeThenClose { _, _ in }
                        }
                    }
                }
            }
        }
        try await runInProcessCycles(options, startedAt: startedAt, unit: "conn/s", scenario: "connect") {
            let client = try await ClientBootstrap(group: group)
                .connect(host: "127.0.0.1", port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            try await client.executeThenClose { inbound, _ in
                for try await _ in inbound { fail("expected end of stream") }
            }
        }
        try await serverChannel.channel.close()
    }
}

try await run()
