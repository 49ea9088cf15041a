// In-process micro benchmark: 64-byte ping-pong over `AsyncSocket.pair()` (a unix-domain socketpair),
// one task echoing, the main task pinging. Reports round trips/s, latency and, when run with
// malloccount.so preloaded, allocation calls per round trip (both directions: ping and echo).
//   PairAsyncSockets [--size 64] [--seconds D] [--warmup W] [--loop]
// --loop runs both sides inside `EventLoop.shared.run { … }` (tasks prefer the loop thread).
import AsyncSockets
import BenchSupport

var options = PingOptions(arguments: CommandLine.arguments + ["--in-process"])
options.conns = 1
let startedAt = nowNanoseconds()
let pattern = Pattern(size: options.size)
let size = options.size

@Sendable func run() async throws {
    let (a, b) = try AsyncSocket.pair()
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            var buffer: [UInt8] = []
            buffer.reserveCapacity(65536)
            while true {
                buffer.removeAll(keepingCapacity: true)
                let n = try await b.read(into: &buffer, upTo: 65536)
                if n == 0 { break }
                try await b.write(buffer)
            }
        }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(size)
        try await runInProcessPingPong(options, startedAt: startedAt) { round in
            let message = pattern.message(connection: 0, round: round)
            try await a.write(message)
            buffer.removeAll(keepingCapacity: true)
            while buffer.count < size {
                if try await a.read(into: &buffer, upTo: size - buffer.count) == 0 { fail("echo side closed") }
            }
            if !buffer.withUnsafeBytes({ bytesEqual($0, message, at: 0) }) { fail("verification failed") }
        }
        try await a.shutdown(.write)
        try await group.waitForAll()
    }
}

if options.flags.contains("--loop") {
    try await EventLoop.shared.run { try await run() }
} else {
    try await run()
}
