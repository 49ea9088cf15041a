#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Testing
@testable import AsyncSockets

/// `timeout` on reads and writes, and connect timeouts against an address that never answers.
@Suite("Timeouts") struct TimeoutTests {
    /// A loopback listener whose accept queue is full, so the kernel drops further SYNs: connecting to it
    /// neither succeeds nor fails until the client gives up. Close `server` and `filler` afterwards.
    static func blackhole(host: String = "127.0.0.2") async throws -> (server: AsyncServer, filler: AsyncSocket) {
        // Backlog 0: Linux queues one completed connection, then drops SYNs while that one is not accepted.
        let server = try AsyncServer(host: host, port: 0, backlog: 0)
        do {
            let filler = try await AsyncSocket.connect(to: server.localAddress, timeout: .seconds(10))
            return (server, filler)
        } catch {
            server.close()
            throw error
        }
    }

    /// How many IPv4 sockets of this host are in SYN_SENT towards `address` (from /proc/net/tcp).
    static func synSent(to address: SocketAddress) -> Int {
        guard let host = address.host, let port = address.port else { return 0 }
        // procfs files report size 0, so read them to the end with plain read(2).
        let fd = open("/proc/net/tcp", O_RDONLY)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += chunk[..<n]
        }
        let table = String(decoding: bytes, as: UTF8.self)
        // rem_address is the IPv4 address as a little-endian hex word, then the port in hex: 0200007F:1F90.
        let octets = host.split(separator: ".").compactMap { UInt8($0) }
        let word = octets.reversed().map { String(format: "%02X", $0) }.joined()
        let remote = "\(word):\(String(format: "%04X", port))"
        return table.split(separator: "\n").filter { line in
            let fields = line.split(separator: " ")
            return fields.count > 3 && fields[2] == remote && fields[3] == "02"
        }.count
    }

    @Test("read with no data throws ETIMEDOUT after the timeout; the socket stays usable")
    func readTimesOut() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        await b.setTimeout(.milliseconds(200))
        #expect(await b.timeout == .milliseconds(200))
        let start = ContinuousClock.now
        let error = await #expect(throws: SocketError.self) { try await b.read(upTo: 10) }
        let elapsed = ContinuousClock.now - start
        #expect(error?.code == ETIMEDOUT)
        #expect(error?.isTimeout == true)
        #expect(error?.description == "read failed: Connection timed out (ETIMEDOUT): no progress within 0.2 seconds")
        #expect(elapsed >= .milliseconds(190) && elapsed < .seconds(5), "took \(elapsed)")

        // read(exactly:) too, even when part of the bytes arrived.
        try await a.write([1])
        let partial = await #expect(throws: SocketError.self) { try await b.read(exactly: 2) }
        #expect(partial?.code == ETIMEDOUT)

        // Nothing is broken: with data there, reads work; without a timeout they wait again.
        try await a.write([2, 3])
        #expect(try await b.read(exactly: 2) == [2, 3])
        await b.setTimeout(nil)
        let reader = Task { try await b.read(upTo: 10) }
        try await CoreFixtures.waitUntil("the read waits") { await b.coreTestWaitState().reading }
        try await a.write([4])
        #expect(try await CoreFixtures.value(of: reader) == [4])
        await a.close()
        await b.close()
    } }

    @Test("a zero timeout makes a read that would wait fail at once")
    func zeroTimeout() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        await b.setTimeout(.zero)
        let start = ContinuousClock.now
        let error = await #expect(throws: SocketError.self) { try await b.read(upTo: 10) }
        #expect(error?.code == ETIMEDOUT)
        #expect(ContinuousClock.now - start < .seconds(1))
        try await a.write([9])
        #expect(try await b.read(upTo: 10) == [9], "data that is there is read without waiting")
        await a.close()
        await b.close()
    } }

    @Test("write to a peer that never reads throws ETIMEDOUT")
    func writeTimesOut() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        await a.setTimeout(.milliseconds(200))
        let start = ContinuousClock.now
        let error = await #expect(throws: SocketError.self) { try await a.write([UInt8](repeating: 0, count: 4 << 20)) }
        #expect(error?.code == ETIMEDOUT)
        #expect(error?.operation == "write")
        #expect(ContinuousClock.now - start < .seconds(5))
        await a.close()
        await b.close()
    } }

    @Test("a write that keeps making progress is not cut off by the timeout")
    func writeWithProgressDoesNotTimeOut() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        await a.setTimeout(.milliseconds(400))
        let size = 8 << 20
        let data = CoreFixtures.pattern(count: size, seed: 2)
        // The reader drains slowly: the whole write takes well over the timeout, but it never stalls that long.
        let reader = Task {
            var received: [UInt8] = []
            received.reserveCapacity(size)
            while received.count < size {
                try await Task.sleep(for: .milliseconds(50))
                _ = try await b.read(into: &received, upTo: 256 * 1024)
            }
            return received
        }
        let start = ContinuousClock.now
        try await a.write(data)
        let elapsed = ContinuousClock.now - start
        #expect(CoreFixtures.sameBytes(try await CoreFixtures.value(of: reader), data))
        // Only meaningful if the write really outlasted the timeout.
        #expect(elapsed > .milliseconds(400), "the write finished in \(elapsed); the test proves nothing")
        await a.close()
        await b.close()
    } }

    @Test("connect(to: SocketAddress, timeout:) to an address that drops SYNs throws ETIMEDOUT")
    func connectTimesOut() async throws { try await withDescriptorCheck {
        let (server, filler) = try await Self.blackhole()
        let target = server.localAddress
        let start = ContinuousClock.now
        let error = await #expect(throws: SocketError.self) {
            _ = try await AsyncSocket.connect(to: target, timeout: .milliseconds(300))
        }
        let elapsed = ContinuousClock.now - start
        #expect(error?.code == ETIMEDOUT)
        #expect(error?.address == target)
        #expect(error?.description == "connect to \(target) failed: Connection timed out (ETIMEDOUT): no progress within 0.3 seconds")
        #expect(elapsed >= .milliseconds(290) && elapsed < .seconds(5), "took \(elapsed)")
        await filler.close()
        server.close()
    } }

    @Test("connect(to: Endpoint, timeout:) to an address that drops SYNs throws ETIMEDOUT")
    func endpointConnectTimesOut() async throws { try await withDescriptorCheck {
        let (server, filler) = try await Self.blackhole()
        let port = try #require(server.localAddress.port)
        let start = ContinuousClock.now
        let error = await #expect(throws: SocketError.self) {
            _ = try await AsyncSocket.connect(to: Endpoint(host: "127.0.0.2", port: port), timeout: .milliseconds(300))
        }
        #expect(error?.code == ETIMEDOUT)
        #expect(ContinuousClock.now - start < .seconds(5))
        await filler.close()
        server.close()
    } }

    @Test("cancelling a connect that waits returns at once and closes its descriptor")
    func cancelConnect() async throws { try await withDescriptorCheck {
        let (server, filler) = try await Self.blackhole()
        let target = server.localAddress
        let before = Self.synSent(to: target)
        let connecting = Task { try await AsyncSocket.connect(to: target) }
        // The kernel lists the attempt as SYN_SENT once connect(2) has been called; it then waits for seconds.
        do {
            try await CoreFixtures.waitUntil("the connect is in SYN_SENT") { Self.synSent(to: target) > before }
        } catch {
            connecting.cancel()
            _ = try? await connecting.value
            await filler.close()
            server.close()
            throw error
        }
        let start = ContinuousClock.now
        connecting.cancel()
        await #expect(throws: CancellationError.self) { _ = try await CoreFixtures.value(of: connecting) }
        #expect(ContinuousClock.now - start < .seconds(2))
        await filler.close()
        server.close()
    } }

    @Test("a connect timeout stays as the socket's timeout for later reads (like Python's create_connection)")
    func connectTimeoutBecomesSocketTimeout() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let client = try await AsyncSocket.connect(to: server.localAddress, timeout: .milliseconds(200))
        #expect(await client.timeout == .milliseconds(200))
        let accepted = try #require(try await server.accept())
        let error = await #expect(throws: SocketError.self) { try await client.read(upTo: 1) }
        #expect(error?.code == ETIMEDOUT)
        await client.close()
        await accepted.close()
        server.close()
    } }
}
