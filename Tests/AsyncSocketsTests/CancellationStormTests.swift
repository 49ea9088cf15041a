import Foundation
import Testing
@testable import AsyncSockets

/// Cancels a thousand tasks at random moments while they read, write, connect or accept. No crash, no hang
/// (each test is bounded), no leaked descriptor, no byte lost to a cancelled read, no connection lost to a
/// cancelled accept. A continuation resumed twice or never would show up as a crash or a hang here (run
/// these under `--sanitize=address` and `--sanitize=thread` too).
@Suite struct CancellationStormTests {
    /// Cancels `tasks` in a random order, with a random pause of up to `maxPauseMicroseconds` between some.
    static func cancelAtRandom<T>(_ tasks: [Task<T, any Error>], maxPauseMicroseconds: Int = 400) async throws {
        for task in tasks.shuffled() {
            if Bool.random() { try await Task.sleep(for: .microseconds(Int.random(in: 0...maxPauseMicroseconds))) }
            task.cancel()
        }
    }

    @Test func readStormLosesNoByte() async throws { try await withDescriptorCheck {
        try await withDeadline(180, "readStorm") {
            // 500 pairs, two readers on each receiving side (one waits for data, one for the read lock),
            // a writer on each sending side writing at random moments. Readers are cancelled at random.
            let pairs = try (0..<500).map { _ in try AsyncSocket.pair() }
            let written = Mutex([Int](repeating: 0, count: pairs.count))
            let writers = pairs.enumerated().map { index, pair in
                Task {
                    for _ in 0..<Int.random(in: 1...8) {
                        let chunk = [UInt8](repeating: UInt8(truncatingIfNeeded: index), count: Int.random(in: 1...300))
                        try await pair.0.write(chunk)
                        written.withLock { $0[index] += chunk.count }
                        await Task.yield()
                    }
                }
            }
            let readers: [Task<Int, any Error>] = pairs.enumerated().flatMap { index, pair in
                (0..<2).map { _ in
                    Task {
                        var count = 0
                        do {
                            while true {
                                let bytes = try await pair.1.read(upTo: Int.random(in: 1...64))
                                if bytes.isEmpty { break }
                                #expect(bytes.allSatisfy { $0 == UInt8(truncatingIfNeeded: index) })
                                count += bytes.count
                            }
                        } catch is CancellationError {
                        }
                        return count
                    }
                }
            }
            try await Self.cancelAtRandom(readers)
            for writer in writers { try await writer.value }
            var received = [Int](repeating: 0, count: pairs.count)
            for (offset, reader) in readers.enumerated() { received[offset / 2] += try await reader.value }
            // What the cancelled readers did not take is still there, in full.
            for (index, pair) in pairs.enumerated() {
                await pair.0.close()
                while true {
                    let bytes = try await pair.1.read(upTo: 4096)
                    if bytes.isEmpty { break }
                    received[index] += bytes.count
                }
                await pair.1.close()
            }
            #expect(received == written.withLock { $0 })
        }
    } }

    @Test func writeStormEndsEveryWrite() async throws { try await withDescriptorCheck {
        try await withDeadline(180, "writeStorm") {
            // 500 pairs nobody reads, two writers on each: one blocked for room, one queued for the write
            // lock. Every one of the 1,000 writes must end with CancellationError once cancelled.
            let pairs = try (0..<500).map { _ in try AsyncSocket.pair() }
            let big = [UInt8](repeating: 0xAB, count: 1 << 20)  // larger than a unix socket's buffers
            let writers = pairs.flatMap { pair in
                (0..<2).map { _ in Task { try await pair.0.write(big) } }
            }
            try await Self.cancelAtRandom(writers)
            var cancelled = 0
            var other: [String] = []
            for writer in writers {
                do { try await writer.value; other.append("completed") } catch is CancellationError { cancelled += 1 } catch { other.append("\(error)") }
            }
            #expect(cancelled == writers.count, "\(other.prefix(5))")
            // The sockets stay usable: a cancelled write left its lock free, so a new write goes through
            // once the peer reads everything.
            for (a, b) in pairs.prefix(20) {
                let drain = Task { () -> Int in
                    var total = 0
                    while true {
                        let bytes = try await b.read(upTo: 65536)
                        if bytes.isEmpty { return total }
                        total += bytes.count
                    }
                }
                try await a.write([1, 2, 3])
                try await a.shutdown(.write)
                #expect(try await drain.value >= 3)
            }
            for (a, b) in pairs {
                await a.close()
                await b.close()
            }
        }
    } }

