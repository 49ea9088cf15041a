#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import Testing
@testable import AsyncSockets

/// SIGPIPE deliveries seen by `countSIGPIPE` while a test had it installed.
private let sigpipeCount = Atomic<Int>(0)

/// Round trips, the read variants, half-close, bulk full-duplex transfer, many waiting sockets, and writes to a
/// peer that has gone.
@Suite("Stream I/O") struct StreamIOTests {
    typealias Transport = CoreFixtures.Transport

    @Test("round trip: upTo, exactly, String and ArraySlice writes, both directions", arguments: Transport.allCases)
    func roundTrip(_ transport: Transport) async throws { try await withDescriptorCheck {
        let (a, b) = try await transport.open()
        try await a.write(Array("hello".utf8))
        #expect(try await b.read(exactly: 5) == Array("hello".utf8))

        try await b.write("héllo, wörld")                       // String: its UTF-8 bytes
        #expect(try await a.read(exactly: 14) == Array("héllo, wörld".utf8))

        let big = CoreFixtures.pattern(count: 10_000, seed: 3)
        try await a.write(big[100..<300])                       // an ArraySlice not starting at 0
        #expect(try await b.read(exactly: 200) == Array(big[100..<300]))

        try await a.write([1, 2, 3])
        var got: [UInt8] = []
        while got.count < 3 { got += try await b.read(upTo: 10) }  // upTo never returns more than was sent
        #expect(got == [1, 2, 3])

        try await a.write([])                                   // an empty write is a no-op, not an error
        try await a.write("")
        await a.close()
        #expect(try await b.read(upTo: 10) == [])               // [] only at end of stream
        #expect(try await b.read(upTo: 10) == [])               // and stays there
        await b.close()
    } }

    @Test("TCP connect by SocketAddress and by Endpoint, on 127.0.0.1 and ::1", arguments: ["127.0.0.1", "::1"])
    func tcpConnectRoundTrip(_ host: String) async throws { try await withDescriptorCheck {
        let family: SocketFamily = host.contains(":") ? .ipv6 : .ipv4
        let server = try AsyncServer(host: host, port: 0, family: family)
        let port = try #require(server.localAddress.port)
        let byAddress = try await AsyncSocket.connect(to: try SocketAddress(numericHost: host, port: port))
        let byEndpoint = try await AsyncSocket.connect(to: Endpoint(host: host, port: port))
        for client in [byAddress, byEndpoint] {
            let accepted = try #require(try await server.accept())
            let message = CoreFixtures.pattern(count: 3000, seed: 9)
            try await client.write(message)
            #expect(try await accepted.read(exactly: message.count) == message)
            try await accepted.write("pong")
            #expect(try await client.read(exactly: 4) == Array("pong".utf8))
            #expect(try await client.remoteAddress == server.localAddress)
            await accepted.close()
            await client.close()
        }
        server.close()
    } }

    @Test("read(upTo:) returns at most maxBytes, also beyond the loop's 64 KiB scratch buffer")
    func readUpToLimits() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        try await a.write(CoreFixtures.pattern(count: 100))
        let first = try await b.read(upTo: 10)
        #expect(first == Array(CoreFixtures.pattern(count: 10)))
        #expect(try await b.read(exactly: 90) == Array(CoreFixtures.pattern(count: 100)[10...]))

