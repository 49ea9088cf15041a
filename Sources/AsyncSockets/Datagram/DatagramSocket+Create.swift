#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CLibeventShim

extension DatagramSocket {
    /// A UDP socket bound to `host` and `port` (Python's `socket(AF_INET, SOCK_DGRAM)` + `bind`; asyncio's
    /// `create_datagram_endpoint(local_addr=…)`).
    ///
    /// - Parameters:
    ///   - host: a numeric address, a host name (resolved with `getaddrinfo`, blocking), or `""` for all
    ///     interfaces of `family`.
    ///   - port: the port; 0 picks an ephemeral one (read it from ``localAddress``).
    ///   - family: ``SocketFamily/ipv4`` or ``SocketFamily/ipv6`` (``SocketFamily/unix`` throws `EINVAL`: use
    ///     ``bind(unixPath:on:)``).
    ///   - reusePort: set `SO_REUSEPORT`, so several sockets can share the port (the kernel spreads datagrams
    ///     over them by flow). `SO_REUSEADDR` is never set: on UDP it would let another socket take over the port
    ///     (asyncio removed it for that reason, bpo-37228).
    ///   - broadcast: set `SO_BROADCAST`, needed to send to a broadcast address (otherwise `EACCES`).
    ///   - dualStackIPv6: with `family: .ipv6`, also receive IPv4 datagrams (senders seen as `::ffff:a.b.c.d`).
    ///     Without it, an IPv6 socket sets `IPV6_V6ONLY` explicitly (defaults differ between systems).
    ///   - loop: the event loop to run on; `nil` picks one as for any new socket.
    /// - Throws: ``SocketError``: `EINVAL` for a bad argument combination, `EAFNOSUPPORT` when `host` is of the
    ///   other family, `EADDRINUSE` when the port is taken, each naming the address.
    public static func bind(host: String, port: UInt16, family: SocketFamily = .ipv4, reusePort: Bool = false,
                            broadcast: Bool = false, dualStackIPv6: Bool = false,
                            on loop: EventLoop? = nil) throws -> DatagramSocket {
        let operation = "DatagramSocket.bind(host:port:)"
        guard family != .unix else {
            throw SocketError.invalidArgument(operation, "family .unix needs DatagramSocket.bind(unixPath:)")
        }
        if dualStackIPv6 && family != .ipv6 {
            throw SocketError.invalidArgument(operation, "dualStackIPv6 requires family .ipv6, got \(family)")
        }
        let address = try BindAddress.resolve(host: host, port: port, family: family,
                                              operation: "DatagramSocket.bind(host:port:)", owner: "socket")
        return try bind(to: address, reusePort: reusePort, broadcast: broadcast, dualStackIPv6: dualStackIPv6,
                        on: loop)
    }

    /// A unix datagram socket bound to the file `path`, so that others can send to it (and it can receive
    /// replies). ``close()`` removes the file.
    ///
    /// - Throws: ``SocketError``: `EADDRINUSE` when the path exists (remove a stale socket file first),
    ///   `ENAMETOOLONG` when it does not fit `sun_path`, `EINVAL` for an empty path or a NUL byte.
    public static func bind(unixPath path: String, on loop: EventLoop? = nil) throws -> DatagramSocket {
        let address = try SocketAddress(unixPath: path)
        return try bind(to: address, reusePort: false, broadcast: false, dualStackIPv6: false, on: loop)
    }

