// Client-side ping-pong with AsyncSockets against an echo server (the C libevent one in run.sh).
// Each connection runs in a child task: write the message, read until the whole echo is back, verify.
//   default:  plain child tasks, as code that knows nothing about executors would write it
//             (their socket calls hop to the event loop thread and back);
//   --loop:   the same code inside `EventLoop.shared.run { … }`, so the tasks prefer the loop as
//             their task executor and run on its thread;
//   --scoped: each connection is `AsyncSocket.withConnection(to:) { socket in … }` from a plain child task:
//             the body is isolated to its socket and runs on the loop (the README's client code).
import AsyncSockets
import BenchSupport

let options = PingOptions()
let startedAt = nowNanoseconds()
let pattern = Pattern(size: options.size)
let address = try SocketAddress(ipv4: "127.0.0.1", port: options.port)

@Sendable func connection(_ index: Int, _ window: Window) async throws -> Samples {
    let socket = try await AsyncSocket.connect(to: address)
    defer { Task { await socket.close() } }
    var samples = Samples()
    var buffer: [UInt8] = []
    buffer.reserveCapacity(options.size)
    var round = 0
    while true {
        let message = pattern.message(connection: index, round: round)
        let t0 = nowNanoseconds()
        try await socket.write(message)
        buffer.removeAll(keepingCapacity: true)
        while buffer.count < options.size {
            let n = try await socket.read(into: &buffer, upTo: options.size - buffer.count)
            if n == 0 { fail("server closed connection \(index)") }
        }
        let ok = buffer.withUnsafeBytes { bytesEqual($0, message, at: 0) }
        if !ok { fail("verification failed on connection \(index) round \(round)") }
        let t1 = nowNanoseconds()
        if t1 >= window.end { break }
        if t1 >= window.start { samples.latencies.append(t1 - t0) }
        round += 1
    }
    return samples
}

/// The same exchange as `connection`, inside `withConnection`: every call is a plain call on the socket the
/// body is isolated to.
@Sendable func scopedConnection(_ index: Int, _ window: Window) async throws -> Samples {
    try await AsyncSocket.withConnection(to: address) { socket in
        var samples = Samples()
        var buffer: [UInt8] = []
        buffer.reserveCapacity(options.size)
        var round = 0
        while true {
            let message = pattern.message(connection: index, round: round)
            let t0 = nowNanoseconds()
            try await socket.write(message)
            buffer.removeAll(keepingCapacity: true)
            while buffer.count < options.size {
                let n = try await socket.read(into: &buffer, upTo: options.size - buffer.count)
                if n == 0 { fail("server closed connection \(index)") }
            }
            let ok = buffer.withUnsafeBytes { bytesEqual($0, message, at: 0) }
            if !ok { fail("verification failed on connection \(index) round \(round)") }
            let t1 = nowNanoseconds()
            if t1 >= window.end { break }
            if t1 >= window.start { samples.latencies.append(t1 - t0) }
            round += 1
        }
        return samples
    }
}

let scoped = options.flags.contains("--scoped")

@Sendable func runAll() async throws -> [Samples] {
    let window = Window(options)
    return try await withThrowingTaskGroup(of: Samples.self) { group in
        for i in 0..<options.conns {
            group.addTask { scoped ? try await scopedConnection(i, window) : try await connection(i, window) }
        }
        var all: [Samples] = []
        for try await s in group { all.append(s) }
        return all
    }
}

let samples = options.flags.contains("--loop") ? try await EventLoop.shared.run { try await runAll() } : try await runAll()
report(options, samples: samples, startedAt: startedAt)
