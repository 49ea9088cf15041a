extension AsyncServer {
    /// Accepts clients until the server is closed or the task is cancelled, running `handler` for each in a
    /// child task of a discarding task group; returns when every handler has finished.
    ///
    /// - The handler is isolated to its client (`isolated AsyncSocket`): its calls on `client` are plain calls on
    ///   the client's own actor, and it runs with the client's ``EventLoop`` as its preferred task executor, so
    ///   socket calls, readiness callbacks and resumptions all happen on the loop thread without a single hop.
    ///   (Synchronous members such as `client.close()` need no `await` inside the handler.) Each client is
    ///   closed when its handler returns.
    /// - Accepting runs on the server's ``eventLoop``, taking up to 16 queued connections per readiness report;
    ///   each client lives on the next loop of the server's ``group``, so the handlers of a server on
    ///   ``EventLoopGroup/shared`` use every core. Sockets a handler creates (an upstream `connect`, say) live on
    ///   its client's loop too, so a proxy's two sockets share a thread.
    /// - An error thrown by one handler goes to `onError` (if given) and does not affect the others. A
    ///   `CancellationError` thrown because `serve` is shutting down is not reported.
    /// - When the task is cancelled, or ``close()`` is called, accepting stops and the running handlers are
    ///   cancelled (their pending reads and writes throw `CancellationError`); `serve` returns once they are done.
    /// - Parameters:
    ///   - idleTimeout: set as each client's ``AsyncSocket/timeout``: a read or write that waits longer throws
    ///     `ETIMEDOUT`, which ends that handler.
    ///   - onError: called with a handler's error and its client.
    ///   - handler: serves one client.
    /// - Throws: an accept error that is not transient (see ``accepts``).
    public func serve(idleTimeout: Duration? = nil,
                      onError: (@Sendable (any Error, AsyncSocket) -> Void)? = nil,
                      handler: @escaping @Sendable (isolated AsyncSocket) async throws -> Void) async throws {
        let listener = self.listener
        // The accept loop runs on the listener's loop; each client is on the next loop of the server's
        // group (the listener placed it), and its handler prefers that loop.
        try await withTaskExecutorPreference(eventLoop) {
            try await withThrowingDiscardingTaskGroup { group in
                while let batch = try await listener.acceptBatch(upTo: Self.acceptBatchLimit) {
                    for client in batch {
                        group.addTask(executorPreference: client.eventLoop) {
                            await client.run(idleTimeout: idleTimeout, handler, onError: onError)
                        }
                    }
                }
                group.cancelAll()
            }
        }
    }
}

extension AsyncServer {
    /// The most connections `serve` accepts per readiness report (per hop to the listener): enough for one
    /// acceptor to keep up with connection churn (SwiftNIO accepts 4 per wake-up by default, and Vapor raised
    /// that to 256 after dropped connections), few enough that a burst holds the loop for a bounded time.
    static let acceptBatchLimit = 16
}

extension AsyncSocket {
    /// Runs a `serve` handler isolated to this socket, then closes it.
    fileprivate func run(idleTimeout: Duration?, _ handler: @Sendable (isolated AsyncSocket) async throws -> Void,
                         onError: (@Sendable (any Error, AsyncSocket) -> Void)?) async {
        if let idleTimeout { timeout = idleTimeout }
        do {
            try await handler(self)
        } catch is CancellationError where Task.isCancelled {
            // Shutting down (the server closed or `serve` cancelled): not a handler failure.
        } catch {
            onError?(error, self)
        }
        close()
    }
}
