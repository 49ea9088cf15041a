extension AsyncSocket {
    /// The socket's input as lines of text: an `AsyncSequence` of `String`s without their `\n` or `\r\n`,
    /// ending at end of stream. A last line without a newline is still yielded; an empty line is `""`.
    ///
    /// Lines are at most ``defaultMaximumRecordLength`` bytes long (newline included); use
    /// ``lines(maxLength:)`` for another limit. A longer line ends the iteration with ``SocketError`` `EMSGSIZE`
    /// (its bytes stay buffered). Bytes that are not UTF-8 are decoded as U+FFFD.
    ///
    /// Each step is one buffered read under the socket's read lock (see ``read(until:maxLength:)``): bytes
    /// after a line stay buffered for the next step or for any other read. Cancelling the iterating task
    /// makes the pending step throw `CancellationError`; ``close()`` makes it throw ``SocketError`` `EBADF`.
    /// After an error or the end, the iterator returns nil.
    public nonisolated var lines: Lines { Lines(socket: self, maxLength: Self.defaultMaximumRecordLength) }

    /// ``lines`` with lines of at most `maxLength` bytes (newline included); a `maxLength` below 1 makes the
    /// first step throw `EINVAL`.
    public nonisolated func lines(maxLength: Int) -> Lines { Lines(socket: self, maxLength: maxLength) }

    /// The lines of a socket's input (see ``AsyncSocket/lines``).
    public struct Lines: AsyncSequence, Sendable {
        /// Each line, without its `\n` or `\r\n`.
        public typealias Element = String
        /// What a step may throw: ``SocketError``, `CancellationError`.
        public typealias Failure = any Error

        let socket: AsyncSocket
        let maxLength: Int

        /// Creates the iterator.
        public func makeAsyncIterator() -> Iterator { Iterator(socket: socket, maxLength: maxLength) }

        /// Reads the next line from the socket on each step.
        public struct Iterator: AsyncIteratorProtocol {
            let socket: AsyncSocket
            let maxLength: Int
            var finished = false

            /// The next line, or nil at end of stream (and after an error).
            public mutating func next() async throws -> String? {
                if finished { return nil }
                do {
                    guard let line = try await socket.readLine(maxLength: maxLength) else {
                        finished = true
                        return nil
                    }
                    return line
                } catch {
                    finished = true
                    throw error
                }
            }
        }
    }

    /// One step of ``lines``: the next line, or nil at end of stream with nothing buffered.
    func readLine(maxLength: Int) async throws -> String? {
        let operation = "lines"
        guard maxLength > 0 else {
            throw SocketError.invalidArgument(operation, "maxLength must be positive, got \(maxLength)", address: peer)
        }
        try await lockForCall(.read, operation)
        defer { core.release(.read) }
        guard let end = try await bufferRecord(ending: Self.newline, maxLength: maxLength, operation) else {
            return readAhead.isEmpty ? nil : readAhead.takeLine(readAhead.count, newline: false)
        }
        return readAhead.takeLine(end, newline: true)
    }

    static let newline: [UInt8] = [UInt8(ascii: "\n")]
}
