// swift-nio-ssl echo server over NIO's async API: `NIOSSLServerHandler` in the child channel's pipeline, then
// `NIOAsyncChannel` with an inbound/outbound loop, as EchoNIOAsync. One event loop thread.
// Usage: TLSEchoNIOAsync PORT CERT.pem KEY.pem   (binds 127.0.0.1; port 0 = ephemeral; prints `listening PORT`)
import NIOCore
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#endif

let arguments = CommandLine.arguments
guard arguments.count > 3 else {
    print("usage: TLSEchoNIOAsync PORT CERT.pem KEY.pem")
    exit(2)
}
let port = Int(arguments[1]) ?? 0
let configuration = TLSConfiguration.makeServerConfiguration(
    certificateChain: try NIOSSLCertificate.fromPEMFile(arguments[2]).map { .certificate($0) },
    privateKey: .privateKey(try NIOSSLPrivateKey(file: arguments[3], format: .pem))
)
let sslContext = try NIOSSLContext(configuration: configuration)
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

let serverChannel = try await ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 1024)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .bind(host: "127.0.0.1", port: port) { childChannel in
        childChannel.eventLoop.makeCompletedFuture {
            try childChannel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
            return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: childChannel)
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
                    // A reset peer or a failed handshake is normal in the handshake scenario; ignore.
                }
            }
        }
    }
}
