#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization
import Testing
@testable import AsyncSockets

private typealias F = CoreFixtures

/// Helpers of the datagram suites.
enum DatagramFixtures {
    /// A bound socket on `host` port 0 and an unbound client of the same family.
    static func pair(host: String) throws -> (server: DatagramSocket, client: DatagramSocket) {
        let family: SocketFamily = host.contains(":") ? .ipv6 : .ipv4
        let server = try DatagramSocket.bind(host: host, port: 0, family: family)
        let client = try DatagramSocket.unbound(family: family)
        return (server, client)
    }

    /// A fresh path for a unix socket file in the temporary directory.
    static func unixPath(_ name: String) -> String {
        "/tmp/as-dgram-\(getpid())-\(name)-\(UInt32.random(in: 0...UInt32.max)).sock"
    }

    /// The error `body` throws, as a ``SocketError`` (fails the test otherwise).
    static func socketError(_ body: () async throws -> Void,
                            sourceLocation: SourceLocation = #_sourceLocation) async -> SocketError? {
        do {
            try await body()
            Issue.record("expected a SocketError, nothing was thrown", sourceLocation: sourceLocation)
        } catch let error as SocketError {
            return error
        } catch {
            Issue.record("expected a SocketError, got \(error)", sourceLocation: sourceLocation)
        }
        return nil
    }

    /// A 4-byte big-endian sequence number followed by `extra` bytes of pattern.
    static func numbered(_ n: Int, extra: Int = 28) -> [UInt8] {
        withUnsafeBytes(of: UInt32(n).bigEndian) { Array($0) } + F.pattern(count: extra, seed: UInt8(truncatingIfNeeded: n))
    }

