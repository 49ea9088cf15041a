import AsyncSockets

extension TLSSocket {
    /// Connects with TLS (a Happy Eyeballs connect to `endpoint`, then the handshake, exactly as
    /// ``connect(to:context:serverName:timeout:handshakeTimeout:sourceAddress:allErrors:happyEyeballsDelay:resolver:multipath:)``),
    /// runs `body` with the connection, and closes it when `body` returns, throws or is cancelled: Python's
    /// `with ctx.wrap_socket(socket.create_connection(...)) as s:`, on the fast path.
    ///
    /// ```swift
    /// let context = try TLSContext(configuration: .client())
    /// let status = try await TLSSocket.withConnection(to: Endpoint(host: "example.com", port: 443),
    ///                                                 context: context) { tls in
    ///     try await tls.write("HEAD / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
    ///     return try await tls.read(upTo: 4096)
    /// }                                                   // close_notify sent, socket closed here
    /// ```
    ///
    /// `body` is isolated to the connection (`isolated TLSSocket`) and runs with its event loop as the task's
    /// preferred executor, like the body of `AsyncSocket.withConnection(to:)` and a `serveTLS` handler: every
    /// call on the connection inside it is a plain call on the actor it already runs on, with no thread hop.
    /// The connect and the handshake run with the loop as preferred executor too. The price is the loop's
    /// rule: `body` runs on the loop thread, so it must not block (no blocking system calls, no long
    /// computations); hand heavy work to another executor and await it, for example
    /// `try await Task.detached { compute(bytes) }.value`.
    ///
    /// On the way out the connection is closed as ``close()`` does: `close_notify` is sent when there is room
    /// for it within ``TLSConfiguration/closeTimeout`` (never longer), then the descriptor is closed.
    ///
    /// Errors are not wrapped: a failed connect or handshake throws what
    /// ``connect(to:context:serverName:timeout:handshakeTimeout:sourceAddress:allErrors:happyEyeballsDelay:resolver:multipath:)``
    /// throws (and `body` never runs), an error from `body` is rethrown as it is, after the connection is
    /// closed. Cancelling the task makes a waiting connect, handshake, read or write throw
    /// `CancellationError`. The result need not be `Sendable`: it is a `sending` result, delivered in the
    /// caller's isolation.
    ///
    /// - Parameters:
    ///   - endpoint: host and port.
    ///   - context: a client ``TLSContext``.
    ///   - serverName: the name to verify and send, when it differs from `endpoint.host`.
    ///   - timeout: bounds the connect and becomes the connection's ``timeout`` for the reads and writes in
    ///     `body`.
    ///   - handshakeTimeout: bounds the whole handshake (`SocketError` `ETIMEDOUT`); nil: no bound.
    ///   - sourceAddress: binds each attempt's socket to this numeric address first.
    ///   - allErrors: when every attempt fails, throw a `ConnectErrorGroup` with one error per address.
    ///   - happyEyeballsDelay: how long an attempt runs before the next one starts alongside it.
    ///   - resolver: where addresses come from (`SystemResolver` by default).
    ///   - multipath: connect with Multipath TCP where the kernel allows it, plain TCP otherwise.
    ///   - isolation: the caller's isolation, where the result is delivered (leave the default).
    ///   - body: uses the connection; its result is returned.
    /// - Returns: what `body` returns.
    /// - Throws: the connect's errors, ``TLSError`` (handshake or verification failure), `SocketError`,
    ///   `CancellationError`, or `body`'s error. Nothing stays open when it throws.
    public static func withConnection<T>(
        to endpoint: Endpoint, context: TLSContext, serverName: String? = nil, timeout: Duration? = nil,
        handshakeTimeout: Duration? = .seconds(30), sourceAddress: Endpoint? = nil, allErrors: Bool = false,
        happyEyeballsDelay: Duration = .milliseconds(250), resolver: any AddressResolver = SystemResolver(),
        multipath: Bool = false, isolation: isolated (any Actor)? = #isolation,
        _ body: (isolated TLSSocket) async throws -> sending T
    ) async throws -> sending T {
        let loop = EventLoop.next()
        let result = try await withTaskExecutorPreference(loop, isolation: isolation) {
            let tls = try await connect(to: endpoint, context: context, serverName: serverName, timeout: timeout,
                                        handshakeTimeout: handshakeTimeout, sourceAddress: sourceAddress,
                                        allErrors: allErrors, happyEyeballsDelay: happyEyeballsDelay,
                                        resolver: resolver, multipath: multipath)
            return try await scoped(tls, preferring: loop, isolation: isolation, body)
        }
        return result.value
    }

    /// Runs `body` isolated to `tls` and closes the connection afterwards, on every path. Called with `loop` as
    /// the task's preferred executor; when the connection lives on another loop, that one is preferred instead
    /// while `body` runs.
    private static func scoped<T>(_ tls: TLSSocket, preferring loop: EventLoop, isolation: isolated (any Actor)?,
                                  _ body: (isolated TLSSocket) async throws -> sending T) async throws -> ScopedResult<T> {
        if tls.eventLoop !== loop {
            return try await withTaskExecutorPreference(tls.eventLoop, isolation: isolation) {
                try await scoped(tls, preferring: tls.eventLoop, isolation: isolation, body)
            }
        }
        let value: T
        do {
            value = try await body(tls)
        } catch {
            await tls.close()
            throw error
        }
        await tls.close()
        return ScopedResult(value: value)
    }
}
