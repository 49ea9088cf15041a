// Client-side ping-pong with SwiftNIO's async API (ClientBootstrap + NIOAsyncChannel, one event loop
// thread) against an echo server. Each connection runs in a child task.
import BenchSupport
import NIOCore
import NIOPosix

let options = PingOptions()
let startedAt = nowNanoseconds()
let pattern = Pattern(size: options.size)
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

@Sendable func connection(_ index: Int, _ window: Window) async throws -> Samples {
    let channel = try await ClientBootstrap(group: group)
        .channelOption(.socketOption(.tcp_nodelay), value: 1)
        .connect(host: "127.0.0.1", port: Int(options.port)) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
    return try await channel.executeThenClose { inbound, outbound in
        var samples = Samples()
        var iterator = inbound.makeAsyncIterator()
        var round = 0
        while true {
            let message = pattern.message(connection: index, round: round)
            let t0 = nowNanoseconds()
            try await outbound.write(ByteBuffer(bytes: message))
            var received = 0
            while received < options.size {
                guard let buffer = try await iterator.next() else { fail("server closed connection \(index)") }
                let ok = buffer.readableBytesView.withUnsafeBytes { bytesEqual($0, message, at: received) }
                if !ok || received + buffer.readableBytes > options.size {
                    fail("verification failed on connection \(index) round \(round)")
                }
                received += buffer.readableBytes
            }
            let t1 = nowNanoseconds()
            if t1 >= window.end { break }
            if t1 >= window.start { samples.latencies.append(t1 - t0) }
            round += 1
        }
        return samples
    }
}

let window = Window(options)
let samples = try await withThrowingTaskGroup(of: Samples.self) { tasks in
    for i in 0..<options.conns { tasks.addTask { try await connection(i, window) } }
    var all: [Samples] = []
    for try await s in tasks { all.append(s) }
    return all
}
report(options, samples: samples, startedAt: startedAt)
