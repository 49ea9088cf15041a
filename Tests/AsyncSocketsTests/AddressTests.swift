#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
@testable import AsyncSockets

/// ``SocketAddress`` parsing and printing, ``Endpoint``, and the addresses of connected sockets.
@Suite("Addresses") struct AddressTests {
    @Test("IPv4: host, port, family, description")
    func ipv4() throws {
        let address = try SocketAddress(ipv4: "127.0.0.1", port: 8080)
        #expect(address.family == .ipv4)
        #expect(address.host == "127.0.0.1")
        #expect(address.port == 8080)
        #expect(address.unixPath == nil)
        #expect(address.isIPv4Mapped == false)
        #expect(address.description == "127.0.0.1:8080")
        #expect(try SocketAddress(ipv4: "0.0.0.0", port: 0).description == "0.0.0.0:0")
        #expect(try SocketAddress(ipv4: "255.255.255.255", port: 65535).description == "255.255.255.255:65535")
        // Equality and hashing follow the address and the port.
        #expect(address == (try SocketAddress(ipv4: "127.0.0.1", port: 8080)))
        #expect(address != (try SocketAddress(ipv4: "127.0.0.1", port: 8081)))
        #expect(address != (try SocketAddress(ipv4: "127.0.0.2", port: 8080)))
        #expect(Set([address, try SocketAddress(ipv4: "127.0.0.1", port: 8080)]).count == 1)
    }

    @Test("IPv6: canonical host text, brackets in the description, scope ids")
    func ipv6() throws {
        let loopback = try SocketAddress(ipv6: "::1", port: 443)
        #expect(loopback.family == .ipv6)
        #expect(loopback.host == "::1")
        #expect(loopback.port == 443)
        #expect(loopback.description == "[::1]:443")
        #expect(loopback.isIPv4Mapped == false)
        // The host is printed in canonical (RFC 5952) form whatever form it was given in.
        #expect(try SocketAddress(ipv6: "2001:0DB8:0000:0000:0000:0000:0000:0001", port: 1).host == "2001:db8::1")
        #expect(try SocketAddress(ipv6: "[::1]", port: 1) == loopback.with(port: 1))
        let scoped = try SocketAddress(ipv6: "fe80::1%1", port: 9)
        #expect(scoped.host == "fe80::1%1")
        #expect(scoped.description == "[fe80::1%1]:9")
        #expect(scoped != (try SocketAddress(ipv6: "fe80::1", port: 9)))
        let byName = try SocketAddress(ipv6: "fe80::1%lo", port: 9)
        #expect(byName.host == "fe80::1%\(if_nametoindex("lo"))")
        #expect(loopback != (try SocketAddress(ipv4: "127.0.0.1", port: 443)))
    }

    @Test("IPv4-mapped IPv6")
    func ipv4Mapped() throws {
        let mapped = try SocketAddress(ipv6: "::ffff:127.0.0.3", port: 80)
        #expect(mapped.family == .ipv6)
        #expect(mapped.host == "::ffff:127.0.0.3")
        #expect(mapped.isIPv4Mapped)
        #expect(mapped.description == "[::ffff:127.0.0.3]:80")
        #expect(try SocketAddress(ipv6: "::ffff:7f00:3", port: 80) == mapped)
        #expect(mapped != (try SocketAddress(ipv4: "127.0.0.3", port: 80)))
        #expect(try SocketAddress(ipv6: "::127.0.0.3", port: 80).isIPv4Mapped == false)   // IPv4-compatible, not mapped
    }

    @Test("unix paths")
    func unix() throws {
        let address = try SocketAddress(unixPath: "/tmp/x.sock")
        #expect(address.family == .unix)
        #expect(address.host == nil)
        #expect(address.port == nil)
        #expect(address.unixPath == "/tmp/x.sock")
        #expect(address.description == "unix:/tmp/x.sock")
        #expect(try SocketAddress(unixPath: "relative/path").unixPath == "relative/path")
        #expect(try SocketAddress(unixPath: "/tmp/ünï").unixPath == "/tmp/ünï")
    }

    @Test("numericHost picks the family; Endpoint prints brackets for IPv6")
    func numericHostAndEndpoint() throws {
        #expect(try SocketAddress(numericHost: "10.0.0.1", port: 5).family == .ipv4)
        #expect(try SocketAddress(numericHost: "::1", port: 5).family == .ipv6)
        #expect(Endpoint(host: "example.com", port: 80).description == "example.com:80")
        #expect(Endpoint(host: "::1", port: 80).description == "[::1]:80")
        #expect(Endpoint(host: "127.0.0.1", port: 1) == Endpoint(host: "127.0.0.1", port: 1))
        #expect(SocketFamily.ipv4.description == "IPv4")
        #expect(SocketFamily.ipv6.description == "IPv6")
        #expect(SocketFamily.unix.description == "unix")
    }

