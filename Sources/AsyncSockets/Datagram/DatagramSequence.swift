/// The datagrams a ``DatagramSocket`` receives, as an `AsyncSequence` (``DatagramSocket/datagrams``).
///
/// Each readiness report is drained in batches: up to `batchSize` datagrams per system call (`recvmmsg` on
/// Linux, `recvmsg` in a loop elsewhere), handed out one by one. When batches find only one datagram
/// (request/response traffic), the next 16 are received with a plain `recvmsg`, which costs less, and then a
/// batch is tried again. Datagrams from one sender come out in the order
/// they were received, each exactly once. Datagrams a batch received and no `next()` took yet stay with the
/// socket: the next `next()`, from any iterator, or ``DatagramSocket/receive(maxSize:)`` gets them, so breaking
/// out of a loop loses nothing.
///
/// Finishes (nil) when the socket is closed (promptly, also for a pending `next()`); throws
/// `CancellationError` when the iterating task is cancelled and ``SocketError`` for a receive error (after
/// which the socket is still usable and a new iteration may start). Several iterators may be used at once:
/// they take turns in FIFO order and each datagram goes to exactly one.
public struct DatagramSequence: AsyncSequence, Sendable {
    /// Each element is one received datagram.
    public typealias Element = Datagram
    /// Receive errors and cancellation end the iteration.
    public typealias Failure = any Error

    let socket: DatagramSocket
    let maxSize: Int
    let batchSize: Int

    /// Iterates the datagrams.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let socket: DatagramSocket
        let maxSize: Int
        let batchSize: Int

        /// The next datagram, or nil once the socket is closed.
        public mutating func next() async throws -> Datagram? {
            try await socket.nextBatched(maxSize: maxSize, batchSize: batchSize)
        }

        /// The next datagram, or nil once the socket is closed; runs in the caller's isolation (what
        /// `for try await` calls), so that stepping the iterator costs no executor switch of its own.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws -> Datagram? {
            try await socket.nextBatched(maxSize: maxSize, batchSize: batchSize)
        }
    }

    /// An iterator over the datagrams.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(socket: socket, maxSize: maxSize, batchSize: batchSize)
    }
}

extension DatagramSocket {
    /// The batch size of ``datagrams``: datagrams drained per system call at most.
    public static let defaultBatchSize = 16

    /// Every datagram this socket receives, for `for try await datagram in socket.datagrams`, with
    /// ``defaultMaxSize`` and ``defaultBatchSize`` (see ``DatagramSequence``).
    public nonisolated var datagrams: DatagramSequence {
        DatagramSequence(socket: self, maxSize: Self.defaultMaxSize, batchSize: Self.defaultBatchSize)
    }

    /// Every datagram this socket receives, each of at most `maxSize` bytes (longer ones are marked
    /// ``Datagram/isTruncated``), drained up to `batchSize` per system call (clamped to 1...64; batch memory
    /// is bounded to 4 MiB, which lowers the batch for a large `maxSize`).
    ///
    /// - Throws: ``SocketError`` with `EINVAL` for a negative `maxSize` or a `batchSize` below 1.
    public nonisolated func datagrams(maxSize: Int, batchSize: Int = DatagramSocket.defaultBatchSize) throws -> DatagramSequence {
        guard maxSize >= 0 else {
            throw SocketError.invalidArgument("datagrams(maxSize:batchSize:)", "maxSize must not be negative, got \(maxSize)")
        }
        guard batchSize >= 1 else {
            throw SocketError.invalidArgument("datagrams(maxSize:batchSize:)", "batchSize must be at least 1, got \(batchSize)")
        }
        return DatagramSequence(socket: self, maxSize: maxSize, batchSize: min(batchSize, Self.batchMaximum))
    }
}
