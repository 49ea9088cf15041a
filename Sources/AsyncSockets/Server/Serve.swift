extension AsyncServer {
    /// Accepts clients until the server is closed or the task is cancelled, running `handler` for each in a
    /// child task of a discarding task group; returns when every handler has finished.
    ///
    /// - Handlers run with the client's ``EventLoop`` as their preferred task executor, so their socket calls
    ///   run on the loop thread without hopping threads. Each client is closed when its handler returns.
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
                      handler: @escaping @Sendable (AsyncSocket) async throws -> Void) async throws {
        let loop = eventLoop
        try await withTaskExecutorPreference(loop) {
            try await withThrowingDiscardingTaskGroup { group in
                for try await client in accepts {
                    group.addTask(executorPreference: client.eventLoop) {
                        do {
                            if let idleTimeout { await client.setTimeout(idleTimeout) }
                            try await handler(client)
                        } catch is CancellationError where Task.isCancelled {
                            // Shutting down (the server closed or `serve` cancelled): not a handler failure.
                        } catch {
                            onError?(error, client)
                        }
                        await client.close()
                    }
                }
                group.cancelAll()
            }
        }
    }
}