    @Test func connectStormClosesEveryLoser() async throws { try await withDescriptorCheck {
        let hole = try Blackhole()
        defer { hole.close() }
        try await withDeadline(180, "connectStorm") {
            let server = try AsyncServer(host: "127.0.0.1", port: 0)
            let serving = Task { try await server.serve { client in _ = try? await client.read(upTo: 1) } }
            let port = server.localAddress.port!
            // 1,000 connects: to a live server or to a blackhole, by address or through Happy Eyeballs.
            let connects: [Task<AsyncSocket, any Error>] = (0..<1000).map { index in
                Task {
                    switch index % 4 {
                    case 0: return try await AsyncSocket.connect(to: server.localAddress)
                    case 1: return try await AsyncSocket.connect(to: Endpoint(host: "127.0.0.1", port: port))
                    case 2: return try await AsyncSocket.connect(to: hole.address)
                    default: return try await AsyncSocket.connect(to: Endpoint(host: hole.address.host!, port: hole.address.port!),
                                                                  happyEyeballsDelay: .milliseconds(10))
                    }
                }
            }
            try await Self.cancelAtRandom(connects)
            var connected = 0
            var cancelled = 0
            var other: [String] = []
            for (index, connect) in connects.enumerated() {
                do {
                    let socket = try await connect.value
                    #expect(index % 4 < 2, "connected to the blackhole")
                    connected += 1
                    await socket.close()
                } catch is CancellationError {
                    cancelled += 1
                } catch {
                    other.append("\(error)")
                }
            }
            #expect(connected + cancelled == connects.count, "\(other.prefix(5))")
            #expect(cancelled >= 500)  // every blackhole connect
            server.close()
            try await serving.value
        }
    } }

    @Test func acceptStormLosesNoConnection() async throws { try await withDescriptorCheck {
        try await withDeadline(180, "acceptStorm") {
            let server = try AsyncServer(host: "127.0.0.1", port: 0)
            // 1,000 accepts queue on one listener while 300 clients connect; accepts are cancelled at random.
            let accepts = (0..<1000).map { _ in Task { try await server.accept() } }
            let clients = try await withThrowingTaskGroup(of: AsyncSocket.self) { group in
                for _ in 0..<300 { group.addTask { try await AsyncSocket.connect(to: server.localAddress) } }
                try await Self.cancelAtRandom(accepts)
                return try await group.reduce(into: []) { $0.append($1) }
            }
            var accepted: [AsyncSocket] = []
            for accept in accepts {
                if let socket = try await accept.value { accepted.append(socket) }
            }
            // The connections no cancelled accept took are still in the backlog.
            while accepted.count < clients.count {
                guard let socket = try await server.accept() else { break }
                accepted.append(socket)
            }
            #expect(accepted.count == clients.count)
            // And each accepted socket is a working end of one of the clients.
            for (index, client) in clients.enumerated() { try await client.write([UInt8(index % 251)]) }
            var seen = Set<UInt8>()
            for socket in accepted { seen.insert(try await socket.read(exactly: 1)[0]) }
            #expect(seen.count == min(251, clients.count))
            for socket in accepted { await socket.close() }
            for client in clients { await client.close() }
            server.close()
        }
    } }
}
