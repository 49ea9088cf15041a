import Foundation
import Testing
@testable import AsyncSockets

/// `read(into:upTo:)` appends to the caller's buffer: through the loop's scratch buffer while the buffer is
/// small, straight into its spare capacity once it has room for a large read. Both must give the same bytes.
@Suite struct ReadIntoTests {
    /// A reused buffer with reserved capacity: every byte of a large stream arrives, in order, appended after
    /// what the buffer already holds; no read returns more than `maxBytes` or more than the spare capacity.
    @Test(arguments: CoreFixtures.Transport.allCases)
    func streamIntoReservedBuffer(_ transport: CoreFixtures.Transport) async throws { try await withDescriptorCheck {
        let (a, b) = try await transport.open()
        let sent = CoreFixtures.pattern(count: 3 << 20, seed: 5)
        let writer = Task {
            try await a.write(sent)
            try await a.shutdown(.write)
        }
        var buffer: [UInt8] = [0xEE, 0xEF]
        buffer.reserveCapacity(40_000)
        var received: [UInt8] = []
        while true {
            let spare = buffer.capacity - buffer.count
            let n = try await b.read(into: &buffer, upTo: 32_768)
            if n == 0 { break }
            #expect(n <= 32_768 && n <= max(spare, 4096))
            #expect(buffer.count == 2 + n)
            #expect(buffer[0] == 0xEE && buffer[1] == 0xEF, "appended after the existing bytes")
            received += buffer[2...]
            buffer.removeLast(n)  // keeps the capacity: the next read goes straight in again
        }
        try await CoreFixtures.value(of: writer)
        #expect(CoreFixtures.sameBytes(received, sent))
        await a.close()
        await b.close()
    } }

    /// A buffer without spare room (it grows as needed) and one with a little (below the direct-read minimum):
    /// both get every byte too.
    @Test(arguments: [0, 100])
    func smallBuffersGrowAsNeeded(_ reserved: Int) async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        let sent = CoreFixtures.pattern(count: 200_000, seed: 9)
        let writer = Task {
            try await a.write(sent)
            try await a.shutdown(.write)
        }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(reserved)
        while try await b.read(into: &buffer, upTo: 65_536) > 0 {}
        try await CoreFixtures.value(of: writer)
        #expect(CoreFixtures.sameBytes(buffer, sent))
        await a.close()
        await b.close()
    } }
}
