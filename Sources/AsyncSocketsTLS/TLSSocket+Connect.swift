import AsyncSockets
internal import CTLSShim

extension TLSSocket {
    /// Connects with TLS in one call: a Happy Eyeballs connect to `endpoint`
    /// (`AsyncSocket/connect(to:timeout:sourceAddress:allErrors:happyEyeballsDelay:resolver:multipath:)`), then
    /// the handshake.
    ///
    /// To close the connection when you are done with it, on every path, and to run your code on the
    /// socket's loop with no thread hops, use
    /// ``withConnection(to:context:serverName:timeout:handshakeTimeout:sourceAddress:allErrors:happyEyeballsDelay:resolver:multipath:isolation:_:)``
    /// instead.
    ///
    /// The server's certificate is checked for `serverName` (the endpoint's host by default): a DNS name is
    /// also sent as SNI; an IP address is verified as an IP address and never sent as SNI.
    ///
    /// - Parameters:
    ///   - endpoint: host and port.
    ///   - context: a client ``TLSContext``.
    ///   - serverName: the name to verify and send, when it differs from `endpoint.host`.
    ///   - timeout: bounds each connect attempt and becomes the socket's ``timeout``.
    ///   - handshakeTimeout: bounds the whole handshake (`SocketError` `ETIMEDOUT`); nil: no bound.
    ///   - sourceAddress: binds each attempt's socket to this numeric address first, as `AsyncSocket`'s connect.
    ///   - allErrors: when every attempt fails, throw a `ConnectErrorGroup` with one error per address.
    ///   - happyEyeballsDelay: how long an attempt runs before the next one starts alongside it.
    ///   - resolver: where addresses come from (`SystemResolver` by default).
    ///   - multipath: connect with Multipath TCP where the kernel allows it, plain TCP otherwise.
    /// - Throws: the connect's errors; ``TLSError`` (handshake or verification failure); `SocketError`;
    ///   `CancellationError`. Nothing stays open when it throws.
    public static func connect(to endpoint: Endpoint, context: TLSContext, serverName: String? = nil,
                               timeout: Duration? = nil,
                               handshakeTimeout: Duration? = .seconds(30), sourceAddress: Endpoint? = nil,
                               allErrors: Bool = false, happyEyeballsDelay: Duration = .milliseconds(250),
                               resolver: any AddressResolver = SystemResolver(),
                               multipath: Bool = false) async throws -> TLSSocket {
        let socket = try await AsyncSocket.connect(to: endpoint, timeout: timeout, sourceAddress: sourceAddress,
                                                   allErrors: allErrors, happyEyeballsDelay: happyEyeballsDelay,
                                                   resolver: resolver, multipath: multipath)
        return try await upgrade(socket, context: context, serverName: serverName ?? endpoint.host,
                                 handshakeTimeout: handshakeTimeout)
    }

    /// Upgrades a connected socket to TLS (STARTTLS): runs the handshake on it, as the client or the server
    /// as `context` says. From then on use only the returned object.
    ///
    /// - Parameters:
    ///   - socket: a connected stream socket; nothing may be reading or writing it.
    ///   - context: a client or server ``TLSContext``.
    ///   - serverName: clients: the host name (or IP address) to verify and send as SNI (names only).
    ///     Required when the context verifies host names.
    ///   - handshakeTimeout: bounds the whole handshake (`SocketError` `ETIMEDOUT`); nil: no bound.
    /// - Throws: ``TLSError``, `SocketError`, `CancellationError`. The socket is closed when it throws.
    public static func upgrade(_ socket: AsyncSocket, context: TLSContext, serverName: String? = nil,
                               handshakeTimeout: Duration? = .seconds(30)) async throws -> TLSSocket {
        let configuration = context.configuration
        let client = configuration.role == .client
        let verifyHost = client && configuration.certificateVerification != .none && configuration.verifiesHostName
        do {
            if verifyHost && (serverName ?? "").isEmpty {
                throw socket.transportInvalidArgument(
                    "TLS handshake", "a server name is needed to verify the server's host name (or turn verifiesHostName off)")
            }
            let descriptor = await socket.descriptor
            let tls = try TLSSocket(socket: socket, context: context, descriptor: descriptor,
                                    timeout: await socket.timeout, serverName: client ? serverName : nil)
            try await tls.handshake(limit: handshakeTimeout, verifyHost: verifyHost)
            return tls
        } catch {
            await socket.close()
            throw error
        }
    }
}
