import Foundation
import Testing
@testable import AsyncSockets

/// Issue 11 item 5: numeric parameters out of range get a ``SocketError`` (`EINVAL`) or are clamped to what
/// the system can do; none traps. (Sizes and the basic cases are in `BadInputTests`.)
@Suite struct OutOfRangeInputTests {
    /// `happyEyeballsDelay: .seconds(Int64.max)` trapped in `Task.sleep(for:)` ("Not enough bits") as soon as
    /// a second address was queued; a negative delay is `EINVAL`.
    @Test func happyEyeballsDelay() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let port = server.localAddress.port!
        let refused = try AsyncServer(host: "127.0.0.1", port: 0)
        let refusedPort = refused.localAddress.port!
        refused.close()
        let addresses = [try SocketAddress(ipv4: "127.0.0.1", port: refusedPort), try SocketAddress(ipv4: "127.0.0.1", port: port)]
        for delay in [Duration.seconds(Int64.max), .seconds(1 << 40), .zero] {
            // The refusal starts the second attempt at once, so a huge delay costs nothing.
            let socket = try await AsyncSocket.connect(to: Endpoint(host: "twice.test", port: 1), happyEyeballsDelay: delay,
                                                       resolver: FixedResolver(addresses))
            #expect(try await socket.remoteAddress.port == port, "delay \(delay)")
            await socket.close()
        }
        // Both orders, the winner first: the delay timer starts and is cancelled.
        let socket = try await AsyncSocket.connect(to: Endpoint(host: "twice.test", port: 1), happyEyeballsDelay: .seconds(Int64.max),
                                                   resolver: FixedResolver(addresses.reversed()))
        await socket.close()
        for delay in [Duration.seconds(-1), .nanoseconds(-1), .seconds(Int64.min)] {
            expectSocketError(await caught {
                _ = try await AsyncSocket.connect(to: Endpoint(host: "127.0.0.1", port: port), happyEyeballsDelay: delay)
            }, [EINVAL], "delay \(delay)")
        }
        server.close()
    } }

    /// `rawOption(capacity: 1 << 32)` trapped converting to `socklen_t` (after allocating 4 GiB), and
    /// `capacity: Int.max` aborted in the allocation: the capacity is a bound, as `read(upTo:)`'s is.
    @Test func rawOptionCapacity() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        for capacity in [1 << 32, Int.max, Int(UInt32.max) + 1, AsyncSocket.largestRawOption + 1] {
            let bytes = try await a.rawOption(level: SOL_SOCKET, name: SO_TYPE, capacity: capacity)
            #expect(bytes.count == 4, "capacity \(capacity)")
            var type: Int32 = 0
            withUnsafeMutableBytes(of: &type) { $0.copyBytes(from: bytes) }
            #expect(type == Int32(SOCK_STREAM.rawValue))
        }
        // More bytes than any option takes (and than `socklen_t` may carry): EINVAL naming the option.
        let tooMany = await caught {
            try await a.setRawOption(level: SOL_SOCKET, name: SO_LINGER, bytes: [UInt8](repeating: 0, count: AsyncSocket.largestRawOption + 1))
        }
        expectSocketError(tooMany, [EINVAL])
        #expect((tooMany as? SocketError)?.detail?.contains("option \(SO_LINGER)") == true, "\(String(describing: tooMany))")
        // Option values beyond a C int are clamped, not trapped on.
        for value in [Int.max, Int.min, Int(Int32.max) + 1] {
            do { try await a.setOption(.receiveBufferSize, value) } catch let error as SocketError {
                #expect(error.code == EINVAL, "\(value): \(error)")
            }
        }
        await a.close()
        await b.close()
    } }

    /// Huge timeouts wait (no overflow to "already passed"), hugely negative ones time out at once, for
    /// reads, connects and `serve`'s idle timeout.
    @Test func extremeTimeouts() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        for timeout in [Duration.seconds(Int64.max), .seconds(1 << 40), .microseconds(Int64.max)] {
            await a.setTimeout(timeout)
            // The read really waits: the byte comes 50 ms later.
            let reader = Task { try await a.read(upTo: 1) }
            try await Task.sleep(for: .milliseconds(50))
            try await b.write([1])
            #expect(try await CoreFixtures.value(of: reader, within: .seconds(10)) == [1], "timeout \(timeout)")
        }
        await a.setTimeout(.seconds(Int64.min))
        expectSocketError(await caught { _ = try await a.read(upTo: 1) }, [ETIMEDOUT])
        await a.close()
        await b.close()

        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let port = server.localAddress.port!
        for timeout in [Duration.seconds(Int64.max), .seconds(1 << 40)] {
            let byAddress = try await AsyncSocket.connect(to: SocketAddress(ipv4: "127.0.0.1", port: port), timeout: timeout)
            await byAddress.close()
            let byName = try await AsyncSocket.connect(to: Endpoint(host: "127.0.0.1", port: port), timeout: timeout)
            #expect(await byName.timeout == timeout)
            await byName.close()
        }
        for timeout in [Duration.seconds(Int64.min), .seconds(-1)] {
            let error = await caught { _ = try await AsyncSocket.connect(to: Endpoint(host: "127.0.0.1", port: port), timeout: timeout) }
            expectSocketError(error, [ETIMEDOUT], "timeout \(timeout)")
            #expect((error as? SocketError)?.operation == "connect")
        }
        server.close()

        // serve(idleTimeout:): huge waits for the client's byte; negative ends the handler at once.
        for (idle, expectTimeout) in [(Duration.seconds(Int64.max), false), (.seconds(Int64.min), true)] {
            let server = try AsyncServer(host: "127.0.0.1", port: 0)
            let errors = Locked<[SocketError]>([])
            let serving = Task {
                try await server.serve(idleTimeout: idle, onError: { error, _ in
                    if let error = error as? SocketError { errors.withLock { $0.append(error) } }
                }) { client in
                    let bytes = try await client.read(upTo: 1)
                    try await client.write(bytes)
                }
            }
            let client = try await AsyncSocket.connect(to: Endpoint(host: "127.0.0.1", port: server.localAddress.port!), timeout: .seconds(10))
            try await Task.sleep(for: .milliseconds(50))
            try? await client.write([7])
            let echo = try? await client.read(upTo: 1)
            if expectTimeout {
                #expect(echo == nil || echo == [], "idle \(idle): \(String(describing: echo))")
                try await CoreFixtures.waitUntil("the handler timed out") { errors.withLock { !$0.isEmpty } }
                #expect(errors.withLock { $0.first?.code } == ETIMEDOUT)
            } else {
                #expect(echo == [7], "idle \(idle)")
                #expect(errors.withLock { $0.isEmpty })
            }
            await client.close()
            server.close()
            try await CoreFixtures.value(of: serving, within: .seconds(10))
        }
    } }

    /// Backlogs: negative is EINVAL, 0 and huge are clamped by the kernel.
    @Test func backlogs() async throws { try await withDescriptorCheck {
        for backlog in [-1, Int.min] {
            expectSocketError(await caught { _ = try AsyncServer(host: "127.0.0.1", port: 0, backlog: backlog) }, [EINVAL])
            expectSocketError(await caught { _ = try AsyncServer(unixPath: "/tmp/as-backlog-\(getpid()).sock", backlog: backlog) }, [EINVAL])
        }
        for backlog in [0, Int.max, Int(Int32.max) + 1] {
            try AsyncServer(host: "127.0.0.1", port: 0, backlog: backlog).close()
        }
    } }
}
