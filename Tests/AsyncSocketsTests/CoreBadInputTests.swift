#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
@testable import AsyncSockets

/// Bad input gets a clear ``SocketError`` naming the operation and the value, never a crash.
@Suite("Bad input (core API)") struct CoreBadInputTests {
    @Test("invalid numeric IPv4 addresses", arguments: ["1.2.3", "256.1.1.1", "", "1.2.3.4.5", "::1", "localhost", " 1.2.3.4"])
    func badIPv4(_ text: String) throws {
        let error = #expect(throws: SocketError.self) { try SocketAddress(ipv4: text, port: 80) }
        #expect(error?.code == EINVAL)
        #expect(error?.operation == "SocketAddress(ipv4:)")
        #expect(error?.description == "SocketAddress(ipv4:) failed: Invalid argument (EINVAL): \"\(text)\" is not a numeric IPv4 address")
    }

    @Test("invalid numeric IPv6 addresses", arguments: ["garbage", "1::2::3", "12345::", ":::", "127.0.0.1", "fe80::1%"])
    func badIPv6(_ text: String) throws {
        let error = #expect(throws: SocketError.self) { try SocketAddress(ipv6: text, port: 80) }
        #expect(error?.code == EINVAL)
        #expect(error?.operation == "SocketAddress(ipv6:)")
        #expect(error?.description.contains("\"\(text)\"") == true, "\(String(describing: error))")
    }

    @Test("pinned descriptions of address errors")
    func pinnedAddressDescriptions() {
        #expect(#expect(throws: SocketError.self) { try SocketAddress(ipv4: "1.2.3", port: 1) }?.description
                == "SocketAddress(ipv4:) failed: Invalid argument (EINVAL): \"1.2.3\" is not a numeric IPv4 address")
        #expect(#expect(throws: SocketError.self) { try SocketAddress(ipv6: "garbage", port: 1) }?.description
                == "SocketAddress(ipv6:) failed: Invalid argument (EINVAL): \"garbage\" is not a numeric IPv6 address")
        #expect(#expect(throws: SocketError.self) { try SocketAddress(ipv6: "fe80::1%nosuchif0", port: 1) }?.description
                == "SocketAddress(ipv6:) failed: Invalid argument (EINVAL): unknown interface \"nosuchif0\" in \"fe80::1%nosuchif0\"")
        #expect(#expect(throws: SocketError.self) { try SocketAddress(numericHost: "example.com", port: 1) }?.code == EINVAL)
    }

    @Test("a NUL byte in a host or path is refused, not truncated")
    func nulBytes() {
        let v4 = #expect(throws: SocketError.self) { try SocketAddress(ipv4: "127.0.0.1\0.evil", port: 80) }
        #expect(v4?.code == EINVAL)
        #expect(v4?.description == "SocketAddress(ipv4:) failed: Invalid argument (EINVAL): the string contains a NUL byte: \"127.0.0.1\\0.evil\"")
        let v6 = #expect(throws: SocketError.self) { try SocketAddress(ipv6: "::1\0", port: 80) }
        #expect(v6?.code == EINVAL)
        #expect(v6?.operation == "SocketAddress(ipv6:)")
        let unix = #expect(throws: SocketError.self) { try SocketAddress(unixPath: "/tmp/a\0b") }
        #expect(unix?.code == EINVAL)
        #expect(unix?.operation == "SocketAddress(unixPath:)")
    }

    @Test("connect(to: Endpoint) with a NUL byte in the host throws before any lookup")
    func nulInEndpointHost() async throws { try await withDescriptorCheck {
        let error = await #expect(throws: SocketError.self) {
            _ = try await AsyncSocket.connect(to: Endpoint(host: "127.0.0.1\0example.com", port: 80))
        }
        #expect(error?.code == EINVAL)
        #expect(error?.operation == "connect")
        #expect(error?.description == "connect failed: Invalid argument (EINVAL): the host contains a NUL byte: \"127.0.0.1\\0example.com\"")
    } }

    @Test("unix paths: empty, and one byte longer than sun_path allows")
    func unixPaths() throws {
        let limit = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1   // 107 on Linux
        let fits = "/tmp/" + String(repeating: "p", count: limit - 5)
        #expect(try SocketAddress(unixPath: fits).unixPath == fits)
        let tooLong = fits + "x"
        let error = #expect(throws: SocketError.self) { try SocketAddress(unixPath: tooLong) }
        #expect(error?.code == ENAMETOOLONG)
        #expect(error?.operation == "SocketAddress(unixPath:)")
        #expect(error?.description == "SocketAddress(unixPath:) failed: File name too long (ENAMETOOLONG): the path is \(limit + 1) bytes long, the limit is \(limit): \"\(tooLong)\"")
        let empty = #expect(throws: SocketError.self) { try SocketAddress(unixPath: "") }
        #expect(empty?.code == EINVAL)
        #expect(empty?.description == "SocketAddress(unixPath:) failed: Invalid argument (EINVAL): the path is empty")
        // The server's initializer validates the same way (and so opens nothing).
        #expect(#expect(throws: SocketError.self) { try AsyncServer(unixPath: tooLong) }?.code == ENAMETOOLONG)
    }

    @Test("read counts: zero and negative are refused naming the call and the value")
    func readCounts() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        for count in [0, -1, Int.min] {
            let error = await #expect(throws: SocketError.self) { try await a.read(upTo: count) }
            #expect(error?.code == EINVAL)
            #expect(error?.description == "read(upTo:) failed: Invalid argument (EINVAL): maxBytes must be positive, got \(count)")
            var buffer: [UInt8] = [1]
            let into = await #expect(throws: SocketError.self) { try await a.read(into: &buffer, upTo: count) }
            #expect(into?.description == "read(into:upTo:) failed: Invalid argument (EINVAL): maxBytes must be positive, got \(count)")
            #expect(buffer == [1])
        }
        let negative = await #expect(throws: SocketError.self) { try await a.read(exactly: -1) }
        #expect(negative?.description == "read(exactly:) failed: Invalid argument (EINVAL): count must not be negative, got -1")
        #expect(try await a.read(exactly: 0) == [], "zero bytes exactly is a valid, empty read")

        // None of that consumed data or broke the socket.
        try await b.write([5])
        #expect(try await a.read(upTo: 10) == [5])
        await a.close()
        await b.close()
    } }

    @Test("a bad count on a TCP socket names the peer")
    func readCountNamesPeer() async throws { try await withDescriptorCheck {
        let (client, server) = try await CoreFixtures.tcpPair()
        let peer = try await client.remoteAddress
        let error = await #expect(throws: SocketError.self) { try await client.read(upTo: 0) }
        #expect(error?.address == peer)
        #expect(error?.description == "read(upTo:) from \(peer) failed: Invalid argument (EINVAL): maxBytes must be positive, got 0")
        await client.close()
        await server.close()
    } }

    @Test("connection refused: the pinned description, by address and by endpoint")
    func connectionRefused() async throws { try await withDescriptorCheck {
        // A port that was just bound and released: nothing listens there.
        let probe = try AsyncServer(host: "127.0.0.1", port: 0)
        let port = try #require(probe.localAddress.port)
        probe.close()

        let address = try SocketAddress(ipv4: "127.0.0.1", port: port)
        let byAddress = await #expect(throws: SocketError.self) { _ = try await AsyncSocket.connect(to: address) }
        #expect(byAddress?.code == ECONNREFUSED)
        #expect(byAddress?.address == address)
        #expect(byAddress?.description == "connect to 127.0.0.1:\(port) failed: Connection refused (ECONNREFUSED)")

        let byEndpoint = await #expect(throws: SocketError.self) {
            _ = try await AsyncSocket.connect(to: Endpoint(host: "127.0.0.1", port: port))
        }
        #expect(byEndpoint?.description == "connect to 127.0.0.1:\(port) failed: Connection refused (ECONNREFUSED)")

        let v6 = try SocketAddress(ipv6: "::1", port: port)
        let refused6 = await #expect(throws: SocketError.self) { _ = try await AsyncSocket.connect(to: v6) }
        #expect(refused6?.description == "connect to [::1]:\(port) failed: Connection refused (ECONNREFUSED)")
    } }

    @Test("connect to a unix path where nothing listens names the path")
    func unixConnectMissing() async throws { try await withDescriptorCheck {
        let address = try SocketAddress(unixPath: "/tmp/asyncsockets-core-missing-\(getpid()).sock")
        let error = await #expect(throws: SocketError.self) { _ = try await AsyncSocket.connect(to: address) }
        #expect(error?.code == ENOENT)
        #expect(error?.description == "connect to \(address) failed: No such file or directory (ENOENT)")
    } }
}
