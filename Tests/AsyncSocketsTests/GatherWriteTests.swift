#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
@testable import AsyncSockets

/// `write(contentsOf:)`: sendmsg with an iovec, IOV_MAX chunks per call, never interleaved.
@Suite("Gather writes") struct GatherWriteTests {
    @Test("more chunks than IOV_MAX, of every size, empty ones included, arrive in order",
          arguments: CoreFixtures.Transport.allCases)
    func order(_ transport: CoreFixtures.Transport) async throws {
        let (a, b) = try await transport.open()
        var chunks: [[UInt8]] = []
        for i in 0..<(AsyncSocket.iovMax * 2 + 17) {
            chunks.append(i % 5 == 0 ? [] : CoreFixtures.pattern(count: (i * 37) % 700, seed: UInt8(truncatingIfNeeded: i)))
        }
        let expected = chunks.flatMap { $0 }
        let reading = Task { try await b.read(exactly: expected.count) }
        try await a.write(contentsOf: chunks)
        #expect(CoreFixtures.sameBytes(try await CoreFixtures.value(of: reading), expected))
        try await a.write(contentsOf: [])
        try await a.write(contentsOf: [[], []])
        await a.close()
        await b.close()
    }

    @Test("concurrent gather writes and plain writes never interleave (small send buffer)")
    func noInterleaving() async throws {
        let (a, b) = try await CoreFixtures.tcpPair()
        try await a.setOption(.sendBufferSize, 4096)
        let writers = 8, chunksPerWrite = 100, chunkSize = 1000
        let total = writers * chunksPerWrite * chunkSize + 2 * 50_000
        let reading = Task { try await b.read(exactly: total) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    let chunk = [UInt8](repeating: UInt8(writer + 1), count: chunkSize)
                    try await a.write(contentsOf: Array(repeating: chunk, count: chunksPerWrite))
                }
            }
            for plain in 0..<2 {
                group.addTask { try await a.write([UInt8](repeating: UInt8(100 + plain), count: 50_000)) }
            }
            try await group.waitForAll()
        }
        let received = try await CoreFixtures.value(of: reading)
        // The stream is contiguous runs, one per write, each of the length that write sent.
        var runs: [(UInt8, Int)] = []
        for byte in received {
            if let last = runs.last, last.0 == byte { runs[runs.count - 1].1 += 1 } else { runs.append((byte, 1)) }
        }
        #expect(runs.count == writers + 2, "\(runs.count) runs")
        for (byte, length) in runs {
            #expect(length == (byte >= 100 ? 50_000 : chunksPerWrite * chunkSize), "run of \(byte): \(length)")
        }
        await a.close()
        await b.close()
    }

    @Test("cancellation and close() while a gather write waits for room")
    func cancelAndClose() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        _ = await CoreFixtures.fillSendBuffer(a)
        let chunks = Array(repeating: [UInt8](repeating: 7, count: 65536), count: 8)
        let writing = Task { try await a.write(contentsOf: chunks) }
        try await CoreFixtures.waitUntil("the gather write waits") { await a.coreTestWaitState().writing }
        writing.cancel()
        await #expect(throws: CancellationError.self) { try await CoreFixtures.value(of: writing, within: .seconds(5)) }
        let again = Task { try await a.write(contentsOf: chunks) }
        try await CoreFixtures.waitUntil("it waits again") { await a.coreTestWaitState().writing }
        await a.close()
        do { try await CoreFixtures.value(of: again, within: .seconds(5)); Issue.record("no error") } catch let error as SocketError {
            #expect(error.code == EBADF)
        }
        await b.close()
    } }
}
