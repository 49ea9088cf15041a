import Foundation
import Testing
@testable import AsyncSockets

/// Faults from the outside: the peer resets or vanishes, the socket is closed from another task, a connect
/// goes nowhere. Every call must end promptly with a clear error, the socket must stay closable, and no
/// descriptor may leak.
@Suite struct FaultTests {
    // MARK: Peer resets (SO_LINGER {1, 0} then close)

    @Test func peerResetDuringReadThrowsECONNRESET() async throws { try await withDescriptorCheck {
        try await withDeadline(60, "peerResetDuringReadThrowsECONNRESET") {
            let server = try AsyncServer(host: "127.0.0.1", port: 0)
            let client = try await AsyncSocket.connect(to: server.localAddress)
            let accepted = try #require(try await server.accept())
            try await accepted.write(Array("hello".utf8))
            // The reader takes the 5 bytes and waits for 5 more, which never come: the peer resets instead.
            let reader = Task { try await client.read(exactly: 10) }
            // Let it get there (the outcome is the same if the reset comes first: recv reports ECONNRESET).
            try await Task.sleep(for: .milliseconds(50))
            try await reset(accepted)
            let error = await caught { _ = try await reader.value }
            expectSocketError(error, [ECONNRESET])
            // The socket is still usable for close(), and closed for everything else.
            await client.close()
            #expect(await client.isClosed)
            expectSocketError(await caught { _ = try await client.read(upTo: 1) }, [EBADF])
            server.close()
        }
    } }

    @Test func peerResetDuringLargeWriteThrowsEPIPEOrECONNRESET() async throws { try await withDescriptorCheck {
        try await withDeadline(60, "peerResetDuringLargeWriteThrowsEPIPEOrECONNRESET") {
            let server = try AsyncServer(host: "127.0.0.1", port: 0)
            let client = try await AsyncSocket.connect(to: server.localAddress)
            let accepted = try #require(try await server.accept())
            let big = [UInt8](repeating: 0x5A, count: 64 << 20)
            let writer = Task { try await client.write(big) }
            // Once the first bytes arrive the write is under way (64 MiB cannot fit the socket buffers).
            _ = try await accepted.read(exactly: 64 * 1024)
            try await reset(accepted)
            let error = await caught { try await writer.value }
            expectSocketError(error, [EPIPE, ECONNRESET])
            await client.close()
            expectSocketError(await caught { try await client.write([1]) }, [EBADF])
            server.close()
        }
    } }

    @Test func listenerThatResetsAtOnceFailsTheConnectionCleanly() async throws { try await withDescriptorCheck {
        try await withDeadline(60, "listenerThatResetsAtOnceFailsTheConnectionCleanly") {
            let server = try AsyncServer(host: "127.0.0.1", port: 0)
            let resetter = Task {
                for try await client in server.accepts { try await reset(client) }
            }
            for round in 0..<20 {
                // Alternate the single-address path and the Happy Eyeballs path.
                let client: AsyncSocket
                do {
                    if round.isMultiple(of: 2) {
                        client = try await AsyncSocket.connect(to: server.localAddress)
                    } else {
                        client = try await AsyncSocket.connect(to: Endpoint(host: "127.0.0.1", port: server.localAddress.port!))
                    }
                } catch {
                    // The reset may beat the connect's completion report.
                    expectSocketError(error, [ECONNRESET, ECONNREFUSED], "round \(round)")
                    continue
                }
                let error = await caught { _ = try await client.read(upTo: 100) }
                expectSocketError(error, [ECONNRESET], "round \(round)")
                await client.close()
            }
            server.close()
            try await resetter.value
        }
    } }

