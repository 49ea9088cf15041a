// SwiftNIO echo server with a classic ChannelInboundHandler (NIO's ceiling). One event loop thread by default.
// Usage: EchoNIOHandler PORT [THREADS]   (binds 127.0.0.1; port 0 = ephemeral; prints `listening PORT` when ready)
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 0 : 0
// An optional second argument sets the number of event loop threads (1 by default).
let threads = CommandLine.arguments.count > 2 ? Int(CommandLine.arguments[2]) ?? 1 : 1
let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)

let channel = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 1024)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(EchoHandler())
        }
    }
    .bind(host: "127.0.0.1", port: port)
    .wait()

print("listening \(channel.localAddress!.port!)")
fflush(nil)  // not `stdout`: Swift 6 rejects the global var as not concurrency-safe
try channel.closeFuture.wait()
