extension AsyncSocket {
    /// Connects to `endpoint` (Happy Eyeballs, exactly as
    /// ``connect(to:timeout:sourceAddress:allErrors:happyEyeballsDelay:resolver:multipath:)``), runs `body` with the
    /// socket, and closes the socket when `body` returns, throws or is cancelled: Python's
    /// `with socket.create_connection(...) as s:`, on the fast path.
    ///
    /// ```swift
    /// let reply = try await AsyncSocket.withConnection(to: Endpoint(host: "localhost", port: 7000)) { socket in
    ///     try await socket.write("hello\n")
    ///     return try await socket.read(exactly: 6)
    /// }                                                   // the socket is closed here
    /// ```
    ///
    /// `body` is isolated to the socket (`isolated AsyncSocket`) and runs with the socket's ``EventLoop`` as
    /// its task's preferred executor, like a ``AsyncServer/serve(idleTimeout:onError:handler:)`` handler: every
    /// call on the socket inside it is a plain call on the actor it already runs on, with no thread hop and no
    /// executor switch. The connect runs with the loop as preferred executor too. The price is the loop's
    /// rule: `body` runs on the loop thread, so it must not block (no blocking system calls, no long
    /// computations), or every socket on that loop stalls. Hand heavy work to another executor and await it,
    /// for example `try await Task.detached { compute(bytes) }.value`. (A custom `resolver`'s `resolve` runs
    /// on the loop too, unless it moves its work elsewhere, as ``SystemResolver`` does.)
    ///
    /// Errors are not wrapped: a failed connect throws what
    /// ``connect(to:timeout:sourceAddress:allErrors:happyEyeballsDelay:resolver:multipath:)`` throws (and `body` never
    /// runs), an error from `body` is rethrown as it is, after the socket is closed. Cancelling the task makes
    /// a waiting connect, read or write throw `CancellationError`; the socket is closed whatever `body` does
    /// with it. To use several sockets in one scope, wrap the code in `EventLoop.run { }` instead.
    ///
    /// The result need not be `Sendable`: it is a `sending` result, so `body` may return any value it
    /// created, and it arrives in the caller's isolation (the main actor, say). From an actor-isolated caller
    /// (top-level code and `@MainActor` code run on the main actor) the connect returns to that actor once
    /// before `body` starts on the loop: one round trip per connection, none per call.
    ///
    /// - Parameters:
    ///   - endpoint: host name or numeric address, and port.
    ///   - timeout: bounds the whole connect, name resolution included (``SocketError`` `ETIMEDOUT`), and
    ///     becomes the socket's ``timeout`` for the reads and writes in `body`. `nil`: wait as long as the system does.
    ///   - sourceAddress: binds each attempt's socket to this numeric address first (see
    ///     ``connect(to:timeout:sourceAddress:allErrors:happyEyeballsDelay:resolver:multipath:)``).
    ///   - allErrors: when every attempt fails, throw a ``ConnectErrorGroup`` with one error per address.
    ///   - happyEyeballsDelay: how long an attempt runs before the next one starts alongside it.
    ///   - resolver: where addresses come from.
    ///   - multipath: connect with Multipath TCP where the kernel allows it, plain TCP otherwise (see
    ///     ``AsyncSocket/isMultipath``).
    ///   - isolation: the caller's isolation, where the result is delivered (leave the default).
    ///   - body: uses the connected socket; its result is returned.
    /// - Returns: what `body` returns.
    /// - Throws: the connect's error (``SocketError``, ``ConnectErrorGroup``, the resolver's error,
    ///   `CancellationError`), or `body`'s error.
    public static func withConnection<T>(
        to endpoint: Endpoint, timeout: Duration? = nil, sourceAddress: Endpoint? = nil,
        allErrors: Bool = false, happyEyeballsDelay: Duration = .milliseconds(250),
        resolver: any AddressResolver = SystemResolver(), multipath: Bool = false,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (isolated AsyncSocket) async throws -> sending T
    ) async throws -> sending T {
        let loop = EventLoop.next()
        let result = try await withTaskExecutorPreference(loop, isolation: isolation) {
            let socket = try await connect(to: endpoint, timeout: timeout, sourceAddress: sourceAddress,
                                           allErrors: allErrors, happyEyeballsDelay: happyEyeballsDelay,
                                           resolver: resolver, multipath: multipath)
            return try await scoped(socket, preferring: loop, isolation: isolation, body)
        }
        return result.value
    }

