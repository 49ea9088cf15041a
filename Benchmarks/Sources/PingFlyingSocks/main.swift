// Client-side ping-pong with FlyingSocks (AsyncSocket on SocketPool<ePoll>) against an echo server.
// Each connection runs in a child task.
import BenchSupport
import FlyingSocks
import Foundation

#if canImport(Glibc)
import Glibc
#endif

let options = PingOptions()
let startedAt = nowNanoseconds()
let pattern = Pattern(size: options.size)
let pool: SocketPool<ePoll> = .ePoll(maxEvents: 64)
try await pool.prepare()
let poolTask = Task { try await pool.run() }

@Sendable func connection(_ index: Int, _ window: Window) async throws -> Samples {
    let socket = try await AsyncSocket.connected(to: .inet(ip4: "127.0.0.1", port: options.port), pool: pool)
    var one: Int32 = 1
    _ = setsockopt(socket.socket.file.rawValue, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    defer { try? socket.close() }
    var samples = Samples()
    var round = 0
    while true {
        let message = pattern.message(connection: index, round: round)
        let t0 = nowNanoseconds()
        try await socket.write(Data(message))
        var received = 0
        while received < options.size {
            let bytes = try await socket.read(atMost: options.size - received)
            let ok = bytes.withUnsafeBytes { bytesEqual($0, message, at: received) }
            if !ok { fail("verification failed on connection \(index) round \(round)") }
            received += bytes.count
        }
        let t1 = nowNanoseconds()
        if t1 >= window.end { break }
        if t1 >= window.start { samples.latencies.append(t1 - t0) }
        round += 1
    }
    return samples
}

let window = Window(options)
let samples = try await withThrowingTaskGroup(of: Samples.self) { tasks in
    for i in 0..<options.conns { tasks.addTask { try await connection(i, window) } }
    var all: [Samples] = []
    for try await s in tasks { all.append(s) }
    return all
}
poolTask.cancel()
report(options, samples: samples, startedAt: startedAt)