    static func number(of bytes: [UInt8]) -> Int {
        Int(bytes.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
    }
}

private typealias D = DatagramFixtures

extension DatagramSocket {
    /// The core's wait state, read on the socket's loop (test helper).
    func coreTestWaitState() -> SocketCore.WaitState { core.waitState }
}

@Suite struct DatagramRoundTripTests {
    @Test(arguments: ["127.0.0.1", "::1"])
    func roundTrip(host: String) async throws {
        let (server, client) = try D.pair(host: host)
        let serverAddress = try await server.localAddress
        #expect(serverAddress.host == host)
        try await client.send(Array("ping".utf8), to: serverAddress)
        let request = try await server.receive()
        #expect(request.bytes == Array("ping".utf8))
        #expect(!request.isTruncated)
        let clientAddress = try await client.localAddress
        #expect(request.sender?.port == clientAddress.port)
        #expect(request.sender?.host == host)
        try await server.send(Array("pong".utf8), to: #require(request.sender))
        let reply = try await client.receive()
        #expect(reply.bytes == Array("pong".utf8))
        #expect(reply.sender == serverAddress)
        await server.close()
        await client.close()
    }

    /// An IPv6 socket with `dualStackIPv6` receives from IPv4 senders (as IPv4-mapped addresses) and replies
    /// to them; without it, `IPV6_V6ONLY` is set.
    @Test func dualStack() async throws {
        let server = try DatagramSocket.bind(host: "::", port: 0, family: .ipv6, dualStackIPv6: true)
        #expect(try await server.option(.ipv6Only) == false)
        let port = try #require(try await server.localAddress.port)
        let client = try DatagramSocket.unbound(family: .ipv4)
        try await client.send([1, 2, 3], to: SocketAddress(ipv4: "127.0.0.1", port: port))
        let request = try await server.receive()
        let sender = try #require(request.sender)
        #expect(sender.isIPv4Mapped, "\(sender)")
        #expect(sender.host == "::ffff:127.0.0.1")
        try await server.send([4, 5], to: sender)
        let reply = try await client.receive()
        #expect(reply.bytes == [4, 5])
        #expect(reply.sender == (try SocketAddress(ipv4: "127.0.0.1", port: port)))

        let v6only = try DatagramSocket.bind(host: "::1", port: 0, family: .ipv6)
        #expect(try await v6only.option(.ipv6Only) == true)
        await v6only.close()
        await server.close()
        await client.close()
    }

    /// 0-byte datagrams are datagrams; the largest ones fit; one byte more fails that call only, with EMSGSIZE
    /// naming the address and the size.
    @Test(arguments: [("127.0.0.1", 65_507), ("::1", 65_527)])
    func emptyAndLargest(host: String, largest: Int) async throws {
        let (server, client) = try D.pair(host: host)
        let address = try await server.localAddress
        try await client.send([], to: address)
        let empty = try await server.receive()
        #expect(empty.bytes.isEmpty)
        #expect(!empty.isTruncated)
        #expect(empty.sender != nil)

        let big = F.pattern(count: largest)
        try await client.send(big, to: address)
        let received = try await server.receive()
        #expect(F.sameBytes(received.bytes, big))
        #expect(!received.isTruncated)

        let error = await D.socketError { try await client.send(F.pattern(count: largest + 1), to: address) }
        #expect(error?.code == EMSGSIZE)
        #expect(error?.codeName == "EMSGSIZE")
        #expect(error?.operation == "send")
        #expect(error?.address == address)
        #expect(error?.detail?.contains("\(largest + 1) bytes") == true, "\(String(describing: error))")

        // Still usable, and the sequence delivers empty and largest datagrams too.
        try await client.send([], to: address)
        try await client.send(big, to: address)
        var iterator = server.datagrams.makeAsyncIterator()
        #expect(try await iterator.next()?.bytes == [])
        let last = try #require(try await iterator.next())
        #expect(F.sameBytes(last.bytes, big) && !last.isTruncated)
        await server.close()
        await client.close()
    }

    /// A datagram longer than `maxSize` is reported as truncated, never cut silently; the next one is whole.
    @Test func truncation() async throws {
        let (first, second) = try DatagramSocket.pair()
        let long = F.pattern(count: 100)
        try await first.send(long)
        try await first.send([7, 8, 9])
        let cut = try await second.receive(maxSize: 10)
        #expect(cut.bytes == Array(long.prefix(10)))
        #expect(cut.isTruncated)
        let whole = try await second.receive(maxSize: 10)
        #expect(whole.bytes == [7, 8, 9] && !whole.isTruncated)

        try await first.send(long)
        let nothing = try await second.receive(maxSize: 0)
        #expect(nothing.bytes.isEmpty && nothing.isTruncated)

        // The batched sequence reports truncation the same way.
        try await first.send(long)
        try await first.send([1])
        var iterator = try second.datagrams(maxSize: 50).makeAsyncIterator()
        let batchedCut = try #require(try await iterator.next())
        #expect(batchedCut.bytes == Array(long.prefix(50)) && batchedCut.isTruncated)
        let batchedWhole = try #require(try await iterator.next())
        #expect(batchedWhole.bytes == [1] && !batchedWhole.isTruncated)
        await first.close()
        await second.close()
    }

    @Test func unixPair() async throws {
        let (a, b) = try DatagramSocket.pair()
        #expect(a.family == .unix)
        try await a.send(Array("to b".utf8))
        try await b.send([])
        let atB = try await b.receive()
        #expect(atB.bytes == Array("to b".utf8))
        #expect(atB.sender == nil)
        let atA = try await a.receive()
        #expect(atA.bytes.isEmpty && !atA.isTruncated)
        await a.close()
        await b.close()
    }

    /// Unix datagram sockets on paths: the sender's path is reported and can be replied to; close() removes
    /// the file; binding an existing path fails with EADDRINUSE.
    @Test func unixPaths() async throws {
        let serverPath = D.unixPath("server")
        let clientPath = D.unixPath("client")
        let server = try DatagramSocket.bind(unixPath: serverPath)
        let client = try DatagramSocket.bind(unixPath: clientPath)
        #expect(FileManager.default.fileExists(atPath: serverPath))
        let serverAddress = try SocketAddress(unixPath: serverPath)
        #expect(try await server.localAddress == serverAddress)
        try await client.send([42], to: serverAddress)
        let request = try await server.receive()
        #expect(request.bytes == [42])
        #expect(request.sender?.unixPath == clientPath)
        try await server.send([43], to: #require(request.sender))
        #expect(try await client.receive().bytes == [43])

        let taken = await D.socketError { _ = try DatagramSocket.bind(unixPath: serverPath) }
        #expect(taken?.code == EADDRINUSE)
        #expect(taken?.operation == "bind")

        // An unbound unix socket can send; its datagrams have no sender.
        let anonymous = try DatagramSocket.unbound(family: .unix)
        try await anonymous.send([44], to: serverAddress)
        let fromAnonymous = try await server.receive()
        #expect(fromAnonymous.bytes == [44] && fromAnonymous.sender == nil)
        await anonymous.close()

        await server.close()
        await client.close()
        #expect(!FileManager.default.fileExists(atPath: serverPath), "close() removes the socket file")
        #expect(!FileManager.default.fileExists(atPath: clientPath))
    }

    /// Connected mode: send(_:) and receive(maxSize:) without addresses, and only the peer's datagrams arrive.
    @Test func connectedMode() async throws {
        let (server, client) = try D.pair(host: "127.0.0.1")
        let serverAddress = try await server.localAddress
        try await client.connect(to: serverAddress)
        #expect(try await client.remoteAddress == serverAddress)
        try await client.send(Array("hello".utf8))
        let request = try await server.receive()
        #expect(request.bytes == Array("hello".utf8))

        // A stranger's datagram is not delivered to a connected socket; the peer's is.
        let stranger = try DatagramSocket.unbound()
        try await stranger.send([0xEE], to: try await client.localAddress)
        try await server.send(Array("world".utf8), to: #require(request.sender))
        let reply = try await client.receive()
        #expect(reply.bytes == Array("world".utf8))
        #expect(reply.sender == serverAddress)
        await stranger.close()
        await server.close()
        await client.close()
    }

    /// A connected socket reports the ICMP port unreachable of a closed port as ECONNREFUSED, once, and stays
    /// usable.
    @Test func connectionRefusedOnceThenUsable() async throws {
        let closed = try DatagramSocket.bind(host: "127.0.0.1", port: 0)
        let closedAddress = try await closed.localAddress
        await closed.close()
        let client = try DatagramSocket.unbound()
        await client.setTimeout(.seconds(20))
        try await client.connect(to: closedAddress)
        try await client.send([1])
        let refused = await D.socketError { _ = try await client.receive() }
        #expect(refused?.code == ECONNREFUSED)
        #expect(refused?.operation == "receive")
        #expect(refused?.address == closedAddress)
        #expect(refused.map { "\($0)" }?.hasPrefix("receive from \(closedAddress) failed: Connection refused (ECONNREFUSED)") == true)

        // Once: the next receive waits (and times out) instead of failing again.
        await client.setTimeout(.milliseconds(50))
        let quiet = await D.socketError { _ = try await client.receive() }
        #expect(quiet?.code == ETIMEDOUT)

        // Still usable: connect elsewhere and talk.
        await client.setTimeout(.seconds(20))
        let server = try DatagramSocket.bind(host: "127.0.0.1", port: 0)
        try await client.connect(to: try await server.localAddress)
        try await client.send([2])
        let request = try await server.receive()
        #expect(request.bytes == [2])
        try await server.send([3], to: #require(request.sender))
        #expect(try await client.receive().bytes == [3])
        await server.close()
        await client.close()
    }

    /// Sending to a broadcast address without SO_BROADCAST fails with EACCES, for that call only.
    @Test func broadcastNeedsTheOption() async throws {
        let socket = try DatagramSocket.unbound()
        #expect(try await socket.option(.broadcast) == false)
        let target = try SocketAddress(ipv4: "255.255.255.255", port: 9)
        let error = await D.socketError { try await socket.send([1, 2, 3], to: target) }
        #expect(error?.code == EACCES)
        #expect(error?.operation == "send")
        #expect(error?.address == target)
        #expect(error?.detail?.contains("3 bytes") == true)
        // The socket still works.
        let server = try DatagramSocket.bind(host: "127.0.0.1", port: 0)
        try await socket.send([4], to: try await server.localAddress)
        #expect(try await server.receive().bytes == [4])
        await server.close()
        await socket.close()

        let allowed = try DatagramSocket.unbound(broadcast: true)
        #expect(try await allowed.option(.broadcast) == true)
        await allowed.close()
        let bound = try DatagramSocket.bind(host: "127.0.0.1", port: 0, reusePort: true, broadcast: true)
        #expect(try await bound.option(.broadcast) == true)
        #expect(try await bound.option(.reusePort) == true)
        await bound.close()
    }

    /// Two sockets with SO_REUSEPORT share a port.
    @Test func reusePortSharesThePort() async throws {
        let first = try DatagramSocket.bind(host: "127.0.0.1", port: 0, reusePort: true)
        let port = try #require(try await first.localAddress.port)
        let second = try DatagramSocket.bind(host: "127.0.0.1", port: port, reusePort: true)
        #expect(try await second.localAddress.port == port)
        let error = await D.socketError { _ = try DatagramSocket.bind(host: "127.0.0.1", port: port) }
        #expect(error?.code == EADDRINUSE)
        await first.close()
        await second.close()
    }

    /// Multicast on loopback: IPv4 join, receive, leave; IPv6 join and leave (loopback has no IPv6 multicast
    /// route, so nothing is sent there).
    @Test func multicastOnLoopback() async throws {
        let group = "239.255.77.1"
        let receiver = try DatagramSocket.bind(host: group, port: 0)
        let port = try #require(try await receiver.localAddress.port)
        try await receiver.joinMulticastGroup(group, interface: "lo")
        let again = await D.socketError { try await receiver.joinMulticastGroup(group, interface: "lo") }
        #expect(again?.code == EADDRINUSE)
        #expect(again?.detail?.contains(group) == true)

        let sender = try DatagramSocket.unbound()
        try await sender.setMulticastInterface("lo")
        try await sender.setMulticastHops(0)
        try await sender.setMulticastLoopback(true)
        await receiver.setTimeout(.seconds(20))
        try await sender.send(Array("to the group".utf8), to: SocketAddress(ipv4: group, port: port))
        let datagram = try await receiver.receive()
        #expect(datagram.bytes == Array("to the group".utf8))
        try await receiver.leaveMulticastGroup(group, interface: "lo")
        let notMember = await D.socketError { try await receiver.leaveMulticastGroup(group, interface: "lo") }
        #expect(notMember?.code == EADDRNOTAVAIL)

        let badGroup = await D.socketError { try await receiver.joinMulticastGroup("127.0.0.1") }
        #expect(badGroup?.code == EINVAL)
        let badInterface = await D.socketError { try await receiver.joinMulticastGroup(group, interface: "no-such-if0") }
        #expect(badInterface?.code == EINVAL)
        let badHops = await D.socketError { try await sender.setMulticastHops(256) }
        #expect(badHops?.code == EINVAL)
        let wrongFamily = await D.socketError { try await receiver.joinMulticastGroup("ff01::1234") }
        #expect(wrongFamily?.code == EAFNOSUPPORT)

        let v6 = try DatagramSocket.bind(host: "::1", port: 0, family: .ipv6)
        try await v6.joinMulticastGroup("ff01::1234", interface: "lo")
        try await v6.setMulticastHops(1)
        try await v6.setMulticastLoopback(false)
        try await v6.setMulticastInterface("lo")
        try await v6.leaveMulticastGroup("ff01::1234", interface: "lo")
        await v6.close()
        await sender.close()
        await receiver.close()
    }

    /// A batch send delivers every datagram to its own address; a failing datagram names its place, and the
    /// ones before it were sent.
    @Test func batchSend() async throws {
        let a = try DatagramSocket.bind(host: "127.0.0.1", port: 0)
        let b = try DatagramSocket.bind(host: "127.0.0.1", port: 0)
        let sender = try DatagramSocket.unbound()
        let addressA = try await a.localAddress
        let addressB = try await b.localAddress
        let batch = (0..<100).map { OutgoingDatagram(D.numbered($0), to: $0 % 2 == 0 ? addressA : addressB) }
        try await sender.send(batch: batch)
        var atA: [Int] = []
        var atB: [Int] = []
        for _ in 0..<50 { atA.append(D.number(of: try await a.receive().bytes)) }
        for _ in 0..<50 { atB.append(D.number(of: try await b.receive().bytes)) }
        #expect(atA == Array(stride(from: 0, to: 100, by: 2)))
        #expect(atB == Array(stride(from: 1, to: 100, by: 2)))

        let failing = [OutgoingDatagram([1], to: addressA), OutgoingDatagram([2], to: addressA),
                       OutgoingDatagram([UInt8](repeating: 0, count: 70_000), to: addressA),
                       OutgoingDatagram([4], to: addressA)]
        let error = await D.socketError { try await sender.send(batch: failing) }
        #expect(error?.code == EMSGSIZE)
        #expect(error?.address == addressA)
        #expect(error?.detail?.contains("datagram 3 of 4") == true, "\(String(describing: error))")
        #expect(try await a.receive().bytes == [1])
        #expect(try await a.receive().bytes == [2])
        try await sender.send(batch: [OutgoingDatagram([5], to: addressA)])
        #expect(try await a.receive().bytes == [5], "the datagram after the failing one was not sent")

        // Connected: nil addresses go to the peer.
        try await sender.connect(to: addressB)
        try await sender.send(batch: [OutgoingDatagram([6], to: nil), OutgoingDatagram([7], to: nil)])
        #expect(try await b.receive().bytes == [6])
        #expect(try await b.receive().bytes == [7])
        await a.close()
        await b.close()
        await sender.close()
    }

    @Test func badInput() async throws {
        let socket = try DatagramSocket.unbound()
        #expect(await D.socketError { _ = try await socket.receive(maxSize: -1) }?.code == EINVAL)
        #expect(await D.socketError { _ = try socket.datagrams(maxSize: -1) }?.code == EINVAL)
        #expect(await D.socketError { _ = try socket.datagrams(maxSize: 10, batchSize: 0) }?.code == EINVAL)
        #expect(await D.socketError { _ = try DatagramSocket.bind(host: "::1", port: 0) }?.code == EAFNOSUPPORT)
        #expect(await D.socketError { _ = try DatagramSocket.bind(host: "127.0.0.1", port: 0, dualStackIPv6: true) }?.code == EINVAL)
        #expect(await D.socketError { _ = try DatagramSocket.bind(host: "x", port: 0, family: .unix) }?.code == EINVAL)
        #expect(await D.socketError { _ = try DatagramSocket.unbound(family: .unix, broadcast: true) }?.code == EINVAL)
        #expect(await D.socketError { _ = try DatagramSocket.bind(unixPath: "") }?.code == EINVAL)
        #expect(await D.socketError { try await socket.send([1], to: SocketAddress(ipv6: "::1", port: 9)) }?.code == EAFNOSUPPORT)
        #expect(await D.socketError { try await socket.send([1]) }?.code == EDESTADDRREQ)
        await socket.close()
        await socket.close()
        let closed = await D.socketError { try await socket.send([1], to: SocketAddress(ipv4: "127.0.0.1", port: 9)) }
        #expect(closed?.code == EBADF)
        #expect(await D.socketError { _ = try await socket.receive() }?.code == EBADF)
        #expect(await D.socketError { try await socket.connect(to: SocketAddress(ipv4: "127.0.0.1", port: 9)) }?.code == EBADF)
        var iterator = socket.datagrams.makeAsyncIterator()
        #expect(try await iterator.next() == nil, "a closed socket's sequence is empty")
    }
}

@Suite struct DatagramConcurrencyTests {
    /// A pending receive is cancelled promptly; the socket stays usable.
    @Test func cancelPendingReceive() async throws {
        let (a, b) = try DatagramSocket.pair()
        let pending = Task { try await b.receive() }
        try await F.waitUntil("the receive waits") { await b.coreTestWaitState().reading }
        pending.cancel()
        let outcome = await pending.result
        #expect(throws: CancellationError.self) { try outcome.get() }
        try await a.send([1])
        #expect(try await b.receive().bytes == [1])
        await a.close()
        await b.close()
    }

    /// close() wakes a pending receive (EBADF) and ends a pending sequence (nil).
    @Test func closeWakesWaiters() async throws {
        let (a, b) = try DatagramSocket.pair()
        let receive = Task { try await b.receive() }
        try await F.waitUntil("the receive waits") { await b.coreTestWaitState().reading }
        await b.close()
        let error = await D.socketError { _ = try await F.value(of: receive, within: .seconds(20)) }
        #expect(error?.code == EBADF)

        let (c, d) = try DatagramSocket.pair()
        let sequence = Task { () -> Int in
            var count = 0
            for try await _ in d.datagrams { count += 1 }
            return count
        }
        try await c.send([1])
        try await F.waitUntil("the sequence waits for the second") { await d.coreTestWaitState().reading }
        await d.close()
        #expect(try await F.value(of: sequence, within: .seconds(20)) == 1)
        await a.close()
        await c.close()
    }

    @Test func timeout() async throws {
        let (a, b) = try DatagramSocket.pair()
        await b.setTimeout(.milliseconds(30))
        let error = await D.socketError { _ = try await b.receive() }
        #expect(error?.code == ETIMEDOUT)
        #expect(error?.operation == "receive")
        try await a.send([9])
        #expect(try await b.receive().bytes == [9])
        await a.close()
        await b.close()
    }

    /// A send that finds no room (a unix pair whose receiver does not read) waits, bounded by the timeout;
    /// the socket stays usable once the receiver drains. Sockets live on the loop they were given.
    @Test func sendWaitsForRoomBoundedByTimeout() async throws {
        let (a, b) = try DatagramSocket.pair(on: EventLoop.shared)
        #expect(a.eventLoop === EventLoop.shared && b.eventLoop === EventLoop.shared)
        await a.setTimeout(.milliseconds(50))
        var sent = 0
        var timedOut: SocketError?
        while sent < 100_000 {
            do {
                try await a.send(D.numbered(sent))
                sent += 1
            } catch let error as SocketError {
                timedOut = error
                break
            }
        }
        #expect(timedOut?.code == ETIMEDOUT)
        #expect(timedOut?.operation == "send")
        #expect(sent > 0)
        for n in 0..<sent { #expect(D.number(of: try await b.receive().bytes) == n) }
        try await a.send([1])
        #expect(try await b.receive().bytes == [1])
        await a.close()
        await b.close()
    }

    /// Two concurrent receivers each get whole, distinct datagrams, and none is lost. The unix pair does not
    /// drop: the sender waits for room (EAGAIN) when the receiver's queue is full.
    @Test(arguments: [false, true])
    func concurrentReceiversShareWithoutLoss(batched: Bool) async throws {
        let (a, b) = try DatagramSocket.pair()
        let count = 2_000
        let receivers = (0..<2).map { _ in
            Task { () -> [Int] in
                var seen: [Int] = []
                var iterator = b.datagrams.makeAsyncIterator()
                while true {
                    let datagram = batched ? try #require(try await iterator.next()) : try await b.receive()
                    if datagram.bytes.isEmpty { return seen }
                    #expect(datagram.bytes == D.numbered(D.number(of: datagram.bytes)), "a whole datagram")
                    seen.append(D.number(of: datagram.bytes))
                }
            }
        }
        for n in 0..<count { try await a.send(D.numbered(n)) }
        try await a.send([])
        try await a.send([])
        var all: [Int] = []
        for receiver in receivers {
            let seen = try await F.value(of: receiver, within: .seconds(30))
            #expect(seen == seen.sorted(), "each receiver sees its share in order")
            all += seen
        }
        #expect(all.sorted() == Array(0..<count))
        await a.close()
        await b.close()
    }

    /// The batched sequence delivers every datagram once and in order from one sender (over UDP, with a
    /// receive buffer large enough that loopback drops nothing, and over a unix pair, where the sender waits).
    @Test func sequenceDeliversEveryDatagramOnceInOrder() async throws {
        let (a, b) = try DatagramSocket.pair()
        let count = 3_000
        let consumer = Task { () -> [Int] in
            var seen: [Int] = []
            for try await datagram in b.datagrams {
                if datagram.bytes.isEmpty { break }
                seen.append(D.number(of: datagram.bytes))
            }
            return seen
        }
        for n in 0..<count { try await a.send(D.numbered(n)) }
        try await a.send([])
        #expect(try await F.value(of: consumer, within: .seconds(30)) == Array(0..<count))

        let server = try DatagramSocket.bind(host: "127.0.0.1", port: 0)
        try await server.setOption(.receiveBufferSize, 4 << 20)
        let client = try DatagramSocket.unbound()
        let address = try await server.localAddress
        let udpCount = 1_000
        try await client.send(batch: (0..<udpCount).map { OutgoingDatagram(D.numbered($0), to: address) })
        try await client.send([], to: address)
        var seen: [Int] = []
        for try await datagram in server.datagrams {
            if datagram.bytes.isEmpty { break }
            seen.append(D.number(of: datagram.bytes))
        }
        #expect(seen == Array(0..<udpCount))
        await server.close()
        await client.close()
        await a.close()
        await b.close()
    }

    /// Datagrams a batch received but the loop did not take stay with the socket: breaking out of the
    /// sequence loses nothing.
    @Test func breakingOutOfTheSequenceLosesNothing() async throws {
        let (a, b) = try DatagramSocket.pair()
        for n in 0..<5 { try await a.send(D.numbered(n)) }
        for try await datagram in b.datagrams {
            #expect(D.number(of: datagram.bytes) == 0)
            break
        }
        for n in 1..<5 { #expect(D.number(of: try await b.receive().bytes) == n) }
        await a.close()
        await b.close()
    }

    /// Sends until `done`, isolated to the socket: no call hops to the socket's executor, so nothing but the
    /// socket's own fairness budget hands the loop back.
    private static func flood(_ socket: isolated DatagramSocket, to address: SocketAddress,
                              until done: Mutex<Bool>) async throws -> (sent: Int, stoppedByDone: Bool) {
        var sent = 0
        let payload = [UInt8](repeating: 1, count: 32)
        // A bound, so that a starved ping-pong makes the test fail instead of hanging it.
        let giveUp = ContinuousClock.now + .seconds(10)
        while !done.withLock({ $0 }) {
            if sent % 1024 == 0 && ContinuousClock.now > giveUp { return (sent, false) }
            try await socket.send(payload, to: address)
            sent += 1
        }
        return (sent, true)
    }

    /// A task that keeps sending without ever waiting (UDP on loopback never says EAGAIN) hands the loop back:
    /// another socket on the same loop still gets its turn. Without the fairness budget the flood would never
    /// let the ping-pong run, and the flood only stops when the ping-pong is done.
    @Test func floodingSenderLeavesRoomForOthers() async throws {
        let loop = EventLoop.shared
        let sink = try DatagramSocket.bind(host: "127.0.0.1", port: 0, on: loop)
        let sinkAddress = try await sink.localAddress
        let flooder = try DatagramSocket.unbound(on: loop)
        let (a, b) = try DatagramSocket.pair(on: loop)
        let done = Mutex(false)
        let flood = Task(executorPreference: loop) { () -> (sent: Int, stoppedByDone: Bool) in
            try await Self.flood(flooder, to: sinkAddress, until: done)
        }
        let pingPong = Task(executorPreference: loop) {
            for n in 0..<10 {
                try await a.send(D.numbered(n))
                let got = try await b.receive()
                #expect(D.number(of: got.bytes) == n)
            }
            done.withLock { $0 = true }
        }
        try await F.value(of: pingPong, within: .seconds(30))
        let flooded = try await F.value(of: flood, within: .seconds(30))
        #expect(flooded.sent > 0)
        #expect(flooded.stoppedByDone, "the ping-pong got no turn while the flood ran")
        await sink.close()
        await flooder.close()
        await a.close()
        await b.close()
    }
}

extension DatagramConcurrencyTests {
    /// A plain task that sends datagrams one after another never waits (UDP on loopback has room), but each
    /// call hops to the loop and the loop polls for readiness between them: every other socket has its turn
    /// anyway, so no send hands the loop back (a `Task.yield`). Before the turn ended at each poll, the sender
    /// handed the loop back every 64 datagrams.
    @Test func sendsFromAPlainTaskNeverHandTheLoopBack() async throws {
        let sink = try DatagramSocket.bind(host: "127.0.0.1", port: 0)
        let sinkAddress = try await sink.localAddress
        let sender = try DatagramSocket.unbound()
        let count = 400
        let payload = [UInt8](repeating: 3, count: 32)
        let sends = Task {
            for _ in 0..<count { try await sender.send(payload, to: sinkAddress) }
        }
        try await F.value(of: sends, within: .seconds(30))
        let handBacks = await sender.handBacks
        #expect(handBacks == 0, "\(handBacks) hand-backs in \(count) sends")
        await sink.close()
        await sender.close()
    }
}

@Suite(.serialized) struct DatagramResourceTests {
    /// 10,000 datagrams into a small receive buffer: drops are possible, nothing hangs, nothing leaks.
    @Test func burstIntoSmallReceiveBuffer() async throws { try await withDescriptorCheck {
        let server = try DatagramSocket.bind(host: "127.0.0.1", port: 0)
        try await server.setOption(.receiveBufferSize, 4096)
        let client = try DatagramSocket.unbound()
        let address = try await server.localAddress
        let total = 10_000
        let receiver = Task { () -> [Int] in
            var seen: [Int] = []
            await server.setTimeout(.milliseconds(300))
            do {
                for try await datagram in server.datagrams {
                    if datagram.bytes.isEmpty { break }
                    seen.append(D.number(of: datagram.bytes))
                }
            } catch let error as SocketError where error.code == ETIMEDOUT {
                // The end marker itself may have been dropped.
            }
            return seen
        }
        let sender = Task {
            for n in 0..<total { try await client.send(D.numbered(n, extra: 96), to: address) }
            for _ in 0..<3 { try await client.send([], to: address) }
        }
        try await F.value(of: sender, within: .seconds(30))
        let seen = try await F.value(of: receiver, within: .seconds(30))
        #expect(seen.count <= total)
        #expect(Set(seen).count == seen.count, "no duplicates")
        #expect(seen == seen.sorted(), "in order")
        await server.close()
        await client.close()
    } }

    /// Sockets that are dropped without close() close their descriptors, bound unix paths included.
    @Test func droppedSocketsCloseTheirDescriptors() async throws {
        let path = D.unixPath("dropped")
        try await withDescriptorCheck {
            do {
                let (a, b) = try DatagramSocket.pair()
                try await a.send([1])
                _ = try await b.receive()
                let bound = try DatagramSocket.bind(unixPath: path)
                let udp = try DatagramSocket.bind(host: "::1", port: 0, family: .ipv6)
                _ = try await udp.localAddress
                _ = try await bound.localAddress
                try await a.send([2])
                var iterator = try b.datagrams(maxSize: 100).makeAsyncIterator()
                _ = try await iterator.next()
            }
        }
        try await F.waitUntil("the socket file is removed") { !FileManager.default.fileExists(atPath: path) }
    }
}

/// Talking datagrams with CPython's `socket` module in a `python3` child process.
@Suite struct DatagramPythonInteropTests {
    private typealias T = ServerTesting

    /// A DatagramSocket client against a Python `recvfrom`/`sendto` echo server (empty, small and large
    /// datagrams), and Python's `recvmsg` seeing `MSG_TRUNC` on a datagram we send.
    @Test func againstPythonEchoServer() async throws {
        let script = """
            import socket, sys
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            s.settimeout(30)
            print(s.getsockname()[1], flush=True)
            for i in range(3):
                data, addr = s.recvfrom(65536)
                s.sendto(data, addr)
            data, ancillary, flags, addr = s.recvmsg(10)
            print("truncated" if flags & socket.MSG_TRUNC else "whole", len(data), flush=True)
            """
        let child = try T.Child("python3", ["-c", script], limit: .seconds(60))
        guard let line = await child.readLine(), let port = UInt16(line) else {
            let result = await child.finish()
            Issue.record("python3 did not print its port: \(result.stdout) \(result.stderr)")
            return
        }
        let client = try DatagramSocket.unbound()
        await client.setTimeout(.seconds(20))
        let server = try SocketAddress(ipv4: "127.0.0.1", port: port)
        for payload in [[], Array("hello python".utf8), F.pattern(count: 60_000)] {
            try await client.send(payload, to: server)
            let reply = try await client.receive()
            #expect(F.sameBytes(reply.bytes, payload))
            #expect(reply.sender == server)
        }
        try await client.send(F.pattern(count: 100), to: server)
        #expect(await child.readLine() == "truncated 10")
        let result = await child.finish()
        #expect(result.status == 0, "python3 failed: \(result.stderr)")
        await client.close()
    }

    /// Python's client against a DatagramSocket echo server driven by the batched sequence.
    @Test func pythonClientAgainstDatagramEcho() async throws {
        let server = try DatagramSocket.bind(host: "127.0.0.1", port: 0)
        let port = try #require(try await server.localAddress.port)
        let echo = Task {
            for try await datagram in server.datagrams {
                try await server.send(datagram.bytes, to: datagram.sender!)
            }
        }
        let script = """
            import socket, sys
            port = int(sys.argv[1])
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(30)
            for i in range(20):
                msg = bytes((i * 7 + j) % 256 for j in range(i * 100))
                s.sendto(msg, ("127.0.0.1", port))
                data, addr = s.recvfrom(65536)
                if data != msg or addr[1] != port:
                    sys.exit("bad echo in round %d" % i)
            s.connect(("127.0.0.1", port))
            s.send(b"connected")
            if s.recv(100) != b"connected":
                sys.exit("bad connected echo")
            print("ok")
            """
        let result = try await T.run("python3", ["-c", script, String(port)], limit: .seconds(60))
        #expect(result.status == 0, "python3 failed: \(result.stderr)")
        #expect(result.stdout.contains("ok"), "python3 printed: \(result.stdout)")
        await server.close()
        try await F.value(of: echo, within: .seconds(20))
    }
}
