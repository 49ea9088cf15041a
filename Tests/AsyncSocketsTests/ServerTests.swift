import Foundation
import Testing
@testable import AsyncSockets

private typealias T = ServerTesting

// MARK: - create_server semantics

@Suite struct ServerCreationTests {
    @Test func emptyHostBindsAllIPv4Interfaces() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "", port: 0)
        #expect(server.localAddress.host == "0.0.0.0")
        let port = try #require(server.localAddress.port)
        // A server bound to 127.0.0.1 only would refuse 127.0.0.2; the wildcard takes both.
        for host in ["127.0.0.1", "127.0.0.2"] {
            let client = try await AsyncSocket.connect(to: SocketAddress(ipv4: host, port: port), timeout: .seconds(10))
            let accepted = try #require(try await server.accept())
            #expect(try await accepted.localAddress.host == host)
            await client.close()
            await accepted.close()
        }
        server.close()
    } }

    @Test func emptyHostBindsAllIPv6Interfaces() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "", port: 0, family: .ipv6)
        #expect(server.localAddress.host == "::")
        #expect(server.localAddress.family == .ipv6)
        let port = try #require(server.localAddress.port)
        let client = try await AsyncSocket.connect(to: SocketAddress(ipv6: "::1", port: port), timeout: .seconds(10))
        let accepted = try #require(try await server.accept())
        #expect(try await accepted.remoteAddress.host == "::1")
        await client.close()
        await accepted.close()
        server.close()
    } }

    @Test func setsReuseAddress() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        #expect(T.intOption(server.descriptor, SOL_SOCKET, SO_REUSEADDR) == 1)
        #expect(T.intOption(server.descriptor, SOL_SOCKET, SO_REUSEPORT) == 0)
        #expect(T.intOption(server.descriptor, SOL_SOCKET, SO_ACCEPTCONN) == 1)
        server.close()
        #expect(server.descriptor == -1)
    } }

    /// What SO_REUSEADDR is for: rebinding a port that still has connections in TIME_WAIT.
    @Test func rebindsAPortWithConnectionsInTimeWait() async throws { try await withDescriptorCheck {
        let first = try AsyncServer(host: "127.0.0.1", port: 0)
        let port = try #require(first.localAddress.port)
        let client = try await T.connect(port)
        let accepted = try #require(try await first.accept())
        await accepted.close() // the server side closes first, so its side of the connection enters TIME_WAIT
        #expect(try await client.read(upTo: 10) == [])
        await client.close()
        first.close()
        let second = try AsyncServer(host: "127.0.0.1", port: port)
        #expect(second.localAddress.port == port)
        second.close()
    } }

    @Test func defaultBacklogIsSomaxconnAndDocumented() async throws { try await withDescriptorCheck {
        #expect(AsyncServer.defaultBacklog == Int(SOMAXCONN))
        let kernelCap = Int((try? String(contentsOfFile: "/proc/sys/net/core/somaxconn", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? Int.max
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        #expect(try await T.listenBacklog(port: server.localAddress.port!) == min(AsyncServer.defaultBacklog, kernelCap))
        let small = try AsyncServer(host: "127.0.0.1", port: 0, backlog: 7)
        #expect(try await T.listenBacklog(port: small.localAddress.port!) == 7)
        server.close()
        small.close()
        let error = #expect(throws: SocketError.self) { try AsyncServer(host: "127.0.0.1", port: 0, backlog: -1) }
        #expect(error?.code == EINVAL)
    } }

    @Test func reusePortLetsTwoServersShareAPort() async throws { try await withDescriptorCheck {
        let first = try AsyncServer(host: "127.0.0.1", port: 0, reusePort: true)
        let port = try #require(first.localAddress.port)
        let second = try AsyncServer(host: "127.0.0.1", port: port, reusePort: true)
        #expect(second.localAddress == first.localAddress)
        #expect(T.intOption(first.descriptor, SOL_SOCKET, SO_REUSEPORT) == 1)
        #expect(T.intOption(second.descriptor, SOL_SOCKET, SO_REUSEPORT) == 1)
        // The kernel spreads connections over both listeners; each connection reaches exactly one.
        let tags = try await withThrowingTaskGroup(of: Void.self) { group -> [UInt8] in
            for (server, tag) in [(first, UInt8(1)), (second, UInt8(2))] {
                group.addTask { try await server.serve { client in try await client.write([tag]) } }
            }
            var tags: [UInt8] = []
            for _ in 0..<32 {
                let client = try await T.connect(port)
                tags += try await client.read(exactly: 1)
                await client.close()
            }
            first.close()
            second.close()
            try await group.waitForAll()
            return tags
        }
        #expect(tags.count == 32)
        #expect(tags.contains(1) && tags.contains(2), "the kernel balanced 32 connections to one listener: \(tags)")
    } }

    @Test func secondBindWithoutReusePortThrowsAddressInUse() async throws { try await withDescriptorCheck {
        let first = try AsyncServer(host: "127.0.0.1", port: 0)
        let port = try #require(first.localAddress.port)
        let error = #expect(throws: SocketError.self) { try AsyncServer(host: "127.0.0.1", port: port) }
        #expect(error?.code == EADDRINUSE)
        #expect(error?.operation == "bind")
        #expect(error?.address == first.localAddress)
        #expect(error?.description.contains("127.0.0.1:\(port)") == true)
        // Asking for SO_REUSEPORT on the second socket only is not enough either.
        let again = #expect(throws: SocketError.self) { try AsyncServer(host: "127.0.0.1", port: port, reusePort: true) }
        #expect(again?.code == EADDRINUSE)
        first.close()
    } }

    @Test func dualStackServerAcceptsIPv4ClientsAsMappedAddresses() async throws { try await withDescriptorCheck {
        try #require(AsyncServer.hasDualStackIPv6)
        let server = try AsyncServer(host: "", port: 0, family: .ipv6, dualStackIPv6: true)
        #expect(server.localAddress.host == "::")
        #expect(T.intOption(server.descriptor, Int32(IPPROTO_IPV6), IPV6_V6ONLY) == 0)
        let port = try #require(server.localAddress.port)

        let v4 = try await T.connect(port)
        let accepted4 = try #require(try await server.accept())
        let remote4 = try await accepted4.remoteAddress
        #expect(remote4.host == "::ffff:127.0.0.1")
        #expect(remote4.isIPv4Mapped)
        let v4Port = try await v4.localAddress.port
        #expect(remote4.port == v4Port)

        let v6 = try await AsyncSocket.connect(to: SocketAddress(ipv6: "::1", port: port), timeout: .seconds(10))
        let accepted6 = try #require(try await server.accept())
        #expect(try await accepted6.remoteAddress.host == "::1")

        // The IPv4 side of the port belongs to this server too.
        let clash = #expect(throws: SocketError.self) { try AsyncServer(host: "", port: port, family: .ipv4) }
        #expect(clash?.code == EADDRINUSE)
        for socket in [v4, accepted4, v6, accepted6] { await socket.close() }
        server.close()
    } }

    @Test func dualStackNeedsFamilyIPv6() async throws { try await withDescriptorCheck {
        let error = #expect(throws: SocketError.self) { try AsyncServer(host: "", port: 0, family: .ipv4, dualStackIPv6: true) }
        #expect(error?.code == EINVAL)
        #expect(error?.detail?.contains("ipv6") == true)
        let unix = #expect(throws: SocketError.self) { try AsyncServer(host: "", port: 0, family: .unix, dualStackIPv6: true) }
        #expect(unix?.code == EINVAL)
        // An IPv4 host with an IPv6 family is a clear error as well.
        let mismatch = #expect(throws: SocketError.self) {
            try AsyncServer(host: "127.0.0.1", port: 0, family: .ipv6, dualStackIPv6: true)
        }
        #expect(mismatch?.code == EAFNOSUPPORT)
    } }

    @Test func ipv6WithoutDualStackSetsV6OnlyExplicitly() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "", port: 0, family: .ipv6)
        #expect(T.intOption(server.descriptor, Int32(IPPROTO_IPV6), IPV6_V6ONLY) == 1)
        let port = try #require(server.localAddress.port)
        // Linux defaults to dual-stack (net.ipv6.bindv6only = 0): only the explicit option keeps IPv4 out.
        let refused = await #expect(throws: SocketError.self) { try await T.connect(port) }
        #expect(refused?.code == ECONNREFUSED)
        // So the IPv4 side of the port is free for another server.
        let v4 = try AsyncServer(host: "", port: port, family: .ipv4)
        let client = try await T.connect(port)
        let accepted = try #require(try await v4.accept())
        #expect(try await accepted.localAddress.family == .ipv4)
        await client.close()
        await accepted.close()
        v4.close()
        server.close()
    } }

    @Test func unixFamilyIsRejected() async throws { try await withDescriptorCheck {
        let error = #expect(throws: SocketError.self) { try AsyncServer(host: "", port: 0, family: .unix) }
        #expect(error?.code == EINVAL)
        #expect(error?.detail?.contains("unixPath") == true)
    } }

    @Test func hostNamesResolveAndMismatchedFamiliesAreErrors() async throws { try await withDescriptorCheck {
        let named = try AsyncServer(host: "localhost", port: 0)
        #expect(named.localAddress.host == "127.0.0.1")
        named.close()
        let wrongFamily = #expect(throws: SocketError.self) { try AsyncServer(host: "::1", port: 0, family: .ipv4) }
        #expect(wrongFamily?.code == EAFNOSUPPORT)
        let nul = #expect(throws: SocketError.self) { try AsyncServer(host: "127.0.0.1\0", port: 0) }
        #expect(nul?.code == EINVAL)
    } }

    @Test func hasDualStackIPv6MatchesTheSocketOption() async throws { try await withDescriptorCheck {
        let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        var expected = false
        if fd >= 0 {
            var zero: Int32 = 0
            expected = setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &zero, socklen_t(MemoryLayout<Int32>.size)) == 0
            close(fd)
        }
        #expect(AsyncServer.hasDualStackIPv6 == expected)
        #if os(Linux)
        #expect(AsyncServer.hasDualStackIPv6, "Linux with IPv6 supports dual-stack sockets")
        #endif
    } }

    @Test func localAddressHasTheRealPort() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let port = try #require(server.localAddress.port)
        #expect(port != 0)
        let bound = try #require(SocketAddress.read { getsockname(server.descriptor, $0, $1) } ?? nil)
        #expect(bound == server.localAddress)
        let client = try await T.connect(port)
        let accepted = try #require(try await server.accept())
        #expect(try await accepted.localAddress == server.localAddress)
        await client.close()
        await accepted.close()
        server.close()
        // An explicit port is kept as asked.
        let again = try AsyncServer(host: "127.0.0.1", port: port)
        #expect(again.localAddress.port == port)
        again.close()
    } }

    // MARK: unix-domain servers

    @Test func unixServerServesAndRemovesItsFileOnClose() async throws { try await withDescriptorCheck {
        let path = T.temporarySocketPath()
        let server = try AsyncServer(unixPath: path)
        #expect(server.localAddress.unixPath == path)
        #expect(T.fileExists(path))
        async let served: Void = server.serve(handler: T.echo)
        let client = try await AsyncSocket.connect(to: SocketAddress(unixPath: path), timeout: .seconds(10))
        try await client.write("over unix")
        #expect(try await client.read(exactly: 9) == Array("over unix".utf8))
        await client.close()
        server.close()
        try await served
        #expect(!T.fileExists(path))
    } }

    @Test func unixPathTooLongIsAClearError() async throws { try await withDescriptorCheck {
        let path = "/tmp/" + String(repeating: "x", count: 200)
        let error = #expect(throws: SocketError.self) { try AsyncServer(unixPath: path) }
        #expect(error?.code == ENAMETOOLONG)
        #expect(error?.detail?.contains("limit") == true)
        let empty = #expect(throws: SocketError.self) { try AsyncServer(unixPath: "") }
        #expect(empty?.code == EINVAL)
    } }

    @Test func unixPathTakenIsAddressInUse() async throws { try await withDescriptorCheck {
        let path = T.temporarySocketPath()
        let first = try AsyncServer(unixPath: path)
        let error = #expect(throws: SocketError.self) { try AsyncServer(unixPath: path) }
        #expect(error?.code == EADDRINUSE)
        #expect(error?.address?.unixPath == path)
        // The failed attempt left the first server's file alone: it still takes clients.
        #expect(T.fileExists(path))
        let client = try await AsyncSocket.connect(to: SocketAddress(unixPath: path), timeout: .seconds(10))
        let accepted = try #require(try await first.accept())
        await client.close()
        await accepted.close()
        first.close()

        // A path taken by a regular file too.
        let file = T.temporarySocketPath()
        #expect(FileManager.default.createFile(atPath: file, contents: Data("x".utf8)))
        defer { unlink(file) }
        let onFile = #expect(throws: SocketError.self) { try AsyncServer(unixPath: file) }
        #expect(onFile?.code == EADDRINUSE)
        #expect(T.fileExists(file))
    } }

    @Test func droppedUnixServerRemovesItsFile() async throws { try await withDescriptorCheck {
        let path = T.temporarySocketPath()
        do {
            let server = try AsyncServer(unixPath: path)
            #expect(T.fileExists(server.localAddress.unixPath!))
        }
        #expect(await T.eventually { !T.fileExists(path) })
    } }
}

