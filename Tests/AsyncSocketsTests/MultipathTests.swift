#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Testing
@testable import AsyncSockets

/// Multipath TCP: `multipath: true` on connect and on servers, the silent fallback to TCP, `isMultipath`.
/// Needs a kernel with MPTCP enabled (`net.mptcp.enabled = 1`); the tests say so when it is not.
@Suite("Multipath TCP") struct MultipathTests {
    /// Whether this kernel lets us create an MPTCP socket at all.
    static let kernelHasMPTCP: Bool = {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 262)
        if fd >= 0 { close(fd) }
        return fd >= 0
    }()

    /// Connects `client` to `server`, echoes one message and returns the accepted socket's `isMultipath`.
    static func exchange(_ client: AsyncSocket, _ server: AsyncServer) async throws -> Bool {
        let accepted = try #require(try await server.accept())
        try await client.write("ping\n")
        #expect(try await accepted.read(until: [10]) == Array("ping\n".utf8))
        try await accepted.write("pong\n")
        #expect(try await client.read(until: [10]) == Array("pong\n".utf8))
        let multipath = await accepted.isMultipath
        await accepted.close()
        return multipath
    }

    @Test("an MPTCP client and an MPTCP server both report isMultipath", .enabled(if: kernelHasMPTCP))
    func bothMultipath() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0, multipath: true)
        let client = try await AsyncSocket.connect(to: Endpoint(host: "127.0.0.1", port: server.localAddress.port!),
                                                   timeout: .seconds(10), multipath: true)
        #expect(await client.isMultipath)
        #expect(try await Self.exchange(client, server))
        await client.close()
        #expect(await client.isMultipath == false)
        server.close()
    } }

    @Test("an MPTCP client to a plain TCP server falls back to TCP and works")
    func clientFallsBack() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let client = try await AsyncSocket.connect(to: Endpoint(host: "127.0.0.1", port: server.localAddress.port!),
                                                   timeout: .seconds(10), multipath: true)
        #expect(await client.isMultipath == false)
        #expect(try await Self.exchange(client, server) == false)
        await client.close()
        server.close()
    } }

    @Test("a plain TCP client of an MPTCP server works; plain sockets are not multipath")
    func plainClient() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "::1", port: 0, family: .ipv6, multipath: true)
        let client = try await AsyncSocket.connect(to: Endpoint(host: "::1", port: server.localAddress.port!),
                                                   timeout: .seconds(10))
        #expect(await client.isMultipath == false)
        #expect(try await Self.exchange(client, server) == false)
        await client.close()
        server.close()
        let (a, b) = try AsyncSocket.pair()
        #expect(await a.isMultipath == false)
        await a.close()
        await b.close()
    } }

    /// What `StreamSocket.open(family: .ipv4, multipath: true)` creates on a thread moved into a new network
    /// namespace with `net.mptcp.enabled = 0`: the socket's `SO_PROTOCOL`, or nil when the namespace could not
    /// be made (not root). Namespaces are per thread, so only that thread (and its sockets) sees the setting.
    static func protocolWithMPTCPDisabled() async -> Int32?? {
        await withCheckedContinuation { continuation in
            let thread = Thread {
                guard let unshare = Self.unshare, unshare(0x4000_0000 /* CLONE_NEWNET */) == 0,
                      let file = fopen("/proc/sys/net/mptcp/enabled", "w") else { return continuation.resume(returning: nil) }
                fputs("0", file)
                fclose(file)
                let fd = StreamSocket.open(family: .ipv4, multipath: true)
                guard fd >= 0 else { return continuation.resume(returning: .some(nil)) }
                var proto: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &length)
                close(fd)
                continuation.resume(returning: proto)
            }
            thread.start()
        }
    }

    /// `unshare(2)`, which Swift's Glibc module does not export (it needs `_GNU_SOURCE`).
    static let unshare: (@convention(c) (Int32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "unshare") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int32) -> Int32).self)
    }()

    @Test("with MPTCP disabled in the kernel, multipath falls back to TCP silently")
    func kernelRefusal() async throws {
        guard let result = await Self.protocolWithMPTCPDisabled() else {
            return  // no new network namespace here (needs CAP_SYS_ADMIN): nothing to check
        }
        #expect(result == Int32(IPPROTO_TCP), "socket protocol \(String(describing: result))")
    }

    @Test("unix-domain sockets ignore multipath")
    func unixIgnoresMultipath() throws {
        let fd = StreamSocket.open(family: .unix, multipath: true)
        #expect(fd >= 0)
        #expect(as_socket_domain_test(fd) == AF_UNIX)
        close(fd)
    }

    /// The family of a descriptor (getsockname), for the test above.
    func as_socket_domain_test(_ fd: Int32) -> Int32 {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int32(storage.ss_family)
    }
}