    /// A socket bound to nothing yet, for a client: a UDP socket gets an ephemeral port at its first send; a
    /// unix datagram socket can send but has no address to reply to.
    ///
    /// - Parameters:
    ///   - family: ``SocketFamily/ipv4``, ``SocketFamily/ipv6`` (which sets `IPV6_V6ONLY`, so it sends to IPv6
    ///     addresses only) or ``SocketFamily/unix``.
    ///   - broadcast: set `SO_BROADCAST` (IP families only).
    ///   - loop: the event loop to run on; `nil` picks one as for any new socket.
    /// - Throws: ``SocketError`` (`EMFILE` when out of descriptors, `EINVAL` for `broadcast` on unix).
    public static func unbound(family: SocketFamily = .ipv4, broadcast: Bool = false,
                               on loop: EventLoop? = nil) throws -> DatagramSocket {
        if broadcast && family == .unix {
            throw SocketError.invalidArgument("DatagramSocket.unbound(family:)", "broadcast needs an IP family, got unix")
        }
        let fd = try Syscall.call("socket", detail: "\(family) datagram socket") {
            as_socket(family.rawValue, Int32(SOCK_DGRAM.rawValue), 0)
        }
        do {
            try configure(fd, family: family, address: nil, reusePort: false, broadcast: broadcast,
                          dualStackIPv6: false)
        } catch {
            _ = Posix.close(fd)
            throw error
        }
        return DatagramSocket(descriptor: fd, family: family, loop: loop ?? .next())
    }

    /// Python's `socket.socketpair(AF_UNIX, SOCK_DGRAM)`: two connected unix datagram sockets on one loop.
    /// Their ``Datagram/sender`` is `nil` (they have no addresses).
    ///
    /// - Throws: ``SocketError`` (for example `EMFILE` when the process is out of descriptors).
    public static func pair(on loop: EventLoop? = nil) throws -> (DatagramSocket, DatagramSocket) {
        var fds: [Int32] = [-1, -1]
        _ = try Syscall.call("socketpair", detail: "unix datagram sockets") {
            as_socketpair(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0, &fds)
        }
        let loop = loop ?? .next()
        return (DatagramSocket(descriptor: fds[0], family: .unix, loop: loop),
                DatagramSocket(descriptor: fds[1], family: .unix, loop: loop))
    }

    // MARK: Setup helpers

    /// A socket bound to one resolved address (no lookup): UDP for an IP address (an IPv6 address sets
    /// `IPV6_V6ONLY` unless `dualStackIPv6`), unix datagram for a unix address (as ``bind(unixPath:on:)``).
    ///
    /// - Parameters: as ``bind(host:port:family:reusePort:broadcast:dualStackIPv6:on:)``.
    /// - Throws: ``SocketError`` naming the address.
    public static func bind(to address: SocketAddress, reusePort: Bool = false, broadcast: Bool = false,
                            dualStackIPv6: Bool = false, on loop: EventLoop? = nil) throws -> DatagramSocket {
        if dualStackIPv6 && address.family != .ipv6 {
            throw SocketError.invalidArgument("bind", "dualStackIPv6 requires an IPv6 address", address: address)
        }
        if address.family == .unix && (reusePort || broadcast) {
            throw SocketError.invalidArgument("bind", "reusePort and broadcast need an IP address", address: address)
        }
        let fd = try Syscall.call("socket", address: address) {
            as_socket(address.family.rawValue, Int32(SOCK_DGRAM.rawValue), 0)
        }
        do {
            try configure(fd, family: address.family, address: address, reusePort: reusePort, broadcast: broadcast,
                          dualStackIPv6: dualStackIPv6)
            _ = try Syscall.call("bind", address: address) { address.withSockAddr { Posix.bind(fd, $0, $1) } }
        } catch {
            _ = Posix.close(fd)
            throw error
        }
        return DatagramSocket(descriptor: fd, family: address.family, loop: loop ?? .next(),
                              boundPath: address.unixPath)
    }

    private static func configure(_ fd: Int32, family: SocketFamily, address: SocketAddress?, reusePort: Bool,
                                  broadcast: Bool, dualStackIPv6: Bool) throws {
        if reusePort { try BindAddress.setFlag(fd, SOL_SOCKET, SO_REUSEPORT, true, "SO_REUSEPORT", address) }
        if broadcast { try BindAddress.setFlag(fd, SOL_SOCKET, SO_BROADCAST, true, "SO_BROADCAST", address) }
        if family == .ipv6 {
            try BindAddress.setFlag(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, !dualStackIPv6, "IPV6_V6ONLY", address)
        }
    }
}
