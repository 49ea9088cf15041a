// In-process micro benchmark: 64-byte ping-pong over a unix-domain socketpair wrapped in two
// NIOAsyncChannels (ClientBootstrap.withConnectedSocket, one event loop thread), one task echoing,
// the main task pinging. Same output as PairAsyncSockets.
import BenchSupport
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

var options = PingOptions(arguments: CommandLine.arguments + ["--in-process"])
options.conns = 1
let startedAt = nowNanoseconds()
let pattern = Pattern(size: options.size)
let size = options.size
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

var fds: [Int32] = [-1, -1]
guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else { fail("socketpair failed") }

func wrap(_ fd: Int32) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
    try await ClientBootstrap(group: group).withConnectedSocket(fd) { channel in
        channel.eventLoop.makeCompletedFuture {
            try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
        }
    }
}

// Nonisolated (not the main actor of top-level code), like the AsyncSockets variant.
@Sendable func run(_ a: NIOAsyncChannel<ByteBuffer, ByteBuffer>, _ b: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async throws {
    try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask {
            try await b.executeThenClose { inbound, outbound in
                for try await buffer in inbound { try await outbound.write(buffer) }
            }
        }
        try await a.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            try await runInProcessPingPong(options, startedAt: startedAt) { round in
                let message = pattern.message(connection: 0, round: round)
                try await outbound.write(ByteBuffer(bytes: message))
                var received = 0
                while received < size {
                    guard let buffer = try await iterator.next() else { fail("echo side closed") }
                    if !buffer.readableBytesView.withUnsafeBytes({ bytesEqual($0, message, at: received) }) {
                        fail("verification failed")
                    }
                    received += buffer.readableBytes
                }
            }
        }
        try await tasks.waitForAll()
    }
}

try await run(try await wrap(fds[0]), try await wrap(fds[1]))
