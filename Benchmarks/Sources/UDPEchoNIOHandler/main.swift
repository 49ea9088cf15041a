// SwiftNIO UDP echo server, classic handler API: DatagramBootstrap with a ChannelInboundHandler that writes
// each AddressedEnvelope back in channelRead and flushes in channelReadComplete. NIO's defaults otherwise.
// Usage: UDPEchoNIOHandler PORT   (binds 127.0.0.1; port 0 = ephemeral; prints `listening PORT` when ready)
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }
}

let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 0 : 0
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let channel = try await DatagramBootstrap(group: group)
    .channelOption(.socketOption(.so_reuseaddr), value: 1)
    .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(EchoHandler()) }
    }
    .bind(host: "127.0.0.1", port: port).get()
print("listening \(channel.localAddress!.port!)")
fflush(nil)
try await channel.closeFuture.get()
