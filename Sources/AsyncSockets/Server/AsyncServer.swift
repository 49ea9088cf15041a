#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CLibeventShim

/// A listening stream socket: Python's `socket.create_server`, handing out connected clients as an
/// `AsyncSequence`.
///
/// ```swift
/// let server = try AsyncServer(host: "127.0.0.1", port: 0)
/// for try await client in server.accepts { … }
/// // or, a task per client, structured:
/// try await server.serve { client in … }
/// ```
///
/// ``close()`` ends ``accepts`` and ``serve(idleTimeout:onError:handler:)``. A server that is no longer
/// referenced, by itself or by an iterator of ``accepts``, closes its descriptor (and removes its unix
/// socket file).
public final class AsyncServer: Sendable {
    let listener: Listener

    /// The bound address, with the real port when port 0 was asked for.
    public let localAddress: SocketAddress

    /// The listen backlog used when none is given: `SOMAXCONN` (the kernel further caps it to
    /// `net.core.somaxconn`, 4096 on current Linux).
    public static let defaultBacklog = Int(SOMAXCONN)

    /// The event loop that accepts for this server (one of ``group``'s).
    public var eventLoop: EventLoop { listener.core.loop }

    /// The loops this server's clients live on: each accepted client goes to the group's next loop.
    public var group: EventLoopGroup { listener.group }

    /// Python's `create_server`: a TCP server bound to `host` and `port`.
    ///
    /// - Parameters:
    ///   - host: a numeric address, a host name (resolved with `getaddrinfo`, blocking), or `""` for all
    ///     interfaces of `family`.
    ///   - port: the port; 0 picks an ephemeral one (read it from ``localAddress``).
    ///   - family: ``SocketFamily/ipv4`` or ``SocketFamily/ipv6`` (``SocketFamily/unix`` throws: use
    ///     ``init(unixPath:backlog:group:)``).
    ///   - backlog: the listen queue length; `nil` uses ``defaultBacklog``.
    ///   - reusePort: set `SO_REUSEPORT`, so several servers can share the port. `SO_REUSEADDR` is always set.
    ///   - dualStackIPv6: with `family: .ipv6`, also accept IPv4 clients (seen as `::ffff:a.b.c.d`).
    ///     Without it, an IPv6 server sets `IPV6_V6ONLY` explicitly.
    ///   - multipath: listen with `IPPROTO_MPTCP` (Multipath TCP): clients that speak MPTCP get MPTCP
    ///     connections (``AsyncSocket/isMultipath``), others plain TCP. Where the kernel refuses MPTCP the
    ///     server listens with plain TCP, silently, as Go does.
    ///   - group: the loops of the server: it accepts on one of them and hands each client to the next
    ///     (``EventLoopGroup/shared`` by default: every core).
    /// - Throws: ``SocketError``: `EINVAL` for a bad argument combination, `EAFNOSUPPORT` when dual-stack is not
    ///   supported, `EADDRINUSE` when the port is taken, each naming the address.
    public convenience init(host: String, port: UInt16, family: SocketFamily = .ipv4, backlog: Int? = nil,
                reusePort: Bool = false, dualStackIPv6: Bool = false, multipath: Bool = false,
                group: EventLoopGroup = .shared) throws {
        guard family != .unix else {
            throw SocketError.invalidArgument("AsyncServer(host:port:)", "family .unix needs AsyncServer(unixPath:)")
        }
        if dualStackIPv6 {
            guard family == .ipv6 else {
                throw SocketError.invalidArgument("AsyncServer(host:port:)", "dualStackIPv6 requires family .ipv6, got \(family)")
            }
            guard Self.hasDualStackIPv6 else {
                throw SocketError(code: EAFNOSUPPORT, operation: "AsyncServer(host:port:)", detail: "dual-stack IPv6 is not supported on this platform")
            }
        }
        let address = try BindAddress.resolve(host: host, port: port, family: family, operation: "AsyncServer(host:port:)",
                                                owner: "server")
        try self.init(address: address, backlog: backlog, multipath: multipath, group: group) { fd in
            try BindAddress.setFlag(fd, SOL_SOCKET, SO_REUSEADDR, true, "SO_REUSEADDR", address)
            if reusePort { try BindAddress.setFlag(fd, SOL_SOCKET, SO_REUSEPORT, true, "SO_REUSEPORT", address) }
            if family == .ipv6 {
                try BindAddress.setFlag(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, !dualStackIPv6, "IPV6_V6ONLY", address)
            }
        }
    }