// MARK: - accepts

@Suite struct AcceptSequenceTests {
    @Test func yieldsConnectedClients() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let port = server.localAddress.port!
        var clients: [AsyncSocket] = []
        var seen: [UInt16] = []
        for _ in 0..<3 { clients.append(try await T.connect(port)) }
        for try await accepted in server.accepts {
            seen.append(try await accepted.remoteAddress.port!)
            try await accepted.write("hi")
            await accepted.close()
            if seen.count == 3 { break }
        }
        var expected: [UInt16] = []
        for client in clients {
            expected.append(try await client.localAddress.port!)
            #expect(try await client.read(exactly: 2) == Array("hi".utf8))
            await client.close()
        }
        #expect(seen.sorted() == expected.sorted())
        server.close()
    } }

    /// Backpressure: connections wait in the kernel's accept queue until the consumer asks for them.
    @Test func acceptsOnlyWhenAsked() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0, backlog: 16)
        let port = server.localAddress.port!
        var clients: [AsyncSocket] = []
        for _ in 0..<3 { clients.append(try await T.connect(port)) }
        let sequence = server.accepts
        var iterator = sequence.makeAsyncIterator()
        #expect(await T.eventually { T.acceptQueueLength(port: port) == 3 }, "queue: \(String(describing: T.acceptQueueLength(port: port)))")
        #expect(await server.listener.pendingAccepts == 0)
        let first = try #require(try await iterator.next())
        #expect(T.acceptQueueLength(port: port) == 2)
        let second = try #require(try await iterator.next())
        #expect(T.acceptQueueLength(port: port) == 1)
        for socket in clients + [first, second] { await socket.close() }
        server.close()
    } }

    @Test func closeEndsAPendingNextPromptlyAndLaterIterationsAtOnce() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let iterating = Task {
            var count = 0
            for try await client in server.accepts {
                count += 1
                await client.close()
            }
            return count
        }
        #expect(await T.eventually { await server.listener.pendingAccepts == 1 })
        let start = ContinuousClock.now
        server.close()
        let count = try await T.within(.seconds(10), "the pending next() after close()") { try await iterating.value }
        #expect(count == 0)
        #expect(ContinuousClock.now - start < .seconds(2), "close() took \(ContinuousClock.now - start) to end next()")
        #expect(server.isClosed)

        var iterator = server.accepts.makeAsyncIterator()
        #expect(try await iterator.next() == nil)
        #expect(try await iterator.next() == nil)
        #expect(try await server.accept() == nil)
        server.close() // twice: harmless
        #expect(server.isClosed)
        #expect(server.descriptor == -1)
    } }

    @Test func cancellingTheIteratingTaskEndsTheSequence() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let iterating = Task {
            for try await client in server.accepts { await client.close() }
            return "ended"
        }
        #expect(await T.eventually { await server.listener.pendingAccepts == 1 })
        iterating.cancel()
        #expect(try await T.within(.seconds(10), "the cancelled iteration") { try await iterating.value } == "ended")
        // The server itself is still open: a new iterator gets the next client.
        #expect(!server.isClosed)
        let client = try await T.connect(server.localAddress.port!)
        let accepted = try #require(try await server.accept())
        await client.close()
        await accepted.close()
        server.close()
    } }

    @Test func cancelledQueuedIteratorLeavesTheOthersAlone() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let first = Task { try await server.accept() }
        #expect(await T.eventually { await server.listener.pendingAccepts == 1 })
        let second = Task { try await server.accept() }
        #expect(await T.eventually { await server.listener.pendingAccepts == 2 })
        second.cancel() // queued behind `first`
        #expect(try await T.within(.seconds(10)) { try await second.value } == nil)
        let client = try await T.connect(server.localAddress.port!)
        let accepted = try #require(try await T.within(.seconds(10)) { try await first.value })
        await accepted.close()
        await client.close()
        server.close()
    } }

    /// Two iterators at once: they take turns in the order they asked (FIFO), each client goes to exactly one.
    @Test func concurrentIteratorsTakeTurnsFIFO() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let port = server.localAddress.port!
        let log = Locked<[(String, UInt8)]>([])
        @Sendable func iterate(_ name: String) async throws {
            for try await client in server.accepts {
                let index = try await client.read(exactly: 1)[0]
                log.withLock { $0.append((name, index)) }
                await client.close()
            }
        }
        let a = Task { try await iterate("A") }
        #expect(await T.eventually { await server.listener.pendingAccepts == 1 })
        let b = Task { try await iterate("B") }
        #expect(await T.eventually { await server.listener.pendingAccepts == 2 })
        let count = 10
        for index in 0..<count {
            let client = try await T.connect(port)
            try await client.write([UInt8(index)])
            // Wait until the client was taken and its iterator is back in the queue.
            #expect(await T.eventually {
                guard log.withLock({ $0.count }) == index + 1 else { return false }
                return await server.listener.pendingAccepts == 2
            })
            await client.close()
        }
        server.close()
        try await a.value
        try await b.value
        let entries = log.withLock { $0 }
        #expect(entries.map(\.1).sorted() == (0..<count).map { UInt8($0) }, "each client exactly once")
        #expect(entries.map(\.0) == (0..<count).map { $0 % 2 == 0 ? "A" : "B" }, "turns: \(entries.map(\.0))")
    } }
}

