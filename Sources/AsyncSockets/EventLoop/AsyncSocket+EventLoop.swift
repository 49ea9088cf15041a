extension AsyncSocket {
    /// ``connect(to:timeout:)``, with the new socket on `loop`.
    ///
    /// - Parameters:
    ///   - address: the address to connect to.
    ///   - timeout: as in ``connect(to:timeout:)``.
    ///   - loop: the event loop the socket lives on; `nil` chooses as for any new socket (the loop the current
    ///     task prefers, else the next loop of ``EventLoopGroup/shared``).
    public static func connect(to address: SocketAddress, timeout: Duration? = nil,
                               on loop: EventLoop?) async throws -> AsyncSocket {
        guard let loop else { return try await connect(to: address, timeout: timeout) }
        return try await loop.run { try await connect(to: address, timeout: timeout) }
    }

    /// ``connect(to:timeout:sourceAddress:allErrors:happyEyeballsDelay:resolver:multipath:)`` with every attempt's socket,
    /// and so the returned one, on `loop`.
    ///
    /// The race runs with `loop` as its preferred task executor: its attempts create their sockets there, and
    /// its own bookkeeping runs on that thread too.
    ///
    /// - Parameters:
    ///   - endpoint: host name or numeric address, and port.
    ///   - timeout: bounds each attempt and becomes the socket's ``timeout``.
    ///   - sourceAddress: binds each attempt's socket to this numeric address first.
    ///   - allErrors: throw a ``ConnectErrorGroup`` when every attempt fails.
    ///   - happyEyeballsDelay: how long an attempt runs before the next one starts alongside it.
    ///   - resolver: where addresses come from.
    ///   - multipath: create each attempt's socket with `IPPROTO_MPTCP`, falling back to TCP silently.
    ///   - loop: the event loop of the sockets; `nil` chooses as for any new socket.
    /// - Throws: as ``connect(to:timeout:sourceAddress:allErrors:happyEyeballsDelay:resolver:multipath:)``.
    public static func connect(to endpoint: Endpoint, timeout: Duration? = nil, sourceAddress: Endpoint? = nil,
                               allErrors: Bool = false, happyEyeballsDelay: Duration = .milliseconds(250),
                               resolver: any AddressResolver = SystemResolver(), multipath: Bool = false,
                               on loop: EventLoop?) async throws -> AsyncSocket {
        guard let loop else {
            return try await connect(to: endpoint, timeout: timeout, sourceAddress: sourceAddress, allErrors: allErrors,
                                     happyEyeballsDelay: happyEyeballsDelay, resolver: resolver, multipath: multipath)
        }
        return try await loop.run {
            try await connect(to: endpoint, timeout: timeout, sourceAddress: sourceAddress, allErrors: allErrors,
                              happyEyeballsDelay: happyEyeballsDelay, resolver: resolver, multipath: multipath)
        }
    }

    /// ``connect(to:timeout:sourceAddress:allErrors:happyEyeballsDelay:resolver:multipath:observer:)`` with every
    /// attempt's socket on `loop`; `observer` is then called on `loop`'s thread (keep it short: it holds up
    /// every socket of the loop while it runs).
    ///
    /// - Parameters:
    ///   - endpoint: host name or numeric address, and port.
    ///   - timeout: bounds each attempt and becomes the socket's ``timeout``.
    ///   - sourceAddress: binds each attempt's socket to this numeric address first.
    ///   - allErrors: throw a ``ConnectErrorGroup`` when every attempt fails.
    ///   - happyEyeballsDelay: how long an attempt runs before the next one starts alongside it.
    ///   - resolver: where addresses come from.
    ///   - multipath: create each attempt's socket with `IPPROTO_MPTCP`, falling back to TCP silently.
    ///   - loop: the event loop of the sockets; `nil` chooses as for any new socket.
    ///   - observer: called with every step of the race.
    /// - Throws: as ``connect(to:timeout:sourceAddress:allErrors:happyEyeballsDelay:resolver:multipath:)``.
    public static func connect(to endpoint: Endpoint, timeout: Duration? = nil, sourceAddress: Endpoint? = nil,
                               allErrors: Bool = false, happyEyeballsDelay: Duration = .milliseconds(250),
                               resolver: any AddressResolver = SystemResolver(), multipath: Bool = false,
                               on loop: EventLoop?, observer: @escaping @Sendable (ConnectionRaceEvent) -> Void) async throws -> AsyncSocket {
        guard let loop else {
            return try await connect(to: endpoint, timeout: timeout, sourceAddress: sourceAddress, allErrors: allErrors,
                                     happyEyeballsDelay: happyEyeballsDelay, resolver: resolver, multipath: multipath, observer: observer)
        }
        return try await loop.run {
            try await connect(to: endpoint, timeout: timeout, sourceAddress: sourceAddress, allErrors: allErrors,
                              happyEyeballsDelay: happyEyeballsDelay, resolver: resolver, multipath: multipath, observer: observer)
        }
    }
}
