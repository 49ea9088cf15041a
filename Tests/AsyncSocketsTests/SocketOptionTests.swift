#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
@testable import AsyncSockets

/// Socket options, the raw escape hatch, and the flags every descriptor is created with.
@Suite("Socket options and descriptors") struct SocketOptionTests {
    @Test("TCP_NODELAY is on by default on both ends of a TCP connection, and can be turned off")
    func tcpNoDelay() async throws { try await withDescriptorCheck {
        let (client, server) = try await CoreFixtures.tcpPair()
        #expect(try await client.option(.tcpNoDelay) == true)
        #expect(try await server.option(.tcpNoDelay) == true)
        try await client.setOption(.tcpNoDelay, false)
        #expect(try await client.option(.tcpNoDelay) == false)
        let (client6, server6) = try await CoreFixtures.tcpPair(host: "::1")
        #expect(try await client6.option(.tcpNoDelay) == true)
        #expect(try await server6.option(.tcpNoDelay) == true)
        for socket in [client, server, client6, server6] { await socket.close() }
    } }

    @Test("SO_KEEPALIVE and SO_REUSEADDR round trip")
    func booleanOptions() async throws { try await withDescriptorCheck {
        let (client, server) = try await CoreFixtures.tcpPair()
        #expect(try await client.option(.keepAlive) == false)
        try await client.setOption(.keepAlive, true)
        #expect(try await client.option(.keepAlive) == true)
        try await client.setOption(.reuseAddress, true)
        #expect(try await client.option(.reuseAddress) == true)
        try await client.setOption(.reuseAddress, false)
        #expect(try await client.option(.reuseAddress) == false)
        await client.close()
        await server.close()
    } }

    @Test("buffer sizes: set, read back at least what was set (Linux doubles it)")
    func bufferSizes() async throws { try await withDescriptorCheck {
        let (a, b) = try await CoreFixtures.tcpPair()
        try await a.setOption(.receiveBufferSize, 32 * 1024)
        try await a.setOption(.sendBufferSize, 48 * 1024)
        let receive = try await a.option(.receiveBufferSize)
        let send = try await a.option(.sendBufferSize)
        #expect(receive >= 32 * 1024 && receive <= 4 * 32 * 1024, "SO_RCVBUF \(receive)")
        #expect(send >= 48 * 1024 && send <= 4 * 48 * 1024, "SO_SNDBUF \(send)")
        // Data still flows with the small buffers.
        let data = CoreFixtures.pattern(count: 500_000)
        async let sent: Void = b.write(data)
        #expect(CoreFixtures.sameBytes(try await a.read(exactly: data.count), data))
        try await sent
        await a.close()
        await b.close()
    } }

    @Test("raw escape hatch: SO_LINGER {on, 0} set as bytes, read back, and close() then resets the connection")
    func rawLinger() async throws { try await withDescriptorCheck {
        let (client, server) = try await CoreFixtures.tcpPair()
        var value = linger(l_onoff: 1, l_linger: 0)
        let bytes = withUnsafeBytes(of: &value) { Array($0) }
        try await client.setRawOption(level: SOL_SOCKET, name: SO_LINGER, bytes: bytes)
        let back = try await client.rawOption(level: SOL_SOCKET, name: SO_LINGER, capacity: MemoryLayout<linger>.size)
        #expect(back.count == MemoryLayout<linger>.size)
        let parsed = back.withUnsafeBytes { $0.loadUnaligned(as: linger.self) }
        #expect(parsed.l_onoff == 1 && parsed.l_linger == 0)

        // Linger 0 means close() sends RST instead of FIN: the peer's read fails instead of seeing EOF.
        await client.close()
        let error = await #expect(throws: SocketError.self) { try await server.read(upTo: 10) }
        #expect(error?.code == ECONNRESET)
        #expect(error?.operation == "read")
        await server.close()
    } }

    @Test("typed options name themselves; custom integer options go through SocketOption(level:name:)")
    func customOptions() async throws { try await withDescriptorCheck {
        #expect(SocketOption<Bool>.tcpNoDelay.description == "TCP_NODELAY")
        #expect(SocketOption<Int>.receiveBufferSize.description == "SO_RCVBUF")
        #expect(SocketOption<Int>(level: SOL_SOCKET, name: SO_TYPE).description == "level \(SOL_SOCKET) option \(SO_TYPE)")
        let (a, b) = try AsyncSocket.pair()
        #expect(try await a.option(SocketOption<Int>(level: SOL_SOCKET, name: SO_TYPE)) == Int(SOCK_STREAM.rawValue))
        #expect(try await a.option(SocketOption<Int>(level: SOL_SOCKET, name: SO_DOMAIN)) == Int(AF_UNIX))
        await a.close()
        await b.close()
    } }