    /// ``withConnection(to:timeout:sourceAddress:allErrors:happyEyeballsDelay:resolver:multipath:isolation:_:)``,
    /// reporting every step of the connection race to `observer`, as
    /// ``connect(to:timeout:sourceAddress:allErrors:happyEyeballsDelay:resolver:multipath:observer:)`` does.
    ///
    /// `observer` is called in order, on the event loop thread (where the connect runs): keep it short and
    /// never block in it.
    ///
    /// - Parameters:
    ///   - endpoint: host name or numeric address, and port.
    ///   - timeout: bounds the whole connect (name resolution included) and becomes the socket's ``timeout``.
    ///   - sourceAddress: binds each attempt's socket to this numeric address first.
    ///   - allErrors: when every attempt fails, throw a ``ConnectErrorGroup`` with one error per address.
    ///   - happyEyeballsDelay: how long an attempt runs before the next one starts alongside it.
    ///   - resolver: where addresses come from.
    ///   - multipath: connect with Multipath TCP where the kernel allows it, plain TCP otherwise (see
    ///     ``AsyncSocket/isMultipath``).
    ///   - observer: receives each ``ConnectionRaceEvent`` of the race.
    ///   - isolation: the caller's isolation, where the result is delivered (leave the default).
    ///   - body: uses the connected socket; its result is returned.
    /// - Returns: what `body` returns.
    /// - Throws: the connect's error, or `body`'s error.
    public static func withConnection<T>(
        to endpoint: Endpoint, timeout: Duration? = nil, sourceAddress: Endpoint? = nil,
        allErrors: Bool = false, happyEyeballsDelay: Duration = .milliseconds(250),
        resolver: any AddressResolver = SystemResolver(), multipath: Bool = false,
        observer: @escaping @Sendable (ConnectionRaceEvent) -> Void,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (isolated AsyncSocket) async throws -> sending T
    ) async throws -> sending T {
        let loop = EventLoop.next()
        let result = try await withTaskExecutorPreference(loop, isolation: isolation) {
            let socket = try await connect(to: endpoint, timeout: timeout, sourceAddress: sourceAddress,
                                           allErrors: allErrors, happyEyeballsDelay: happyEyeballsDelay,
                                           resolver: resolver, multipath: multipath, observer: observer)
            return try await scoped(socket, preferring: loop, isolation: isolation, body)
        }
        return result.value
    }

    /// Connects to one resolved address (as ``connect(to:timeout:)``: no lookup, no racing), runs `body` with
    /// the socket, and closes the socket when `body` returns, throws or is cancelled.
    ///
    /// `body` is isolated to the socket and runs on its event loop with no thread hops, and must not block:
    /// see ``withConnection(to:timeout:sourceAddress:allErrors:happyEyeballsDelay:resolver:multipath:isolation:_:)``.
    ///
    /// - Parameters:
    ///   - address: the IPv4, IPv6 or unix-domain address to connect to.
    ///   - timeout: bounds the connect and becomes the socket's ``timeout``.
    ///   - isolation: the caller's isolation, where the result is delivered (leave the default).
    ///   - body: uses the connected socket; its result is returned.
    /// - Returns: what `body` returns.
    /// - Throws: the connect's ``SocketError`` or `CancellationError`, or `body`'s error.
    public static func withConnection<T>(
        to address: SocketAddress, timeout: Duration? = nil,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (isolated AsyncSocket) async throws -> sending T
    ) async throws -> sending T {
        let loop = EventLoop.next()
        let result = try await withTaskExecutorPreference(loop, isolation: isolation) {
            let socket = try await connect(to: address, timeout: timeout)
            return try await scoped(socket, preferring: loop, isolation: isolation, body)
        }
        return result.value
    }

    /// Runs `body` isolated to `socket` and closes the socket afterwards, on every path. Called with `loop`
    /// as the task's preferred executor; when the socket lives on another loop (once sockets are spread over
    /// several), that one is preferred instead while `body` runs.
    private static func scoped<T>(_ socket: AsyncSocket, preferring loop: EventLoop, isolation: isolated (any Actor)?,
                                  _ body: (isolated AsyncSocket) async throws -> sending T) async throws -> ScopedResult<T> {
        if socket.eventLoop !== loop {
            return try await withTaskExecutorPreference(socket.eventLoop, isolation: isolation) {
                try await scoped(socket, preferring: socket.eventLoop, isolation: isolation, body)
            }
        }
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
