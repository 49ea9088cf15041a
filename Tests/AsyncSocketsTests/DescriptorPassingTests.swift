#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
@testable import AsyncSockets

/// Descriptor passing (`write(_:descriptors:)`, `read(upTo:maxDescriptors:)`) and `peerCredentials` on
/// unix-domain sockets. Serialized: the tests count this process's descriptors.
@Suite("Descriptor passing and peer credentials", .serialized) struct DescriptorPassingTests {
    static func isCloseOnExec(_ fd: Int32) -> Bool { fcntl(fd, F_GETFD) & FD_CLOEXEC != 0 }

    static func makePipe() -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        return (fds[0], fds[1])
    }

    @Test("a passed descriptor works on the other side and is close-on-exec")
    func endToEnd() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        let pipe = Self.makePipe()
        try await a.write(Array("here".utf8), descriptors: [pipe.write])
        let (bytes, descriptors) = try await b.read(upTo: 100, maxDescriptors: 4)
        #expect(bytes == Array("here".utf8))
        try #require(descriptors.count == 1)
        let received = descriptors[0]
        #expect(received != pipe.write)
        #expect(Self.isCloseOnExec(received))
        #expect(Array("hi".utf8).withUnsafeBytes { write(received, $0.baseAddress, 2) } == 2)
        var buffer = [UInt8](repeating: 0, count: 2)
        #expect(buffer.withUnsafeMutableBytes { read(pipe.read, $0.baseAddress, 2) } == 2)
        #expect(buffer == Array("hi".utf8))
        for fd in [received, pipe.read, pipe.write] { _ = close(fd) }
        // Plain bytes still flow both ways afterwards.
        try await b.write("ok")
        #expect(try await a.read(exactly: 2) == Array("ok".utf8))
        await a.close()
        await b.close()
    } }

    @Test("descriptors beyond maxDescriptors are closed and reported")
    func extrasClosed() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        let pipes = (0..<3).map { _ in Self.makePipe() }
        try await a.write([1, 2, 3], descriptors: pipes.map(\.write))
        do {
            _ = try await b.read(upTo: 100, maxDescriptors: 1)
            Issue.record("no error")
        } catch let error as TruncatedDescriptorsError {
            #expect(error.bytes == [1, 2, 3])
            #expect(error.descriptors.count == 1)
            #expect(error.closed > 0 || error.kernelDiscarded, "\(error)")
            error.descriptors.forEach { _ = close($0) }
        }
        for pipe in pipes { _ = close(pipe.read); _ = close(pipe.write) }
        // withDescriptorCheck fails the test if any received descriptor is still open.
        await a.close()
        await b.close()
    } }

    @Test("bytes buffered by read(until:) come first, then descriptors with their bytes")
    func afterBufferedRead() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        try await a.write("line\nextra")
        #expect(try await b.read(until: [10]) == Array("line\n".utf8))
        let first = try await b.read(upTo: 100, maxDescriptors: 2)
        #expect(first.bytes == Array("extra".utf8) && first.descriptors.isEmpty)
        let pipe = Self.makePipe()
        try await a.write([42], descriptors: [pipe.read])
        let second = try await b.read(upTo: 100, maxDescriptors: 2)
        #expect(second.bytes == [42] && second.descriptors.count == 1)
        for fd in second.descriptors + [pipe.read, pipe.write] { _ = close(fd) }
        await a.close()
        await b.close()
    } }

    @Test("TCP sockets refuse descriptor passing and peer credentials with EOPNOTSUPP; bad input is EINVAL")
    func refusals() async throws { try await withDescriptorCheck {
        let (client, server) = try await CoreFixtures.tcpPair()
        for attempt in 0..<3 {
            do {
                switch attempt {
                case 0: try await client.write([1], descriptors: [0])
                case 1: _ = try await server.read(upTo: 10, maxDescriptors: 1)
                default: _ = try await server.peerCredentials
                }
                Issue.record("no error")
            } catch let error as SocketError {
                #expect(error.code == EOPNOTSUPP, "\(error)")
            }
        }
        let (a, b) = try AsyncSocket.pair()
        await #expect(throws: SocketError.self) { try await a.write([], descriptors: [0]) }
        await #expect(throws: SocketError.self) { try await a.write([1], descriptors: Array(repeating: 0, count: 254)) }
        await #expect(throws: SocketError.self) { try await a.read(upTo: 0, maxDescriptors: 1) }
        await #expect(throws: SocketError.self) { try await a.read(upTo: 10, maxDescriptors: -1) }
        for socket in [client, server, a, b] { await socket.close() }
    } }

    @Test("cancellation and close() during read(upTo:maxDescriptors:) and write(_:descriptors:)")
    func cancelAndClose() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        let reading = Task { try await b.read(upTo: 10, maxDescriptors: 1) }
        try await CoreFixtures.waitUntil("the read waits") { await b.coreTestWaitState().reading }
        reading.cancel()
        await #expect(throws: CancellationError.self) { try await CoreFixtures.value(of: reading, within: .seconds(5)) }
        let again = Task { try await b.read(upTo: 10, maxDescriptors: 1) }
        try await CoreFixtures.waitUntil("the read waits again") { await b.coreTestWaitState().reading }
        await b.close()
        do { _ = try await CoreFixtures.value(of: again, within: .seconds(5)); Issue.record("no error") } catch let error as SocketError {
            #expect(error.code == EBADF)
        }
        let (c, d) = try AsyncSocket.pair()
        _ = await CoreFixtures.fillSendBuffer(c)
        let writing = Task { try await c.write([1], descriptors: [0]) }
        try await CoreFixtures.waitUntil("the write waits") { await c.coreTestWaitState().writing }
        writing.cancel()
        await #expect(throws: CancellationError.self) { try await CoreFixtures.value(of: writing, within: .seconds(5)) }
        let writingAgain = Task { try await c.write([1], descriptors: [0]) }
        try await CoreFixtures.waitUntil("the write waits again") { await c.coreTestWaitState().writing }
        await c.close()
        do { try await CoreFixtures.value(of: writingAgain, within: .seconds(5)); Issue.record("no error") } catch let error as SocketError {
            #expect(error.code == EBADF)
        }
        for socket in [a, d] { await socket.close() }
    } }

    @Test("peer credentials name this process (a pair and a unix-domain server)")
    func peerCredentials() async throws { try await withDescriptorCheck {
        let me = PeerCredentials(pid: getpid(), uid: getuid(), gid: getgid())
        let (a, b) = try AsyncSocket.pair()
        #expect(try await a.peerCredentials == me)
        #expect(try await b.peerCredentials == me)
        let path = ServerTesting.temporarySocketPath()
        let server = try AsyncServer(unixPath: path)
        let client = try await AsyncSocket.connect(to: SocketAddress(unixPath: path))
        let accepted = try #require(try await server.accept())
        #expect(try await client.peerCredentials == me)
        #expect(try await accepted.peerCredentials == me)
        for socket in [a, b, client, accepted] { await socket.close() }
        server.close()
        await #expect(throws: SocketError.self) { try await a.peerCredentials }
    } }
}
