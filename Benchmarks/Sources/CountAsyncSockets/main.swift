// Fixed-work probe for deterministic counts (system calls, mallocs, loop jobs) with `perf stat`, where no
// hardware counter or callgrind is available (valgrind 3.19 cannot read Swift 6.3's DWARF 5, and dies in
// dispatch_main):
//   CountAsyncSockets ROUNDS CYCLES
// runs ROUNDS 64-byte round trips over a socket pair inside `EventLoop.shared.run`, then CYCLES sequential
// connect + 64-byte echo + close cycles through a `serve` server, and prints the loop's job and poll counts.
//   perf probe -x /lib/x86_64-linux-gnu/libc.so.6 malloc
//   perf stat -e probe_libc:malloc,syscalls:sys_enter_recvfrom,syscalls:sys_enter_accept4,... CountAsyncSockets 20000 0
@_spi(Statistics) import AsyncSockets
let rounds = Int(CommandLine.arguments.dropFirst().first ?? "20000") ?? 20000
let cycles = Int(CommandLine.arguments.dropFirst(2).first ?? "0") ?? 0
@Sendable func body() async throws {
    let (a, b) = try AsyncSocket.pair()
    let message = [UInt8](repeating: 1, count: 64)
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            var buffer: [UInt8] = []
            buffer.reserveCapacity(65536)
            while true {
                buffer.removeAll(keepingCapacity: true)
                if try await b.read(into: &buffer, upTo: 65536) == 0 { break }
                try await b.write(buffer)
            }
        }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(64)
        for _ in 0..<rounds {
            try await a.write(message)
            buffer.removeAll(keepingCapacity: true)
            while buffer.count < 64 { _ = try await a.read(into: &buffer, upTo: 64 - buffer.count) }
        }
        try await a.shutdown(.write)
        try await group.waitForAll()
    }
    if cycles > 0 {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        async let serving: Void = server.serve { client in
            var buffer: [UInt8] = []
            while try await client.read(into: &buffer, upTo: 65536) > 0 {
                try await client.write(buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
        for _ in 0..<cycles {
            let socket = try await AsyncSocket.connect(to: server.localAddress)
            try await socket.write(message)
            _ = try await socket.read(exactly: 64)
            await socket.close()
        }
        server.close()
        try await serving
    }
}
try await EventLoop.shared.run { try await body() }
let stats = EventLoop.shared.statistics
print("jobs \(stats.jobs) polls \(stats.polls)")