    /// A stream server on a unix-domain path.
    ///
    /// - Parameters:
    ///   - unixPath: the socket file to create.
    ///   - backlog: the listen queue length; `nil` uses ``defaultBacklog``.
    ///   - group: the loops of the server (see ``init(host:port:family:backlog:reusePort:dualStackIPv6:multipath:group:)``).
    /// - Throws: ``SocketError``: `ENAMETOOLONG` when the path does not fit `sun_path`, `EADDRINUSE` when the
    ///   path exists (remove a stale socket file first), `EINVAL` for an empty path or a NUL byte.
    ///   ``close()`` removes the socket file.
    public convenience init(unixPath: String, backlog: Int? = nil, group: EventLoopGroup = .shared) throws {
        let address = try SocketAddress(unixPath: unixPath)
        try self.init(address: address, backlog: backlog, group: group) { _ in }
    }

    private init(address: SocketAddress, backlog: Int?, multipath: Bool = false, group: EventLoopGroup,
                 configure: (Int32) throws -> Void) throws {
        let backlog = backlog ?? Self.defaultBacklog
        guard backlog >= 0 else {
            throw SocketError.invalidArgument("listen", "backlog must not be negative, got \(backlog)", address: address)
        }
        let fd = try Syscall.call("socket", address: address) {
            StreamSocket.open(family: address.family, multipath: multipath)
        }
        do {
            try configure(fd)
            _ = try Syscall.call("bind", address: address) { address.withSockAddr { Posix.bind(fd, $0, $1) } }
            _ = try Syscall.call("listen", address: address) { Posix.listen(fd, Int32(clamping: backlog)) }
            guard let bound = try SocketAddress.local(of: fd, address: address) else {
                throw SocketError(code: EAFNOSUPPORT, operation: "getsockname", address: address)
            }
            self.localAddress = address.family == .unix ? address : bound
        } catch {
            _ = Posix.close(fd)
            throw error
        }
        self.listener = Listener(descriptor: fd, address: localAddress, group: group)
    }


    /// Python's `socket.has_dualstack_ipv6()`: whether an IPv6 socket can also accept IPv4 connections here.
    public static var hasDualStackIPv6: Bool {
        guard case .success(let fd) = Syscall.attempt({ as_socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0) }) else {
            return false
        }
        defer { _ = Posix.close(fd) }
        var zero: Int32 = 0
        let set = Syscall.attempt { setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &zero, socklen_t(MemoryLayout<Int32>.size)) }
        if case .success = set { return true }
        return false
    }

    /// The connected clients, one per iteration step, as they arrive.
    ///
    /// The sequence is pulled: the server accepts only when its consumer asks for the next client, so a
    /// slow consumer leaves connections in the kernel's backlog instead of in memory. It ends (returns nil)
    /// once ``close()`` is called (promptly, also for a pending `next()`) or when the iterating task is
    /// cancelled. Transient accept errors are skipped; running out of descriptors backs off (10 ms doubling to
    /// 1 s) and retries. Other errors end the iteration by throwing.
    ///
    /// Several tasks may iterate at once: they are served in FIFO order, and each connection goes to exactly one.
    public var accepts: AcceptSequence { AcceptSequence(listener: listener) }

    /// Accepts one client; `nil` once the server is closed or the task is cancelled (see ``accepts``).
    public func accept() async throws -> AsyncSocket? {
        try await listener.accept()
    }

    /// The listening descriptor (Python's `fileno()`), or `-1` once closed. Use it for options this type
    /// does not offer; do not accept on it, close it or change its blocking mode.
    public var descriptor: Int32 {
        let core = listener.core
        if core.loop.inLoop { return core.fd }
        let result = Locked<Int32>(-1)
        core.loop.executeAndWait { result.withLock { $0 = core.fd } }
        return result.withLock { $0 }
    }

    /// Whether ``close()`` has been called.
    public var isClosed: Bool {
        let core = listener.core
        if core.loop.inLoop { return core.isClosed }
        let result = Locked(false)
        core.loop.executeAndWait { result.withLock { $0 = core.isClosed } }
        return result.withLock { $0 }
    }

    /// Stops listening and closes the descriptor (removing a unix socket file). Idempotent. A pending
    /// `next()` on ``accepts`` returns nil promptly. Returns after the descriptor is closed.
    public func close() {
        let core = listener.core
        let path = localAddress.unixPath
        core.loop.executeAndWait {
            if !core.isClosed, let path { unlink(path) }
            core.close()
        }
    }
}
