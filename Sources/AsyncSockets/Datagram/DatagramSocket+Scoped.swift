#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension DatagramSocket {
    /// A connected datagram socket for the length of `body`: an unbound socket of `address`'s family,
    /// connected to `address` (Python's `with socket.socket(AF_INET, SOCK_DGRAM) as s: s.connect(addr)`;
    /// asyncio's `create_datagram_endpoint(remote_addr=…)`), closed when `body` returns, throws or is cancelled.
    ///
    /// ```swift
    /// let reply = try await DatagramSocket.withConnection(to: SocketAddress(ipv4: "127.0.0.1", port: 5300)) { socket in
    ///     try await socket.send(query)
    ///     return try await socket.receive().bytes
    /// }                                                   // the socket is closed here
    /// ```
    ///
    /// `body` is isolated to the socket (`isolated DatagramSocket`) and runs with the socket's ``EventLoop`` as
    /// its task's preferred executor: every send and receive inside it is a plain call on the actor it already
    /// runs on, with no thread hop. The price is the loop's rule: `body` runs on the loop thread, so it must not
    /// block (no blocking system calls, no long computations); hand heavy work to another executor and await it.
    ///
    /// The socket sends to `address` with ``send(_:)-([UInt8])`` and receives only datagrams from it; a UDP
    /// socket gets its ephemeral port from the `connect`. The result need not be `Sendable`: it is a `sending`
    /// result, delivered in the caller's isolation. Errors are not wrapped: a failed socket or connect throws
    /// what ``unbound(family:broadcast:on:)`` and ``connect(to:)`` throw (and `body` never runs); an error from
    /// `body` is rethrown as it is, after the socket is closed.
    ///
    /// - Parameters:
    ///   - address: the IPv4, IPv6 or unix-domain address to exchange datagrams with.
    ///   - timeout: becomes the socket's ``timeout`` for the sends and receives in `body`. `nil`: no bound.
    ///   - broadcast: set `SO_BROADCAST`, to connect to a broadcast address (IP families only).
    ///   - loop: the event loop to run on; `nil` picks one as for any new socket.
    ///   - isolation: the caller's isolation, where the result is delivered (leave the default).
    ///   - body: uses the connected socket; its result is returned.
    /// - Returns: what `body` returns.
    /// - Throws: ``SocketError`` from the socket or the connect, or `body`'s error.
    public static func withConnection<T>(
        to address: SocketAddress, timeout: Duration? = nil, broadcast: Bool = false, on loop: EventLoop? = nil,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (isolated DatagramSocket) async throws -> sending T
    ) async throws -> sending T {
        let loop = loop ?? EventLoop.next()
        let result = try await withTaskExecutorPreference(loop, isolation: isolation) {
            let socket = try await connected(to: address, timeout: timeout, broadcast: broadcast, on: loop)
            return try await scoped(socket, isolation: isolation, body)
        }
        return result.value
    }

    /// ``withConnection(to:timeout:broadcast:on:isolation:_:)`` for a host name or a
    /// numeric address: resolves `endpoint` and connects to the first address that accepts a `connect`
    /// (asyncio's `create_datagram_endpoint(remote_addr=(host, port))`), in the resolver's order.
    ///
    /// A UDP `connect` sends nothing, so the first address normally wins; a later one is tried only when the
    /// system refuses the first (for example `ENETUNREACH` for an IPv6 address on a host without IPv6). No
    /// Happy Eyeballs race: a datagram peer's reachability shows only in its replies.
    ///
    /// - Parameters:
    ///   - endpoint: host name or numeric address, and port.
    ///   - timeout: bounds the name resolution (``SocketError`` `ETIMEDOUT`) and becomes the socket's
    ///     ``timeout`` for the sends and receives in `body`. `nil`: no bound.
    ///   - broadcast: set `SO_BROADCAST`, to connect to a broadcast address.
    ///   - resolver: where addresses come from.
    ///   - loop: the event loop to run on; `nil` picks one as for any new socket.
    ///   - isolation: the caller's isolation, where the result is delivered (leave the default).
    ///   - body: uses the connected socket; its result is returned.
    /// - Returns: what `body` returns.
    /// - Throws: the resolver's error (``SocketError`` `ENOENT` when it finds no address), the first
    ///   address's ``SocketError`` when every connect fails, `CancellationError`, or `body`'s error.
    public static func withConnection<T>(
        to endpoint: Endpoint, timeout: Duration? = nil, broadcast: Bool = false,
        resolver: any AddressResolver = SystemResolver(), on loop: EventLoop? = nil,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (isolated DatagramSocket) async throws -> sending T
    ) async throws -> sending T {
        let loop = loop ?? EventLoop.next()
        let result = try await withTaskExecutorPreference(loop, isolation: isolation) {
            let addresses = try await resolver.resolve(endpoint, before: timeout.map { Deadline.after($0) },
                                                     timeout: timeout)
            guard !addresses.isEmpty else {
                throw SocketError(code: ENOENT, operation: "resolve", detail: "no addresses found for \(endpoint)")
            }
            var firstError: (any Error)?
            for address in addresses {
                let socket: DatagramSocket
                do {
                    socket = try await connected(to: address, timeout: timeout, broadcast: broadcast, on: loop)
                } catch {
                    if firstError == nil { firstError = error }
                    continue
                }
                return try await scoped(socket, isolation: isolation, body)
            }
            throw firstError!
        }
        return result.value
    }

    /// A UDP socket bound to `host` and `port` for the length of `body`, as
    /// ``bind(host:port:family:reusePort:broadcast:dualStackIPv6:on:)`` creates it, closed when `body`
    /// returns, throws or is cancelled (Python's `with socket.socket(AF_INET, SOCK_DGRAM) as s: s.bind(addr)`).
    ///
    /// ```swift
    /// try await DatagramSocket.withBound(host: "127.0.0.1", port: 5300) { socket in
    ///     for try await datagram in socket.datagrams {
    ///         try await socket.send(datagram.bytes, to: datagram.sender!)
    ///     }
    /// }
    /// ```
    ///
    /// `body` is isolated to the socket and runs on its event loop with no thread hops, and must not block: see
    /// ``withConnection(to:timeout:broadcast:on:isolation:_:)``. Errors are not
    /// wrapped: a failed bind throws what ``bind(host:port:family:reusePort:broadcast:dualStackIPv6:on:)``
    /// throws (and `body` never runs); an error from `body` is rethrown as it is, after the socket is closed.
    ///
    /// - Parameters:
    ///   - host: a numeric address, a host name (resolved with `getaddrinfo`, blocking), or `""` for all
    ///     interfaces of `family`.
    ///   - port: the port; 0 picks an ephemeral one (read it from ``localAddress``).
    ///   - family: ``SocketFamily/ipv4`` or ``SocketFamily/ipv6``.
    ///   - reusePort: set `SO_REUSEPORT`.
    ///   - broadcast: set `SO_BROADCAST`.
    ///   - dualStackIPv6: with `family: .ipv6`, also receive IPv4 datagrams.
    ///   - timeout: becomes the socket's ``timeout`` for the sends and receives in `body`. `nil`: no bound.
    ///   - loop: the event loop to run on; `nil` picks one as for any new socket.
    ///   - isolation: the caller's isolation, where the result is delivered (leave the default).
    ///   - body: uses the bound socket; its result is returned.
    /// - Returns: what `body` returns.
    /// - Throws: the bind's ``SocketError``, or `body`'s error.
    public static func withBound<T>(
        host: String, port: UInt16, family: SocketFamily = .ipv4, reusePort: Bool = false,
        broadcast: Bool = false, dualStackIPv6: Bool = false, timeout: Duration? = nil, on loop: EventLoop? = nil,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (isolated DatagramSocket) async throws -> sending T
    ) async throws -> sending T {
        let loop = loop ?? EventLoop.next()
        let result = try await withTaskExecutorPreference(loop, isolation: isolation) {
            let socket = try bind(host: host, port: port, family: family, reusePort: reusePort,
                                  broadcast: broadcast, dualStackIPv6: dualStackIPv6, on: loop)
            await socket.setTimeout(timeout)
            return try await scoped(socket, isolation: isolation, body)
        }
        return result.value
    }

    /// A unix datagram socket bound to the file `path` for the length of `body`, as ``bind(unixPath:on:)``
    /// creates it, closed when `body` returns, throws or is cancelled; closing removes the file.
    ///
    /// `body` is isolated to the socket and runs on its event loop with no thread hops, and must not block: see
    /// ``withConnection(to:timeout:broadcast:on:isolation:_:)``. A failed bind throws what
    /// ``bind(unixPath:on:)`` throws (and `body` never runs); an error from `body` is rethrown as it is, after
    /// the socket is closed.
    ///
    /// - Parameters:
    ///   - path: the socket file to create (it must not exist yet).
    ///   - timeout: becomes the socket's ``timeout`` for the sends and receives in `body`. `nil`: no bound.
    ///   - loop: the event loop to run on; `nil` picks one as for any new socket.
    ///   - isolation: the caller's isolation, where the result is delivered (leave the default).
    ///   - body: uses the bound socket; its result is returned.
    /// - Returns: what `body` returns.
    /// - Throws: the bind's ``SocketError``, or `body`'s error.
    public static func withBound<T>(
        unixPath path: String, timeout: Duration? = nil, on loop: EventLoop? = nil,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (isolated DatagramSocket) async throws -> sending T
    ) async throws -> sending T {
        let loop = loop ?? EventLoop.next()
        let result = try await withTaskExecutorPreference(loop, isolation: isolation) {
            let socket = try bind(unixPath: path, on: loop)
            await socket.setTimeout(timeout)
            return try await scoped(socket, isolation: isolation, body)
        }
        return result.value
    }

    /// An unbound socket of `address`'s family on `loop`, connected to `address`; closed if the connect fails.
    private static func connected(to address: SocketAddress, timeout: Duration?, broadcast: Bool,
                                  on loop: EventLoop) async throws -> DatagramSocket {
        let socket = try unbound(family: address.family, broadcast: broadcast, on: loop)
        do {
            await socket.setTimeout(timeout)
            try await socket.connect(to: address)
        } catch {
            await socket.close()
            throw error
        }
        return socket
    }

    /// Runs `body` isolated to `socket` and closes the socket afterwards, on every path. Called with the
    /// socket's loop as the task's preferred executor.
    private static func scoped<T>(_ socket: DatagramSocket, isolation: isolated (any Actor)?,
                                  _ body: (isolated DatagramSocket) async throws -> sending T) async throws -> ScopedResult<T> {
        let value: T
        do {
            value = try await body(socket)
        } catch {
            await socket.close()
            throw error
        }
        await socket.close()
        return ScopedResult(value: value)
    }
}