        // More than the 64 KiB scratch buffer in one call: the large-read path.
        let message = CoreFixtures.pattern(count: 150_000, seed: 1)
        async let sent: Void = a.write(message)
        var received: [UInt8] = []
        while received.count < message.count {
            let chunk = try await b.read(upTo: 200_000)
            #expect(!chunk.isEmpty && chunk.count <= 200_000)
            received += chunk
        }
        try await sent
        #expect(CoreFixtures.sameBytes(received, message))
        await a.close()
        await b.close()
    } }

    @Test("read(exactly:) at end of stream throws IncompleteReadError with the partial bytes")
    func readExactlyIncomplete() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        try await a.write([7, 8, 9])
        try await a.shutdown(.write)
        let error = await #expect(throws: IncompleteReadError.self) { try await b.read(exactly: 10) }
        #expect(error?.partial == [7, 8, 9])
        #expect(error?.expected == 10)
        #expect(error?.description == "read(exactly: 10) reached end of stream after 3 bytes")
        // Nothing was lost or left behind: the stream is simply at its end.
        #expect(try await b.read(upTo: 10) == [])
        let empty = await #expect(throws: IncompleteReadError.self) { try await b.read(exactly: 1) }
        #expect(empty?.partial == [])
        #expect(try await b.read(exactly: 0) == [])
        await a.close()
        await b.close()
    } }

    @Test("read(into:upTo:) appends to a caller-owned buffer without reallocating it")
    func readIntoBuffer() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        var buffer: [UInt8] = [0xEE, 0xEF]                      // existing contents stay in front
        buffer.reserveCapacity(4096)
        let storage = buffer.withUnsafeBufferPointer { $0.baseAddress }

        try await a.write(CoreFixtures.pattern(count: 100))
        #expect(try await b.read(into: &buffer, upTo: 10) == 10)
        #expect(buffer == [0xEE, 0xEF] + CoreFixtures.pattern(count: 10))
        var total = 10
        while total < 100 { total += try await b.read(into: &buffer, upTo: 1000) }
        #expect(total == 100)
        #expect(buffer == [0xEE, 0xEF] + CoreFixtures.pattern(count: 100))
        #expect(buffer.withUnsafeBufferPointer { $0.baseAddress } == storage, "the reserved storage was reused")

        // Reusing the buffer for the next message: clear it but keep its capacity.
        buffer.removeAll(keepingCapacity: true)
        try await a.write("next")
        while buffer.count < 4 { _ = try await b.read(into: &buffer, upTo: 4096) }
        #expect(buffer == Array("next".utf8))
        #expect(buffer.withUnsafeBufferPointer { $0.baseAddress } == storage)

        await a.close()
        #expect(try await b.read(into: &buffer, upTo: 10) == 0)  // 0 only at end of stream
        #expect(buffer == Array("next".utf8))
        await b.close()
    } }

    @Test("half-close: after shutdown(.write) the peer reads everything, then EOF, and can still write back",
          arguments: Transport.allCases)
    func halfClose(_ transport: Transport) async throws { try await withDescriptorCheck {
        let (a, b) = try await transport.open()
        let request = CoreFixtures.pattern(count: 300_000, seed: 5)   // more than fits in the socket buffers
        let writer = Task { try await a.write(request); try await a.shutdown(.write) }
        var received: [UInt8] = []
        while true {
            let chunk = try await b.read(upTo: 65536)
            if chunk.isEmpty { break }
            received += chunk
        }
        try await CoreFixtures.value(of: writer)
        #expect(CoreFixtures.sameBytes(received, request))

        // b's write side is still open, and a's read side too.
        let reply = CoreFixtures.pattern(count: 200_000, seed: 6)
        async let replied: Void = b.write(reply)
        #expect(CoreFixtures.sameBytes(try await a.read(exactly: reply.count), reply))
        try await replied
        try await b.shutdown(.write)
        #expect(try await a.read(upTo: 1) == [])

        // Writing on the shut-down side fails cleanly.
        let error = await #expect(throws: SocketError.self) { try await a.write([1]) }
        #expect(error?.code == EPIPE)
        #expect(error?.operation == "write")
        await a.close()
        await b.close()
    } }

    @Test("16 MiB each way at once over TCP, two tasks per side, bytes verified")
    func fullDuplex16MiB() async throws { try await withDescriptorCheck {
        let size = 16 * 1024 * 1024
        let (a, b) = try await CoreFixtures.tcpPair()
        let fromA = CoreFixtures.pattern(count: size, seed: 11)
        let fromB = CoreFixtures.pattern(count: size, seed: 77)

        @Sendable func send(_ socket: AsyncSocket, _ data: [UInt8]) async throws {
            var offset = 0
            while offset < data.count {                          // 1 MiB writes, as slices of one array
                let end = min(offset + 1 << 20, data.count)
                try await socket.write(data[offset..<end])
                offset = end
            }
        }
        @Sendable func receive(_ socket: AsyncSocket, _ count: Int) async throws -> [UInt8] {
            var buffer: [UInt8] = []
            buffer.reserveCapacity(count)
            while buffer.count < count {
                let n = try await socket.read(into: &buffer, upTo: 256 * 1024)
                if n == 0 { throw CoreFixtures.Failure("end of stream after \(buffer.count) bytes") }
            }
            return buffer
        }

        let (gotAtA, gotAtB) = try await CoreFixtures.within(.seconds(180), "the 16 MiB full-duplex transfer") {
            async let sendA: Void = send(a, fromA)
            async let sendB: Void = send(b, fromB)
            async let receiveA = receive(a, size)
            async let receiveB = receive(b, size)
            try await sendA
            try await sendB
            return (try await receiveA, try await receiveB)
        }
        #expect(CoreFixtures.sameBytes(gotAtA, fromB))
        #expect(CoreFixtures.sameBytes(gotAtB, fromA))
        await a.close()
        await b.close()
    } }

    @Test("500 sockets (250 pairs) all waiting in read at once, all woken by writes")
    func fiveHundredWaiters() async throws { try await withDescriptorCheck {
        var sockets: [AsyncSocket] = []
        for _ in 0..<250 {
            let (a, b) = try AsyncSocket.pair()
            sockets += [a, b]
        }
        let all = sockets
        // Socket i's partner is i ^ 1; each socket receives the 2 bytes of its own index.
        @Sendable func message(_ index: Int) -> [UInt8] { [UInt8(index >> 8), UInt8(index & 0xFF)] }

        try await CoreFixtures.within(.seconds(120), "waking 500 readers") {
            try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
                for (index, socket) in all.enumerated() {
                    // read(upTo:) goes through the loop's shared scratch buffer: 500 reads at once on one loop
                    // must each get their own bytes. (A 2-byte write on a socketpair arrives in one piece.)
                    group.addTask { (index, try await socket.read(upTo: 2)) }
                }
                // Every one of the 500 reads is suspended before any byte is written.
                try await CoreFixtures.waitUntil("all 500 sockets wait in read") {
                    var waiting = 0
                    for socket in all where await socket.coreTestWaitState().reading { waiting += 1 }
                    return waiting == all.count
                }
                for (index, _) in all.enumerated() {
                    try await all[index ^ 1].write(message(index))
                }
                var woken = Set<Int>()
                for try await (index, bytes) in group {
                    #expect(bytes == message(index), "socket \(index)")
                    woken.insert(index)
                }
                #expect(woken.count == 500)
            }
        }
        for socket in all { await socket.close() }
    } }

    @Test("write after the peer closed throws EPIPE or ECONNRESET, never SIGPIPE", arguments: Transport.allCases)
    func writeAfterPeerClosed(_ transport: Transport) async throws { try await withDescriptorCheck {
        // Count SIGPIPEs instead of dying of one (the default action would end the test process).
        let previous = signal(SIGPIPE) { _ in sigpipeCount.add(1, ordering: .relaxed) }
        defer { signal(SIGPIPE, previous) }
        let before = sigpipeCount.load(ordering: .relaxed)

        let (a, b) = try await transport.open()
        await b.close()
        // TCP may accept the first write (the RST comes back afterwards); keep writing until it fails.
        var failure: SocketError?
        for _ in 0..<100 where failure == nil {
            do {
                try await a.write(CoreFixtures.pattern(count: 1000))
            } catch let error as SocketError {
                failure = error
            }
        }
        let error = try #require(failure)
        #expect([EPIPE, ECONNRESET].contains(error.code), "\(error)")
        #expect(error.operation == "write")
        #expect(error.description.hasPrefix("write"))
        #expect(sigpipeCount.load(ordering: .relaxed) == before, "a write raised SIGPIPE")
        await a.close()
    } }
}
