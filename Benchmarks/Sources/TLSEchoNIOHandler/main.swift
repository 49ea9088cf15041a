// swift-nio-ssl echo server: `NIOSSLServerHandler` + a classic ChannelInboundHandler echo (write in
// `channelRead`, flush in `channelReadComplete`), as EchoNIOHandler. One event loop thread by default.
// Usage: TLSEchoNIOHandler PORT CERT.pem KEY.pem [THREADS]   (binds 127.0.0.1; prints `listening PORT`)
import NIOCore
import NIOPosix
import NIOSSL

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

let arguments = CommandLine.arguments
guard arguments.count > 3 else {
    print("usage: TLSEchoNIOHandler PORT CERT.pem KEY.pem [THREADS]")
    exit(2)
}
let port = Int(arguments[1]) ?? 0
let threads = arguments.count > 4 ? Int(arguments[4]) ?? 1 : 1
let configuration = TLSConfiguration.makeServerConfiguration(
    certificateChain: try NIOSSLCertificate.fromPEMFile(arguments[2]).map { .certificate($0) },
    privateKey: .privateKey(try NIOSSLPrivateKey(file: arguments[3], format: .pem))
)
let sslContext = try NIOSSLContext(configuration: configuration)
let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)

let channel = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 1024)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
            try channel.pipeline.syncOperations.addHandler(EchoHandler())
        }
    }
    .bind(host: "127.0.0.1", port: port)
    .wait()

print("listening \(channel.localAddress!.port!)")
fflush(nil)  // not `stdout`: Swift 6 rejects the global var as not concurrency-safe
try channel.closeFuture.wait()
