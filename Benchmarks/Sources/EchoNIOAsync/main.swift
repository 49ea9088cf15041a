// SwiftNIO echo server using NIO's async API (NIOAsyncChannel), written the way NIO's
// "swift-concurrency" documentation teaches it. One event loop thread.
// Usage: EchoNIOAsync PORT   (binds 127.0.0.1; port 0 = ephemeral; prints `listening PORT` when ready)
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 0 : 0
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

let serverChannel = try await ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 1024)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .bind(host: "127.0.0.1", port: port) { childChannel in
        childChannel.eventLoop.makeCompletedFuture {
            try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: childChannel)
        }
    }

print("listening \(serverChannel.channel.localAddress!.port!)")
fflush(nil)  // not `stdout`: Swift 6 rejects the global var as not concurrency-safe

try await withThrowingDiscardingTaskGroup { group in
    try await serverChannel.executeThenClose { serverChannelInbound in
        for try await connectionChannel in serverChannelInbound {
            group.addTask {
                do {
                    try await connectionChannel.executeThenClose { inbound, outbound in
                        for try await inboundData in inbound {
                            try await outbound.write(inboundData)
                        }
                    }
                } catch {
                    // A reset peer is normal in churn tests; ignore.
                }
            }
        }
    }
}