    @Test("a sockaddr round trip keeps every field", arguments: ["127.0.0.1", "10.1.2.3", "::1", "::ffff:127.0.0.3", "2001:db8::42", "fe80::1%1"])
    func sockaddrRoundTrip(_ host: String) throws {
        let address = try SocketAddress(numericHost: host, port: 54321)
        let back = address.withSockAddr { pointer, length in SocketAddress(sockaddr: UnsafeRawPointer(pointer), length: length) }
        #expect(back == address)
    }

    @Test("localAddress and remoteAddress of connected TCP sockets", arguments: ["127.0.0.1", "::1"])
    func tcpAddresses(_ host: String) async throws { try await withDescriptorCheck {
        let (client, server) = try await CoreFixtures.tcpPair(host: host)
        let clientLocal = try await client.localAddress
        let clientRemote = try await client.remoteAddress
        let serverLocal = try await server.localAddress
        let serverRemote = try await server.remoteAddress
        #expect(clientLocal == serverRemote)
        #expect(clientRemote == serverLocal)
        #expect(clientLocal.host == host)
        #expect(clientRemote.host == host)
        #expect(clientLocal.family == (host.contains(":") ? .ipv6 : .ipv4))
        #expect(clientLocal.port != 0 && clientLocal.port != clientRemote.port)
        await client.close()
        await server.close()
    } }

    @Test("addresses of a socketpair and of a unix-path connection")
    func unixAddresses() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        #expect(try await a.localAddress.family == .unix)
        #expect(try await a.localAddress.unixPath == "")              // socketpair ends are unnamed
        #expect(try await b.remoteAddress.unixPath == "")
        await a.close()
        await b.close()

        let path = "/tmp/asyncsockets-core-\(getpid())-addr.sock"
        unlink(path)
        let server = try AsyncServer(unixPath: path)
        #expect(server.localAddress.unixPath == path)
        let client = try await AsyncSocket.connect(to: try SocketAddress(unixPath: path))
        let accepted = try #require(try await server.accept())
        #expect(try await client.remoteAddress.unixPath == path)
        #expect(try await accepted.localAddress.unixPath == path)
        #expect(try await client.localAddress.unixPath == "")         // the client side is unnamed
        try await client.write("over a path")
        #expect(try await accepted.read(exactly: 11) == Array("over a path".utf8))
        await client.close()
        await accepted.close()
        server.close()
        #expect(access(path, F_OK) != 0, "close() removed the socket file")
    } }

    @Test("an IPv4 client of a dual-stack server is seen as ::ffff:127.0.0.3",
          .enabled(if: AsyncServer.hasDualStackIPv6))
    func mappedPeer() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "::", port: 0, family: .ipv6, dualStackIPv6: true)
        let port = try #require(server.localAddress.port)
        // From 127.0.0.3 (a source address; the kernel would pick 127.0.0.1) to 127.0.0.4.
        let client = try await AsyncSocket.connect(to: Endpoint(host: "127.0.0.4", port: port),
                                                   sourceAddress: Endpoint(host: "127.0.0.3", port: 0))
        let accepted = try #require(try await server.accept())
        let peer = try await accepted.remoteAddress
        #expect(peer.family == .ipv6)
        #expect(peer.isIPv4Mapped)
        #expect(peer.host == "::ffff:127.0.0.3")
        #expect(peer.description == "[::ffff:127.0.0.3]:\(try await client.localAddress.port!)")
        #expect(try await client.localAddress.host == "127.0.0.3")
        #expect(try await client.remoteAddress == (try SocketAddress(ipv4: "127.0.0.4", port: port)))
        #expect(try await accepted.localAddress.host == "::ffff:127.0.0.4")
        await client.close()
        await accepted.close()
        server.close()
    } }
}

extension SocketAddress {
    /// The same address with another port (test helper).
    fileprivate func with(port: UInt16) -> SocketAddress {
        switch storage {
        case .ipv4(let raw, _): return SocketAddress(storage: .ipv4(raw, port: port))
        case .ipv6(let high, let low, _, let scope): return SocketAddress(storage: .ipv6(high, low, port: port, scopeID: scope))
        case .unix: return self
        }
    }
}
