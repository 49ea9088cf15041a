import Foundation
import Testing
@testable import AsyncSockets

/// Bad input on the public entry points, and every method after close(): a clear ``SocketError`` (the right
/// errno, the operation named), never a crash.
@Suite struct BadInputTests {
    @Test func sizes() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        for size in [0, -1, Int.min] {
            expectSocketError(await caught { _ = try await a.read(upTo: size) }, [EINVAL], "read(upTo: \(size))")
            var buffer: [UInt8] = []
            expectSocketError(await caught { _ = try await a.read(into: &buffer, upTo: size) }, [EINVAL], "read(into:upTo: \(size))")
            expectSocketError(await caught { _ = try await a.rawOption(level: SOL_SOCKET, name: SO_TYPE, capacity: size) }, [EINVAL])
        }
        expectSocketError(await caught { _ = try await a.read(exactly: -1) }, [EINVAL])
        expectSocketError(await caught { _ = try await a.read(exactly: Int.min) }, [EINVAL])
        #expect(try await a.read(exactly: 0) == [])
        try await a.write([UInt8]())  // empty write: nothing to do, no error
        // Huge sizes are an upper bound, not an allocation: the read returns what is there.
        try await b.write([1, 2, 3])
        #expect(try await a.read(upTo: Int.max) == [1, 2, 3])
        try await b.write([4])
        var buffer: [UInt8] = []
        #expect(try await a.read(into: &buffer, upTo: Int.max) == 1)
        #expect(buffer == [4])
        // read(exactly:) with a huge count grows as bytes arrive and reports what came before the end.
        try await b.write([5, 6, 7])
        try await b.shutdown(.write)
        let incomplete = await caught { _ = try await a.read(exactly: Int.max) }
        #expect((incomplete as? IncompleteReadError)?.partial == [5, 6, 7], "\(String(describing: incomplete))")
        // An error message names the bad value.
        if let error = await caught({ _ = try await a.read(upTo: -5) }) as? SocketError {
            #expect(error.description.contains("-5"), "\(error)")
        }
        await a.close()
        await b.close()
    } }

    @Test func options() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        // An option that does not exist at that level.
        expectSocketError(await caught { try await a.setOption(SocketOption<Int>(level: SOL_SOCKET, name: 9999), 1) }, [ENOPROTOOPT])
        expectSocketError(await caught { _ = try await a.option(SocketOption<Int>(level: SOL_SOCKET, name: 9999)) }, [ENOPROTOOPT])
        // A level that does not exist.
        expectSocketError(await caught { try await a.setRawOption(level: 12345, name: 1, bytes: [0, 0, 0, 0]) },
                          [ENOPROTOOPT, EOPNOTSUPP, EINVAL])
        // TCP options on a unix socket.
        expectSocketError(await caught { try await a.setOption(.tcpNoDelay, true) }, [EOPNOTSUPP, ENOPROTOOPT])
        // Too few bytes for the option's type.
        expectSocketError(await caught { try await a.setRawOption(level: SOL_SOCKET, name: SO_LINGER, bytes: [1]) }, [EINVAL])
        expectSocketError(await caught { try await a.setRawOption(level: SOL_SOCKET, name: SO_LINGER, bytes: []) }, [EINVAL])
        // The error names the option.
        if let error = await caught({ try await a.setOption(SocketOption<Int>(level: SOL_SOCKET, name: 9999), 1) }) as? SocketError {
            #expect(error.operation == "setsockopt")
            #expect(error.detail?.contains("9999") == true, "\(error)")
        }
        // Extreme values are clamped to a C int, not trapped on.
        try await a.setOption(.receiveBufferSize, Int.max / 4)
        try await a.setOption(.sendBufferSize, 1)
        #expect(try await a.option(.sendBufferSize) > 0)
        // The socket still works after all that.
        try await b.write([9])
        #expect(try await a.read(upTo: 1) == [9])
        await a.close()
        await b.close()
    } }

    @Test func timeouts() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        for timeout in [Duration.zero, .seconds(-5), .nanoseconds(1)] {
            await a.setTimeout(timeout)
            expectSocketError(await caught { _ = try await a.read(upTo: 1) }, [ETIMEDOUT], "timeout \(timeout)")
        }
        await a.setTimeout(.seconds(Int64.max))  // huge: no overflow trap
        try await b.write([1])
        #expect(try await a.read(upTo: 1) == [1])
        await a.close()
        await b.close()
    } }

    @Test func addressesAndPorts() async throws { try await withDescriptorCheck {
        // Port 0 is not a destination.
        expectSocketError(await caught { _ = try await AsyncSocket.connect(to: SocketAddress(ipv4: "127.0.0.1", port: 0)) },
                          [ECONNREFUSED, EADDRNOTAVAIL, EINVAL])
        expectSocketError(await caught { _ = try await AsyncSocket.connect(to: Endpoint(host: "127.0.0.1", port: 0)) },
                          [ECONNREFUSED, EADDRNOTAVAIL, EINVAL])
        // Malformed numeric addresses.
        for text in ["", "256.0.0.1", "1.2.3", "::1", "127.0.0.1\0", "localhost"] {
            expectSocketError(await caught { _ = try SocketAddress(ipv4: text, port: 80) }, [EINVAL], "ipv4 \(text.debugDescription)")
        }
        for text in ["", ":::", "1.2.3.4", "fe80::1%no-such-interface", "::1\0"] {
            expectSocketError(await caught { _ = try SocketAddress(ipv6: text, port: 80) }, [EINVAL], "ipv6 \(text.debugDescription)")
        }
        expectSocketError(await caught { _ = try SocketAddress(unixPath: "") }, [EINVAL])
        expectSocketError(await caught { _ = try SocketAddress(unixPath: "a\0b") }, [EINVAL])
        expectSocketError(await caught { _ = try SocketAddress(unixPath: String(repeating: "x", count: 200)) }, [ENAMETOOLONG])
        // Hosts that cannot be looked up.
        expectSocketError(await caught { _ = try await AsyncSocket.connect(to: Endpoint(host: "a\0b", port: 80)) }, [EINVAL])
        let unresolvable = await caught { _ = try await AsyncSocket.connect(to: Endpoint(host: "no-such-host.invalid", port: 80)) }
        #expect((unresolvable as? SocketError)?.operation == "resolve", "\(String(describing: unresolvable))")
        // Connecting to a unix path nobody listens on.
        expectSocketError(await caught { _ = try await AsyncSocket.connect(to: SocketAddress(unixPath: "/tmp/as-no-such-\(getpid()).sock")) },
                          [ENOENT, ECONNREFUSED])
        // A source address of the wrong family or not local.
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let port = server.localAddress.port!
        expectSocketError(await caught { _ = try await AsyncSocket.connect(to: Endpoint(host: "127.0.0.1", port: port),
                                                                          sourceAddress: Endpoint(host: "::1", port: 0)) },
                          [EAFNOSUPPORT])
        expectSocketError(await caught { _ = try await AsyncSocket.connect(to: Endpoint(host: "127.0.0.1", port: port),
                                                                          sourceAddress: Endpoint(host: "192.0.2.1", port: 0)) },
                          [EADDRNOTAVAIL])
        expectSocketError(await caught { _ = try await AsyncSocket.connect(to: Endpoint(host: "127.0.0.1", port: port),
                                                                          sourceAddress: Endpoint(host: "not-numeric", port: 0)) },
                          [EINVAL])
        server.close()
    } }

    @Test func serverArguments() async throws { try await withDescriptorCheck {
        expectSocketError(await caught { _ = try AsyncServer(host: "127.0.0.1", port: 0, backlog: -1) }, [EINVAL])
        expectSocketError(await caught { _ = try AsyncServer(host: "127.0.0.1", port: 0, family: .unix) }, [EINVAL])
        expectSocketError(await caught { _ = try AsyncServer(host: "127.0.0.1", port: 0, dualStackIPv6: true) }, [EINVAL])
        expectSocketError(await caught { _ = try AsyncServer(host: "::1", port: 0, family: .ipv4) }, [EAFNOSUPPORT])
        expectSocketError(await caught { _ = try AsyncServer(host: "127.0.0.1", port: 0, family: .ipv6) }, [EAFNOSUPPORT])
        expectSocketError(await caught { _ = try AsyncServer(host: "a\0b", port: 0) }, [EINVAL])
        expectSocketError(await caught { _ = try AsyncServer(host: "192.0.2.1", port: 0) }, [EADDRNOTAVAIL])
        expectSocketError(await caught { _ = try AsyncServer(unixPath: "") }, [EINVAL])
        expectSocketError(await caught { _ = try AsyncServer(unixPath: "/no-such-directory-\(getpid())/s.sock") }, [ENOENT])
        // The port is taken (SO_REUSEADDR does not allow two listeners).
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let taken = await caught { _ = try AsyncServer(host: "127.0.0.1", port: server.localAddress.port!) }
        expectSocketError(taken, [EADDRINUSE])
        #expect((taken as? SocketError)?.address == server.localAddress)
        // A huge backlog is clamped by the kernel, not an error.
        let big = try AsyncServer(host: "127.0.0.1", port: 0, backlog: Int.max)
        big.close()
        server.close()
    } }

    @Test func everyMethodAfterClose() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        await a.close()
        await a.close()  // idempotent
        #expect(await a.isClosed)
        #expect(await a.descriptor == -1)
        var buffer: [UInt8] = []
        let calls: [(String, () async throws -> Void)] = [
            ("read(upTo:)", { _ = try await a.read(upTo: 1) }),
            ("read(into:upTo:)", { _ = try await a.read(into: &buffer, upTo: 1) }),
            ("read(exactly: 0)", { _ = try await a.read(exactly: 0) }),
            ("read(exactly: 5)", { _ = try await a.read(exactly: 5) }),
            ("write([])", { try await a.write([UInt8]()) }),
            ("write([1])", { try await a.write([1]) }),
            ("write(slice)", { try await a.write([1, 2, 3][1...]) }),
            ("write(String)", { try await a.write("x") }),
            ("shutdown(.write)", { try await a.shutdown(.write) }),
            ("shutdown(.both)", { try await a.shutdown(.both) }),
            ("localAddress", { _ = try await a.localAddress }),
            ("remoteAddress", { _ = try await a.remoteAddress }),
            ("setOption", { try await a.setOption(.keepAlive, true) }),
            ("option", { _ = try await a.option(.receiveBufferSize) }),
            ("setRawOption", { try await a.setRawOption(level: SOL_SOCKET, name: SO_LINGER, bytes: abortiveLingerBytes()) }),
            ("rawOption", { _ = try await a.rawOption(level: SOL_SOCKET, name: SO_TYPE, capacity: 4) }),
        ]
        for (name, call) in calls {
            expectSocketError(await caught(call), [EBADF], name)
        }
        await a.setTimeout(.seconds(1))  // no error: it only sets a property
        // The peer sees end of stream.
        #expect(try await b.read(upTo: 1) == [])
        await b.close()

        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        server.close()
        server.close()  // idempotent
        #expect(server.isClosed)
        #expect(try await server.accept() == nil)
        var iterator = server.accepts.makeAsyncIterator()
        #expect(try await iterator.next() == nil)
        try await withDeadline(10, "serve after close") { try await server.serve { _ in Issue.record("no client expected") } }
    } }
}
