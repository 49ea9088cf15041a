/// The clients of an ``AsyncServer``, as an `AsyncSequence` (``AsyncServer/accepts``).
///
/// Yields each connected ``AsyncSocket`` as it is accepted; accepts only when `next()` is called
/// (backpressure through the kernel's backlog). Finishes (nil) when the server is closed or the iterating
/// task is cancelled; throws ``SocketError`` for an accept error that is not transient.
/// Iterators may be used from several tasks at once: they take turns in FIFO order.
public struct AcceptSequence: AsyncSequence, Sendable {
    /// Each element is a connected client.
    public typealias Element = AsyncSocket
    /// Accept errors that end the iteration.
    public typealias Failure = any Error

    let listener: Listener

    /// Iterates the clients.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let listener: Listener

        /// The next client, or nil when the server is closed or the task cancelled.
        public mutating func next() async throws -> AsyncSocket? {
            try await listener.accept()
        }
    }

    /// An iterator over the clients.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(listener: listener)
    }
}
