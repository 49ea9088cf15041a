import AsyncSockets

extension AsyncServer {
    /// `AsyncServer/serve(idleTimeout:onError:handler:)` with TLS: accepts clients until the server is closed
    /// or the task is cancelled; each client's handshake runs inside that client's own child task, bounded by
    /// `handshakeTimeout`, so a silent or slow client never holds up accepting or other handshakes. The
    /// handler runs isolated to its ``TLSSocket`` on the client's event loop; the socket is closed (with
    /// `close_notify`) when it returns.
    ///
    /// - Parameters:
    ///   - context: a server ``TLSContext``.
    ///   - handshakeTimeout: bounds each handshake; a client that has not finished by then is dropped (and
    ///     reported to `onError`).
    ///   - idleTimeout: set as each client's ``TLSSocket/timeout``.
    ///   - onError: called with a failed handshake's or handler's error and the client's socket.
    ///   - handler: serves one client.
    /// - Throws: an accept error that is not transient.
    public func serveTLS(context: TLSContext, handshakeTimeout: Duration? = .seconds(10),
                         idleTimeout: Duration? = nil,
                         onError: (@Sendable (any Error, AsyncSocket) -> Void)? = nil,
                         handler: @escaping @Sendable (isolated TLSSocket) async throws -> Void) async throws {
        try await withTaskExecutorPreference(eventLoop) {
            try await withThrowingDiscardingTaskGroup { group in
                for try await client in accepts {
                    group.addTask(executorPreference: client.eventLoop) {
                        await TLSSocket.serve(client, context: context, handshakeTimeout: handshakeTimeout,
                                              idleTimeout: idleTimeout, handler, onError: onError)
                    }
                }
                group.cancelAll()
            }
        }
    }
}

extension TLSSocket {
    /// One client of `serveTLS`: the handshake, then the handler, then `close()`.
    fileprivate static func serve(_ client: AsyncSocket, context: TLSContext, handshakeTimeout: Duration?,
                                  idleTimeout: Duration?, _ handler: @Sendable (isolated TLSSocket) async throws -> Void,
                                  onError: (@Sendable (any Error, AsyncSocket) -> Void)?) async {
        if let idleTimeout { await client.setTimeout(idleTimeout) }
        let tls: TLSSocket
        do {
            tls = try await upgrade(client, context: context, handshakeTimeout: handshakeTimeout)
        } catch is CancellationError where Task.isCancelled {
            return
        } catch {
            onError?(error, client)
            return
        }
        await tls.run(handler, client: client, onError: onError)
    }

    private func run(_ handler: @Sendable (isolated TLSSocket) async throws -> Void, client: AsyncSocket,
                     onError: (@Sendable (any Error, AsyncSocket) -> Void)?) async {
        do {
            try await handler(self)
        } catch is CancellationError where Task.isCancelled {
            // Shutting down: not a handler failure.
        } catch {
            onError?(error, client)
        }
        await close()
    }
}