    @Test("bad options are a SocketError naming setsockopt/getsockopt and the option")
    func badOptions() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        // A TCP option on a unix-domain socket.
        let tcpOnUnix = await #expect(throws: SocketError.self) { try await a.setOption(.tcpNoDelay, true) }
        #expect(tcpOnUnix?.code == EOPNOTSUPP)
        #expect(tcpOnUnix?.description == "setsockopt failed: Operation not supported (EOPNOTSUPP): TCP_NODELAY")
        // An option that does not exist.
        let unknown = SocketOption<Int>(level: SOL_SOCKET, name: 9999)
        let set = await #expect(throws: SocketError.self) { try await a.setOption(unknown, 1) }
        #expect(set?.code == ENOPROTOOPT)
        #expect(set?.description == "setsockopt failed: Protocol not available (ENOPROTOOPT): level \(SOL_SOCKET) option 9999")
        let get = await #expect(throws: SocketError.self) { _ = try await a.option(unknown) }
        #expect(get?.code == ENOPROTOOPT)
        #expect(get?.operation == "getsockopt")
        // Raw: a value too short for the option, and a zero capacity.
        let short = await #expect(throws: SocketError.self) {
            try await a.setRawOption(level: SOL_SOCKET, name: SO_LINGER, bytes: [1])
        }
        #expect(short?.code == EINVAL)
        let zero = await #expect(throws: SocketError.self) { _ = try await a.rawOption(level: SOL_SOCKET, name: SO_TYPE, capacity: 0) }
        #expect(zero?.code == EINVAL)
        #expect(zero?.description == "getsockopt failed: Invalid argument (EINVAL): capacity must be positive, got 0")
        // The socket is fine afterwards.
        try await a.write([1])
        #expect(try await b.read(exactly: 1) == [1])
        await a.close()
        await b.close()
    } }

    @Test("every descriptor is O_NONBLOCK and FD_CLOEXEC: pairs, connected, accepted, listening, unix")
    func descriptorFlags() async throws { try await withDescriptorCheck {
        func check(_ fd: Int32, _ what: String, _ sourceLocation: SourceLocation = #_sourceLocation) {
            let flags = fcntl(fd, F_GETFL)
            let fdFlags = fcntl(fd, F_GETFD)
            #expect(flags != -1 && flags & O_NONBLOCK != 0, "\(what) is not O_NONBLOCK", sourceLocation: sourceLocation)
            #expect(fdFlags != -1 && fdFlags & FD_CLOEXEC != 0, "\(what) is not FD_CLOEXEC", sourceLocation: sourceLocation)
        }
        let (a, b) = try AsyncSocket.pair()
        check(await a.descriptor, "pair end 0")
        check(await b.descriptor, "pair end 1")

        for host in ["127.0.0.1", "::1"] {
            let server = try AsyncServer(host: host, port: 0, family: host.contains(":") ? .ipv6 : .ipv4)
            check(await server.listener.coreTestDescriptor(), "\(host) listener")
            let byAddress = try await AsyncSocket.connect(to: server.localAddress)
            let byEndpoint = try await AsyncSocket.connect(to: Endpoint(host: host, port: server.localAddress.port!))
            check(await byAddress.descriptor, "\(host) client by address")
            check(await byEndpoint.descriptor, "\(host) client by endpoint")
            for _ in 0..<2 {
                let accepted = try #require(try await server.accept())
                check(await accepted.descriptor, "\(host) accepted")
                await accepted.close()
            }
            await byAddress.close()
            await byEndpoint.close()
            server.close()
        }

        let path = "/tmp/asyncsockets-core-\(getpid())-flags.sock"
        unlink(path)
        let unixServer = try AsyncServer(unixPath: path)
        check(await unixServer.listener.coreTestDescriptor(), "unix listener")
        let unixClient = try await AsyncSocket.connect(to: try SocketAddress(unixPath: path))
        check(await unixClient.descriptor, "unix client")
        let unixAccepted = try #require(try await unixServer.accept())
        check(await unixAccepted.descriptor, "unix accepted")
        for socket in [a, b, unixClient, unixAccepted] { await socket.close() }
        unixServer.close()
    } }
}