// MARK: - serve

@Suite struct ServeTests {
    private struct HandlerFailure: Error {}

    @Test func handlersRunConcurrentlyInChildTasks() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let started = Locked(0)
        async let served: Void = server.serve { client in
            started.withLock { $0 += 1 }
            try await T.echo(client)
        }
        let idle = try await T.connect(server.localAddress.port!)
        #expect(await T.eventually { started.withLock { $0 } == 1 })
        // The first handler is blocked reading from `idle`; the second client is served anyway.
        let busy = try await T.connect(server.localAddress.port!)
        try await busy.write("ping")
        #expect(try await busy.read(exactly: 4) == Array("ping".utf8))
        await busy.close()
        await idle.close()
        server.close()
        try await served
    } }

    @Test func aFailingHandlerDoesNotStopTheOthers() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let errors = Locked<[any Error]>([])
        async let served: Void = server.serve(onError: { error, _ in errors.withLock { $0.append(error) } }) { client in
            let first = try await client.read(exactly: 4)
            if first == Array("fail".utf8) { throw HandlerFailure() }
            try await client.write(first)
            try await T.echo(client)
        }
        let port = server.localAddress.port!
        let healthy = try await T.connect(port)
        try await healthy.write("good")
        #expect(try await healthy.read(exactly: 4) == Array("good".utf8))

        let failing = try await T.connect(port)
        try await failing.write("fail")
        #expect(try await failing.read(upTo: 10) == [], "the failed handler's client is closed")
        await failing.close()

        // The handler that was running before goes on, and new clients are still served.
        try await healthy.write("more")
        #expect(try await healthy.read(exactly: 4) == Array("more".utf8))
        let later = try await T.connect(port)
        try await later.write("late")
        #expect(try await later.read(exactly: 4) == Array("late".utf8))
        await later.close()
        await healthy.close()
        server.close()
        try await served
        let reported = errors.withLock { $0 }
        #expect(reported.count == 1)
        #expect(reported.first is HandlerFailure)
    } }

    @Test func cancellationStopsAcceptingCancelsHandlersAndWaitsForThem() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let port = server.localAddress.port!
        let started = Locked(0)
        let cancelled = Locked(0)
        let finished = Locked(0)
        let reported = Locked(0)
        let serving = Task {
            try await server.serve(onError: { _, _ in reported.withLock { $0 += 1 } }) { client in
                started.withLock { $0 += 1 }
                do {
                    _ = try await client.read(upTo: 10)
                } catch is CancellationError {
                    cancelled.withLock { $0 += 1 }
                    // Slow clean-up that cancellation cannot cut short: serve must still wait for it.
                    await withCheckedContinuation { continuation in
                        DispatchQueue.global().asyncAfter(deadline: .now() + 0.2) { continuation.resume() }
                    }
                    finished.withLock { $0 += 1 }
                    throw CancellationError()
                }
            }
        }
        var clients: [AsyncSocket] = []
        for _ in 0..<3 { clients.append(try await T.connect(port)) }
        #expect(await T.eventually { started.withLock { $0 } == 3 })
        serving.cancel()
        try await T.within(.seconds(20), "serve after cancellation") { try await serving.value }
        #expect(cancelled.withLock { $0 } == 3)
        #expect(finished.withLock { $0 } == 3, "serve returned before its handlers finished")
        #expect(reported.withLock { $0 } == 0, "cancellation is not reported as a handler error")
        for client in clients {
            #expect(try await client.read(upTo: 10) == [], "each client was closed")
            await client.close()
        }
        // No longer accepting: a new client stays in the kernel's queue. The server itself stays open.
        #expect(!server.isClosed)
        #expect(await server.listener.pendingAccepts == 0)
        let late = try await T.connect(port)
        #expect(await T.eventually { T.acceptQueueLength(port: port) == 1 })
        await late.close()
        server.close()
    } }

    @Test func closeMakesServeReturn() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let started = Locked(0)
        let finished = Locked(0)
        let serving = Task {
            try await server.serve { client in
                started.withLock { $0 += 1 }
                defer { finished.withLock { $0 += 1 } }
                try await T.echo(client)
            }
        }
        let a = try await T.connect(server.localAddress.port!)
        let b = try await T.connect(server.localAddress.port!)
        #expect(await T.eventually { started.withLock { $0 } == 2 })
        server.close()
        try await T.within(.seconds(20), "serve after close()") { try await serving.value }
        #expect(finished.withLock { $0 } == 2)
        #expect(try await a.read(upTo: 1) == [])
        #expect(try await b.read(upTo: 1) == [])
        await a.close()
        await b.close()
    } }

    @Test func idleTimeoutClosesIdleClientsOnly() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let errors = Locked<[SocketError]>([])
        async let served: Void = server.serve(idleTimeout: .seconds(2), onError: { error, _ in
            if let error = error as? SocketError { errors.withLock { $0.append(error) } }
        }, handler: T.echo)
        let port = server.localAddress.port!
        let idle = try await T.connect(port)
        let active = try await T.connect(port)
        let start = ContinuousClock.now
        // The active client talks every 150 ms, for longer than the idle timeout in total.
        for round in 0..<16 {
            try await active.write([UInt8(round)])
            #expect(try await active.read(exactly: 1) == [UInt8(round)])
            try await Task.sleep(for: .milliseconds(150))
        }
        #expect(try await T.within(.seconds(20)) { try await idle.read(upTo: 10) } == [], "the idle client was closed")
        let idleFor = ContinuousClock.now - start
        #expect(idleFor >= .seconds(2))
        try await active.write("x")
        #expect(try await active.read(exactly: 1) == Array("x".utf8), "the active client is still served")
        await idle.close()
        await active.close()
        server.close()
        try await served
        let timeouts = errors.withLock { $0 }
        #expect(timeouts.count == 1)
        #expect(timeouts.first?.isTimeout == true)
    } }

    @Test func twoHundredConcurrentClientsEchoThroughOneServer() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let port = server.localAddress.port!
        let handlers = Locked(0)
        async let served: Void = server.serve { client in
            handlers.withLock { $0 += 1 }
            try await T.echo(client)
        }
        let clients = 200, rounds = 5, size = 1024
        try await T.within(.seconds(240), "200 clients") {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<clients {
                    group.addTask {
                        let client = try await T.connect(port)
                        for round in 0..<rounds {
                            let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ index &+ round) }
                            try await client.write(payload)
                            let echoed = try await client.read(exactly: size)
                            #expect(echoed == payload, "client \(index) round \(round)")
                        }
                        await client.close()
                    }
                }
                try await group.waitForAll()
            }
        }
        #expect(handlers.withLock { $0 } == clients)
        server.close()
        try await served
    } }
}
