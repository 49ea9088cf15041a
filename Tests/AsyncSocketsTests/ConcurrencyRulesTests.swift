#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
@testable import AsyncSockets

/// The documented concurrency rules of ``AsyncSocket``: concurrent writes never interleave, concurrent reads
/// never lose or duplicate bytes.
@Suite("Concurrency rules") struct ConcurrencyRulesTests {
    typealias Transport = CoreFixtures.Transport

    /// The task executor the tasks of a test prefer: none (the global pool: every socket call hops to the loop
    /// and back), or the socket's loop (the `serve` fast path: no hops). The runtime suspends at different
    /// points in the two cases, so the rules are checked in both.
    static let preferences: [Bool] = [false, true]

    @Test("8 tasks writing 1 MiB messages at once: each message arrives contiguous",
          arguments: Transport.allCases, preferences)
    func concurrentWritesDoNotInterleave(_ transport: Transport, preferLoop: Bool) async throws { try await withDescriptorCheck {
        let writers = 8
        let size = 1 << 20                                      // far more than a socket buffer: writes suspend
        let (a, b) = try await transport.open()
        // Message w: a 4-byte header [0xC0, w, w, w] and then w's own pattern.
        func message(_ w: Int) -> [UInt8] {
            [0xC0, UInt8(w), UInt8(w), UInt8(w)] + CoreFixtures.pattern(count: size - 4, seed: UInt8(w * 29))
        }
        let messages = (0..<writers).map(message)

        let received = try await CoreFixtures.within(.seconds(120), "concurrent writes") {
            try await withThrowingTaskGroup(of: [UInt8]?.self) { group in
                let preference: (any TaskExecutor)? = preferLoop ? a.eventLoop : nil
                for w in 0..<writers {
                    group.addTask(executorPreference: preference) { try await a.write(messages[w]); return nil }
                }
                group.addTask(executorPreference: preference) {
                    var buffer: [UInt8] = []
                    buffer.reserveCapacity(writers * size)
                    while buffer.count < writers * size {
                        if try await b.read(into: &buffer, upTo: 128 * 1024) == 0 { break }
                    }
                    return buffer
                }
                var result: [UInt8] = []
                for try await value in group { if let value { result = value } }
                return result
            }
        }
        #expect(received.count == writers * size)
        var seen = Set<Int>()
        for slot in 0..<writers {
            let block = Array(received[(slot * size)..<min((slot + 1) * size, received.count)])
            guard block.count >= 4, block[0] == 0xC0, Int(block[1]) < writers else {
                Issue.record("block \(slot) does not start with a message header")
                continue
            }
            let w = Int(block[1])
            #expect(CoreFixtures.sameBytes(block, messages[w]), "block \(slot) is not message \(w) intact")
            seen.insert(w)
        }
        #expect(seen == Set(0..<writers), "every message arrived exactly once")
        await a.close()
        await b.close()
    } }

    @Test("8 tasks reading exactly 8 bytes at once: every record read exactly once",
          arguments: Transport.allCases, preferences)
    func concurrentExactReadsPartitionTheStream(_ transport: Transport, preferLoop: Bool) async throws { try await withDescriptorCheck {
        let records = 20_000
        let (a, b) = try await transport.open()
        var stream: [UInt8] = []
        stream.reserveCapacity(records * 8)
        for r in 0..<records { withUnsafeBytes(of: UInt64(r).bigEndian) { stream += $0 } }
        let data = stream

        let got = try await CoreFixtures.within(.seconds(120), "concurrent exact reads") {
            try await withThrowingTaskGroup(of: [UInt64].self) { group in
                let preference: (any TaskExecutor)? = preferLoop ? b.eventLoop : nil
                group.addTask(executorPreference: preference) {
                    // Odd-sized writes, so records straddle write and segment boundaries.
                    var offset = 0
                    while offset < data.count {
                        let end = min(offset + 777, data.count)
                        try await a.write(data[offset..<end])
                        offset = end
                    }
                    try await a.shutdown(.write)
                    return []
                }
                for _ in 0..<8 {
                    group.addTask(executorPreference: preference) {
                        var mine: [UInt64] = []
                        while true {
                            let record: [UInt8]
                            do { record = try await b.read(exactly: 8) } catch let end as IncompleteReadError {
                                #expect(end.partial.isEmpty, "a record was split between readers")
                                return mine
                            }
                            mine.append(record.reduce(0) { $0 << 8 | UInt64($1) })
                        }
                    }
                }
                var all: [UInt64] = []
                for try await part in group { all += part }
                return all
            }
        }
        #expect(got.count == records, "no record lost, none duplicated")
        #expect(Set(got) == Set((0..<records).map(UInt64.init)))
        await a.close()
        await b.close()
    } }

    @Test("8 tasks reading upTo at once: the union of their chunks is the stream, no loss, no duplicates",
          arguments: Transport.allCases)
    func concurrentReadsLoseNothing(_ transport: Transport) async throws { try await withDescriptorCheck {
        let total = 2_000_000
        let (a, b) = try await transport.open()
        let data = CoreFixtures.pattern(count: total, seed: 0)  // byte i is i % 251

        let chunks = try await CoreFixtures.within(.seconds(120), "concurrent reads") {
            try await withThrowingTaskGroup(of: [[UInt8]].self) { group in
                group.addTask {
                    try await a.write(data)
                    try await a.shutdown(.write)
                    return []
                }
                for reader in 0..<8 {
                    group.addTask {
                        var mine: [[UInt8]] = []
                        while true {
                            let chunk = try await b.read(upTo: 1000 + reader * 997)
                            if chunk.isEmpty { return mine }
                            mine.append(chunk)
                        }
                    }
                }
                var all: [[UInt8]] = []
                for try await part in group { all += part }
                return all
            }
        }
        // Each chunk is a contiguous piece of the pattern (no torn reads)...
        for chunk in chunks {
            var contiguous = true
            for i in chunk.indices.dropFirst() where chunk[i] != (chunk[i - 1] == 250 ? 0 : chunk[i - 1] + 1) {
                contiguous = false
                break
            }
            #expect(contiguous, "a chunk is not a contiguous piece of the stream")
        }
        // ...and together they hold every byte exactly once: same length, same count of every byte value.
        #expect(chunks.reduce(0) { $0 + $1.count } == total)
        var histogram = [Int](repeating: 0, count: 256)
        for chunk in chunks { for byte in chunk { histogram[Int(byte)] += 1 } }
        var expected = [Int](repeating: 0, count: 256)
        for value in 0..<251 { expected[value] = total / 251 + (value < total % 251 ? 1 : 0) }
        #expect(histogram == expected)
        await a.close()
        await b.close()
    } }

    @Test("queued reads are served in FIFO order")
    func queuedReadsAreFIFO() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        var tasks: [Task<[UInt8], any Error>] = []
        for n in 0..<5 {
            tasks.append(Task { try await b.read(exactly: 2) })
            // Task n is waiting (holding the lock, or queued) before task n + 1 starts.
            try await CoreFixtures.waitUntil("read \(n) waits") {
                let state = await b.coreTestWaitState()
                return state.reading && state.queuedReaders == n
            }
        }
        try await a.write([0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
        for (n, task) in tasks.enumerated() {
            #expect(try await CoreFixtures.value(of: task) == [UInt8(n), UInt8(n)])
        }
        await a.close()
        await b.close()
    } }
}
