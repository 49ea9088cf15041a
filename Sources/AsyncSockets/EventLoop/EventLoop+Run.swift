extension EventLoop {
    /// Runs `body` with this loop as its preferred task executor: the body's own code, and the child tasks it
    /// creates, run on the loop thread, so calls into sockets on this loop need no thread hop.
    ///
    /// Use it for client code that drives many socket calls in a row:
    /// ```swift
    /// try await EventLoop.shared.run {
    ///     let socket = try await AsyncSocket.connect(to: Endpoint(host: "example.com", port: 80))
    ///     …
    /// }
    /// ```
    /// Do not block inside `body` (no blocking syscalls, no long computations): it would stall every socket
    /// on the loop.
    ///
    /// Call it from nonisolated code. `body` keeps the caller's isolation: called from `@MainActor` code (the
    /// top level of a `main.swift` included), its code runs on the main actor and every socket call hops to
    /// the loop and back. Put the work in a nonisolated function and call that from the body instead. ``AsyncServer/serve(idleTimeout:onError:handler:)`` does this for its handlers already.
    public func run<T, Failure: Error>(isolation: isolated (any Actor)? = #isolation,
                                       _ body: () async throws(Failure) -> T) async throws(Failure) -> T {
        try await withTaskExecutorPreference(self, isolation: isolation, operation: body)
    }
}
