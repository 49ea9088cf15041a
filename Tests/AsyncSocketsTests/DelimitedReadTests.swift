#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
@testable import AsyncSockets

/// `read(until:maxLength:)`, `lines` and the read-ahead buffer they share with every other read.
@Suite("Delimited reads") struct DelimitedReadTests {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// Collects every line of `socket` until end of stream.
    static func allLines(_ socket: AsyncSocket) async throws -> [String] {
        var lines: [String] = []
        for try await line in socket.lines { lines.append(line) }
        return lines
    }

    @Test("a delimiter split across writes is found; bytes after it stay for the next read")
    func splitDelimiter() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        let reader = Task { try await b.read(until: Self.bytes("\r\n")) }
        try await CoreFixtures.waitUntil("the read waits") { await b.coreTestWaitState().reading }
        try await a.write("GET / HTTP/1.0\r")
        try await CoreFixtures.waitUntil("the read waits again") { await b.coreTestWaitState().reading }
        try await a.write("\nHost: x\r\n")
        #expect(try await CoreFixtures.value(of: reader) == Self.bytes("GET / HTTP/1.0\r\n"))
        #expect(try await b.read(until: Self.bytes("\r\n")) == Self.bytes("Host: x\r\n"))
        await a.close()
        await b.close()
    } }

    @Test("two-byte delimiters, one byte per write, many records in one write")
    func twoByteDelimiters() async throws {
        let (a, b) = try AsyncSocket.pair()
        let text = "a;;bb;;;;c;d;;"
        for byte in Self.bytes(text) { try await a.write([byte]) }
        try await a.write("x;;y;;")
        var records: [String] = []
        for _ in 0..<6 { records.append(String(decoding: try await b.read(until: Self.bytes(";;")), as: UTF8.self)) }
        #expect(records == ["a;;", "bb;;", ";;", "c;d;;", "x;;", "y;;"])
        await a.close()
        await b.close()
    }

    @Test("maxLength overrun throws EMSGSIZE naming the limit and keeps the bytes")
    func overrunKeepsBytes() async throws {
        let (a, b) = try AsyncSocket.pair()
        try await a.write("0123456789\n")
        do {
            _ = try await b.read(until: Self.bytes("\n"), maxLength: 8)
            Issue.record("no error")
        } catch let error as SocketError {
            #expect(error.code == EMSGSIZE)
            #expect(error.description.contains("maxLength 8"), "\(error)")
        }
        // A delimiter exactly at the limit is accepted; nothing was lost.
        #expect(try await b.read(until: Self.bytes("\n"), maxLength: 11) == Self.bytes("0123456789\n"))
        try await a.write("abcdefgh")
        await #expect(throws: SocketError.self) { try await b.read(until: Self.bytes("\n"), maxLength: 4) }
        #expect(try await b.read(upTo: 100) == Self.bytes("abcdefgh"))
        await a.close()
        await b.close()
    }

    @Test("end of stream mid-record: IncompleteReadError with what arrived")
    func endOfStreamMidRecord() async throws {
        let (a, b) = try AsyncSocket.pair()
        try await a.write("one\ntwo")
        try await a.shutdown(.write)
        #expect(try await b.read(until: Self.bytes("\n")) == Self.bytes("one\n"))
        do {
            _ = try await b.read(until: Self.bytes("\n"))
            Issue.record("no error")
        } catch let error as IncompleteReadError {
            #expect(error.partial == Self.bytes("two"))
            #expect(error.delimiter == Self.bytes("\n"))
            #expect(error.description.contains("without the delimiter"))
        }
        #expect(try await b.read(upTo: 10) == [])
        await a.close()
        await b.close()
    }

    @Test("lines: \\r\\n and \\n, empty lines, a last line without a newline")
    func lines() async throws {
        let (a, b) = try AsyncSocket.pair()
        let writer = Task {
            try await a.write("first\r\n\nthird\n\r\nfif")
            try await a.write("th\r")
            try await a.write("\nlast without newline")
            try await a.shutdown(.write)
        }
        #expect(try await Self.allLines(b) == ["first", "", "third", "", "fifth", "last without newline"])
        try await writer.value
        await a.close()
        await b.close()
    }

    @Test("lines: a line longer than the limit throws EMSGSIZE; the iterator then ends")
    func longLine() async throws {
        let (a, b) = try AsyncSocket.pair()
        try await a.write("short\n" + String(repeating: "x", count: 100) + "\n")
        var iterator = b.lines(maxLength: 50).makeAsyncIterator()
        #expect(try await iterator.next() == "short")
        await #expect(throws: SocketError.self) { try await iterator.next() }
        #expect(try await iterator.next() == nil)
        #expect(try await b.read(exactly: 101).count == 101)  // the bytes stayed buffered
        await a.close()
        await b.close()
    }

    @Test("line reading over TCP from many clients at once")
    func manyClients() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let clients = 20, linesPerClient = 50
        let serving = Task {
            try await server.serve { client in
                var count = 0
                for try await line in client.lines {
                    guard line == "line \(count) of client" + String(repeating: "!", count: count % 7) else {
                        return try await client.write("bad: \(line)\n")
                    }
                    count += 1
                }
                try await client.write("\(count)\n")
            }
        }
        try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<clients {
                group.addTask {
                    let socket = try await AsyncSocket.connect(to: server.localAddress, timeout: .seconds(20))
                    // Odd-sized writes so that lines straddle segments.
                    var text = ""
                    for i in 0..<linesPerClient { text += "line \(i) of client" + String(repeating: "!", count: i % 7) + "\r\n" }
                    var rest = Self.bytes(text)[...]
                    while !rest.isEmpty {
                        try await socket.write(rest.prefix(37))
                        rest = rest.dropFirst(37)
                    }
                    try await socket.shutdown(.write)
                    let reply = try await socket.read(until: Self.bytes("\n"))
                    await socket.close()
                    return String(decoding: reply, as: UTF8.self)
                }
            }
            for try await reply in group { #expect(reply == "\(linesPerClient)\n") }
        }
        server.close()
        try await serving.value
    } }

    @Test("mixing buffered and unbuffered reads loses no byte", arguments: CoreFixtures.Transport.allCases)
    func mixing(_ transport: CoreFixtures.Transport) async throws {
        let (a, b) = try await transport.open()
        let payload = CoreFixtures.pattern(count: 300_000)
        // Records of the pattern split by a marker that does not occur in it (the pattern's bytes are < 251).
        var stream: [UInt8] = []
        var records: [[UInt8]] = []
        var offset = 0
        var size = 1
        while offset < payload.count {
            let record = Array(payload[offset..<min(payload.count, offset + size)])
            records.append(record)
            stream += record + [0xFE, 0xFF]
            offset += size
            size = size * 3 % 10007 + 1
        }
        let sent = stream
        let writer = Task {
            var rest = sent[...]
            while !rest.isEmpty {
                try await a.write(rest.prefix(4093))
                rest = rest.dropFirst(4093)
            }
            try await a.shutdown(.write)
        }
        var received: [UInt8] = []
        var step = 0
        var buffer: [UInt8] = []
        buffer.reserveCapacity(8192)
        while true {
            step += 1
            switch step % 4 {
            case 0:
                do { received += try await b.read(until: [0xFE, 0xFF], maxLength: 1 << 20) } catch let error as IncompleteReadError {
                    received += error.partial
                    #expect(error.partial.isEmpty)
                    break
                }
                continue
            case 1:
                let chunk = try await b.read(upTo: 1000)
                if chunk.isEmpty { break }
                received += chunk
                continue
            case 2:
                buffer.removeAll(keepingCapacity: true)
                if try await b.read(into: &buffer, upTo: 5000) == 0 { break }
                received += buffer
                continue
            default:
                do { received += try await b.read(exactly: 777) } catch let error as IncompleteReadError {
                    received += error.partial
                    break
                }
                continue
            }
            break
        }
        // Whatever ended the loop, read what is left.
        while true {
            let chunk = try await b.read(upTo: 65536)
            if chunk.isEmpty { break }
            received += chunk
        }
        try await writer.value
        #expect(CoreFixtures.sameBytes(received, stream))
        await a.close()
        await b.close()
    }

    @Test("cancelling read(until:) and a lines step returns at once; buffered bytes stay")
    func cancellation() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        try await a.write("partial")
        let reader = Task { try await b.read(until: Self.bytes("\n")) }
        try await CoreFixtures.waitUntil("the read waits") { await b.coreTestWaitState().reading }
        reader.cancel()
        await #expect(throws: CancellationError.self) { try await CoreFixtures.value(of: reader) }
        let liner = Task { () -> String? in
            var iterator = b.lines.makeAsyncIterator()
            return try await iterator.next()
        }
        try await CoreFixtures.waitUntil("the lines step waits") { await b.coreTestWaitState().reading }
        liner.cancel()
        await #expect(throws: CancellationError.self) { try await CoreFixtures.value(of: liner) }
        try await a.write(" line\n")
        #expect(try await b.read(until: Self.bytes("\n")) == Self.bytes("partial line\n"))
        await a.close()
        await b.close()
    } }

    @Test("close() during read(until:) and a lines step throws EBADF promptly")
    func closeDuring() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        let reader = Task { try await b.read(until: Self.bytes("\n")) }
        let liner = Task { try await Self.allLines(b) }
        try await CoreFixtures.waitUntil("one waits, one is queued") {
            let state = await b.coreTestWaitState()
            return state.reading && state.queuedReaders == 1
        }
        await b.close()
        for task in [reader] as [Task<[UInt8], any Error>] {
            do { _ = try await CoreFixtures.value(of: task, within: .seconds(5)); Issue.record("no error") } catch let error as SocketError {
                #expect(error.code == EBADF)
            }
        }
        do { _ = try await CoreFixtures.value(of: liner, within: .seconds(5)); Issue.record("no error") } catch let error as SocketError {
            #expect(error.code == EBADF)
        }
        await a.close()
    } }

    @Test("after close(), reads throw EBADF even with bytes read ahead", arguments: 0..<4)
    func closeDropsReadAhead(_ kind: Int) async throws {
        let (a, b) = try AsyncSocket.pair()
        try await a.write("one\ntwo\nthree\n")
        #expect(try await b.read(until: [10]) == Self.bytes("one\n"))
        #expect(await b.readAheadTestCount() > 0)
        await b.close()
        do {
            switch kind {
            case 0: _ = try await b.read(upTo: 10)
            case 1: var buffer: [UInt8] = []; _ = try await b.read(into: &buffer, upTo: 10)
            case 2: _ = try await b.read(exactly: 4)
            default: _ = try await b.read(until: [10])
            }
            Issue.record("no error")
        } catch let error as SocketError {
            #expect(error.code == EBADF)
        }
        await a.close()
    }

    @Test("bad arguments throw EINVAL")
    func badArguments() async throws {
        let (a, b) = try AsyncSocket.pair()
        for (delimiter, limit) in [([UInt8](), 10), (Self.bytes("\r\n"), 1), (Self.bytes("\n"), 0)] {
            do { _ = try await b.read(until: delimiter, maxLength: limit); Issue.record("no error") } catch let error as SocketError {
                #expect(error.code == EINVAL)
            }
        }
        var iterator = b.lines(maxLength: 0).makeAsyncIterator()
        await #expect(throws: SocketError.self) { try await iterator.next() }
        await a.close()
        await b.close()
    }

    @Test("a socket that never reads by delimiter keeps an empty read-ahead buffer")
    func plainReadsPayNothing() async throws {
        let (a, b) = try AsyncSocket.pair()
        try await a.write(CoreFixtures.pattern(count: 10_000))
        _ = try await b.read(exactly: 10_000)
        #expect(await b.readAheadTestCount() == 0)
        try await a.write("x\nrest")
        _ = try await b.read(until: [10])
        #expect(await b.readAheadTestCount() == 4)
        #expect(try await b.read(upTo: 2) == Self.bytes("re"))
        #expect(await b.readAheadTestCount() == 2)
        await a.close()
        await b.close()
    }
}

extension AsyncSocket {
    /// How many bytes the read-ahead buffer holds (test helper).
    func readAheadTestCount() -> Int { readAhead.count }
}

/// The read-ahead buffer on its own.
@Suite("Read-ahead buffer") struct ReadAheadBufferTests {
    @Test("read(into:) from the buffer stays within a reused buffer's spare capacity")
    func spareCapacity() {
        var readAhead = ReadAheadBuffer()
        let bytes = CoreFixtures.pattern(count: 20_000)
        bytes.withUnsafeBytes { readAhead.append($0) }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(8192)
        let capacity = buffer.capacity
        let first = readAhead.take(100_000, appendingTo: &buffer)
        #expect(first == capacity && buffer.capacity == capacity)
        #expect(readAhead.endOfFirst([bytes[first], bytes[first + 1]], from: 0, limit: 10) == 2)
        var rest: [UInt8] = []
        #expect(readAhead.take(100_000, appendingTo: &rest) == 20_000 - first)  // a small buffer gets it all
        #expect(CoreFixtures.sameBytes(buffer + rest, bytes) && readAhead.isEmpty)
    }
}