    @Test func connectToClosedPortIsRefused() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let address = server.localAddress
        server.close()
        expectSocketError(await caught { _ = try await AsyncSocket.connect(to: address) }, [ECONNREFUSED])
        expectSocketError(await caught { _ = try await AsyncSocket.connect(to: Endpoint(host: "127.0.0.1", port: address.port!)) },
                          [ECONNREFUSED])
        let group = await caught {
            _ = try await AsyncSocket.connect(to: Endpoint(host: "127.0.0.1", port: address.port!), allErrors: true)
        }
        #expect((group as? ConnectErrorGroup)?.errors.count == 1)
    } }

    // MARK: The peer vanishes

    @Test func peerVanishesWhileAThousandReadsWait() async throws { try await withDescriptorCheck {
        try await withDeadline(120, "peerVanishesWhileAThousandReadsWait") {
            let pairs = try (0..<500).map { _ in try AsyncSocket.pair() }
            let outcomes = Mutex((eof: 0, closed: 0, other: [String]()))
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (a, b) in pairs {
                    for (socket, isClosedSide) in [(a, true), (b, false)] {
                        group.addTask {
                            do {
                                let bytes = try await socket.read(upTo: 16)
                                outcomes.withLock {
                                    if bytes.isEmpty && !isClosedSide { $0.eof += 1 } else { $0.other.append("read \(bytes.count) bytes") }
                                }
                            } catch let error as SocketError where error.code == EBADF && isClosedSide {
                                outcomes.withLock { $0.closed += 1 }
                            } catch {
                                outcomes.withLock { $0.other.append("\(error)") }
                            }
                        }
                    }
                }
                // Give the readers a moment to reach their waits (the outcome is the same if one is late:
                // a read on a closed socket throws EBADF, a read after the peer closed returns []).
                try await Task.sleep(for: .milliseconds(200))
                for (a, _) in pairs { await a.close() }
                try await group.waitForAll()
            }
            let result = outcomes.withLock { $0 }
            #expect(result.eof == 500)
            #expect(result.closed == 500)
            #expect(result.other.isEmpty, "\(result.other.prefix(5))")
            for (_, b) in pairs { await b.close() }
        }
    } }

    // MARK: close() from another task

    @Test func closeDuringReadThrowsEBADF() async throws { try await withDescriptorCheck {
        try await withDeadline(30, "closeDuringReadThrowsEBADF") {
            let (a, b) = try AsyncSocket.pair()
            let reader = Task { try await a.read(upTo: 10) }
            try await Task.sleep(for: .milliseconds(50))
            await a.close()
            expectSocketError(await caught { _ = try await reader.value }, [EBADF])
            await b.close()
        }
    } }

    @Test func closeDuringQueuedReadsThrowsEBADFForEach() async throws { try await withDescriptorCheck {
        try await withDeadline(30, "closeDuringQueuedReadsThrowsEBADFForEach") {
            let (a, b) = try AsyncSocket.pair()
            // One reader waits for data, nine wait for the read lock.
            let readers = (0..<10).map { _ in Task { try await a.read(exactly: 4) } }
            try await Task.sleep(for: .milliseconds(50))
            await a.close()
            for reader in readers { expectSocketError(await caught { _ = try await reader.value }, [EBADF]) }
            await b.close()
        }
    } }

    @Test func closeDuringWriteThrowsEBADF() async throws { try await withDescriptorCheck {
        try await withDeadline(30, "closeDuringWriteThrowsEBADF") {
            let (a, b) = try AsyncSocket.pair()
            let writer = Task { try await a.write([UInt8](repeating: 1, count: 16 << 20)) }
            // The writer holds the write side, blocked, once the peer has its first bytes (16 MiB cannot fit).
            #expect(try await b.read(upTo: 1) == [1])
            let queued = Task { try await a.write([UInt8](repeating: 2, count: 10)) }
            try await Task.sleep(for: .milliseconds(50))  // let it queue (if late, it fails the same way)
            await a.close()
            expectSocketError(await caught { try await writer.value }, [EBADF])
            expectSocketError(await caught { try await queued.value }, [EBADF])
            await b.close()
        }
    } }

    @Test func closeDuringAcceptEndsItWithNil() async throws { try await withDescriptorCheck {
        try await withDeadline(30, "closeDuringAcceptEndsItWithNil") {
            let server = try AsyncServer(host: "127.0.0.1", port: 0)
            let acceptors = (0..<3).map { _ in Task { try await server.accept() } }
            let sequence = Task { () -> Int in
                var count = 0
                for try await client in server.accepts { count += 1; await client.close() }
                return count
            }
            try await Task.sleep(for: .milliseconds(50))
            server.close()
            for acceptor in acceptors { #expect(try await acceptor.value == nil) }
            #expect(try await sequence.value == 0)
            #expect(server.isClosed)
        }
    } }

    // A connect cannot be closed from another task through the public API (the socket is only handed out
    // once connected), so a hung connect is ended by its timeout or by cancelling its task.

    @Test func connectToBlackholeTimesOut() async throws { try await withDescriptorCheck {
        let hole = try Blackhole()
        defer { hole.close() }
        try await withDeadline(30, "blackholeTimeout") {
            let start = ContinuousClock.now
            let error = await caught { _ = try await AsyncSocket.connect(to: hole.address, timeout: .milliseconds(300)) }
            expectSocketError(error, [ETIMEDOUT])
            #expect(ContinuousClock.now - start < .seconds(10))
            let raced = await caught {
                _ = try await AsyncSocket.connect(to: Endpoint(host: hole.address.host!, port: hole.address.port!), timeout: .milliseconds(300))
            }
            expectSocketError(raced, [ETIMEDOUT])
        }
    } }

    @Test func cancelledConnectToBlackholeEndsPromptly() async throws { try await withDescriptorCheck {
        let hole = try Blackhole()
        defer { hole.close() }
        try await withDeadline(30, "blackholeCancel") {
            let plain = Task { try await AsyncSocket.connect(to: hole.address) }
            let raced = Task { try await AsyncSocket.connect(to: Endpoint(host: hole.address.host!, port: hole.address.port!)) }
            try await Task.sleep(for: .milliseconds(100))
            let start = ContinuousClock.now
            plain.cancel()
            raced.cancel()
            #expect(await caught { _ = try await plain.value } is CancellationError)
            #expect(await caught { _ = try await raced.value } is CancellationError)
            #expect(ContinuousClock.now - start < .seconds(5))
        }
    } }
}
