#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
@testable import AsyncSockets

/// `sendFile(_:offset:count:)`: sendfile(2) with waits for room, and its read-and-write fallback.
@Suite("sendFile") struct SendFileTests {
    /// A temporary file holding `bytes`, open for reading; removed from the directory at once.
    static func temporaryFile(_ bytes: [UInt8]) throws -> Int32 {
        var template = Array("/tmp/asyncsockets-sendfile-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw SocketError(code: errno, operation: "mkstemp") }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw SocketError(code: errno, operation: "write") }
            offset += n
        }
        return fd
    }

    /// A TCP pair whose sender has a tiny send buffer, so a large transfer takes many partial sends and
    /// waits. (A tiny receive buffer too made each round trip wait for a delayed ACK: 20 s per MiB.)
    static func throttledPair() async throws -> (sender: AsyncSocket, receiver: AsyncSocket) {
        let (client, server) = try await CoreFixtures.tcpPair()
        try await client.setOption(.sendBufferSize, 4096)
        return (client, server)
    }

    /// Reads until end of stream.
    static func readToEnd(_ socket: AsyncSocket) async throws -> [UInt8] {
        var received: [UInt8] = []
        received.reserveCapacity(1 << 21)
        while try await socket.read(into: &received, upTo: 65536) > 0 {}
        return received
    }

    static let content = CoreFixtures.pattern(count: 600_000, seed: 3)

    @Test("a range of a file, byte-exact, through a small send buffer")
    func range() async throws { try await withDescriptorCheck {
        let file = try Self.temporaryFile(Self.content)
        defer { _ = close(file) }
        let (sender, receiver) = try await Self.throttledPair()
        let reading = Task { try await Self.readToEnd(receiver) }
        let sent = try await sender.sendFile(file, offset: 1001, count: 400_000)
        try await sender.shutdown(.write)
        #expect(sent == 400_000)
        let received = try await CoreFixtures.value(of: reading)
        #expect(CoreFixtures.sameBytes(received, Array(Self.content[1001..<401_001])))
        // The file's own offset did not move.
        #expect(lseek(file, 0, SEEK_CUR) == Int64(Self.content.count))
        await sender.close()
        await receiver.close()
    } }

    @Test("to the end of the file (count nil), and a count beyond the end sends what there is")
    func toEndOfFile() async throws { try await withDescriptorCheck {
        let file = try Self.temporaryFile(Self.content)
        defer { _ = close(file) }
        let (sender, receiver) = try await Self.throttledPair()
        let reading = Task { try await Self.readToEnd(receiver) }
        let first = try await sender.sendFile(file, offset: 12345)
        let second = try await sender.sendFile(file, offset: Self.content.count - 10, count: 1000)
        let third = try await sender.sendFile(file, offset: Self.content.count + 5)
        try await sender.shutdown(.write)
        #expect(first == Self.content.count - 12345)
        #expect(second == 10)
        #expect(third == 0)
        let received = try await CoreFixtures.value(of: reading)
        #expect(CoreFixtures.sameBytes(received, Array(Self.content[12345...] + Self.content.suffix(10))))
        await sender.close()
        await receiver.close()
    } }

    @Test("a pipe cannot be sendfile'd: the read-and-write fallback sends it")
    func fallbackFromPipe() async throws { try await withDescriptorCheck {
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        let bytes = CoreFixtures.pattern(count: 50_000, seed: 9)
        #expect(bytes.withUnsafeBytes { write(fds[1], $0.baseAddress, $0.count) } == bytes.count)
        _ = close(fds[1])
        defer { _ = close(fds[0]) }
        let (a, b) = try AsyncSocket.pair()
        let reading = Task { try await Self.readToEnd(b) }
        #expect(try await a.sendFile(fds[0]) == bytes.count)
        try await a.shutdown(.write)
        #expect(CoreFixtures.sameBytes(try await CoreFixtures.value(of: reading), bytes))
        await a.close()
        await b.close()
    } }

    @Test("a closed peer gives EPIPE or ECONNRESET, not a SIGPIPE")
    func closedPeer() async throws { try await withDescriptorCheck {
        let file = try Self.temporaryFile(Self.content)
        defer { _ = close(file) }
        // With SIGPIPE's default action, a sendfile that raised it would kill the test run here.
        let previous = signal(SIGPIPE, SIG_DFL)
        defer { signal(SIGPIPE, previous) }
        let (a, b) = try AsyncSocket.pair()
        await b.close()
        do {
            _ = try await a.sendFile(file)
            Issue.record("no error")
        } catch let error as SocketError {
            #expect(error.code == EPIPE || error.code == ECONNRESET, "\(error)")
            #expect(error.operation == "sendFile")
        }
        await a.close()
    } }

    @Test("cancellation and close() while sendFile waits for room")
    func cancelAndClose() async throws { try await withDescriptorCheck {
        let file = try Self.temporaryFile(Self.content)
        defer { _ = close(file) }
        let (a, b) = try AsyncSocket.pair()
        _ = await CoreFixtures.fillSendBuffer(a)
        let sending = Task { try await a.sendFile(file) }
        try await CoreFixtures.waitUntil("sendFile waits") { await a.coreTestWaitState().writing }
        sending.cancel()
        await #expect(throws: CancellationError.self) { try await CoreFixtures.value(of: sending, within: .seconds(5)) }
        let again = Task { try await a.sendFile(file) }
        try await CoreFixtures.waitUntil("sendFile waits again") { await a.coreTestWaitState().writing }
        await a.close()
        do { _ = try await CoreFixtures.value(of: again, within: .seconds(5)); Issue.record("no error") } catch let error as SocketError {
            #expect(error.code == EBADF)
        }
        await b.close()
    } }

    @Test("bad arguments throw EINVAL; a bad descriptor names sendFile")
    func badArguments() async throws {
        let (a, b) = try AsyncSocket.pair()
        for (fd, offset, count) in [(Int32(-1), 0, Int?.none), (0, -1, nil), (0, 0, -5)] {
            do { _ = try await a.sendFile(fd, offset: offset, count: count); Issue.record("no error") } catch let error as SocketError {
                #expect(error.code == EINVAL)
            }
        }
        do { _ = try await a.sendFile(9999); Issue.record("no error") } catch let error as SocketError {
            #expect(error.code == EBADF && error.operation == "sendFile", "\(error)")
        }
        #expect(try await a.sendFile(0, count: 0) == 0)
        await a.close()
        await b.close()
    }
}
