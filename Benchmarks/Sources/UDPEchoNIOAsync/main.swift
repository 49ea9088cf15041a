// SwiftNIO UDP echo server, async API: DatagramBootstrap + NIOAsyncChannel of AddressedEnvelope<ByteBuffer>,
// `for try await envelope in inbound { try await outbound.write(envelope) }`.
// Usage: UDPEchoNIOAsync PORT   (binds 127.0.0.1; port 0 = ephemeral; prints `listening PORT` when ready)
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 0 : 0
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let channel = try await DatagramBootstrap(group: group)
    .bind(host: "127.0.0.1", port: port) { channel in
        channel.eventLoop.makeCompletedFuture {
            try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(
                wrappingChannelSynchronously: channel)
        }
    }
print("listening \(channel.channel.localAddress!.port!)")
fflush(nil)
try await channel.executeThenClose { inbound, outbound in
    for try await envelope in inbound {
        try await outbound.write(envelope)
    }
}
