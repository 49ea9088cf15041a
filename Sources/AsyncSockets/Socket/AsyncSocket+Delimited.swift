#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CLibeventShim

extension AsyncSocket {
    /// The default `maxLength` of ``read(until:maxLength:)`` and the longest line ``lines`` yields: 64 KiB.
    public static let defaultMaximumRecordLength = 65536

    /// Reads up to and including the first occurrence of `delimiter` (asyncio's `readuntil`), waiting as long
    /// as it takes (and as ``timeout`` allows); the delimiter may arrive split across any number of reads.
    ///
    /// Bytes received after the delimiter stay in the socket's read-ahead buffer: the next
    /// ``read(until:maxLength:)``, ``lines``, ``read(upTo:)``, ``read(into:upTo:)`` or ``read(exactly:)``
    /// returns them first, so mixing these calls never loses or reorders a byte.
    ///
    /// - Parameters:
    ///   - delimiter: the bytes that end a record, such as `Array("\r\n\r\n".utf8)`; not empty.
    ///   - maxLength: the longest record accepted, delimiter included (at least the delimiter's length).
    /// - Returns: the record, ending with `delimiter`.
    /// - Throws: ``IncompleteReadError`` when the stream ends first (with every byte that did arrive, taken out
    ///   of the buffer); ``SocketError`` with `EMSGSIZE` when `maxLength` bytes arrived without the delimiter
    ///   (asyncio's `LimitOverrunError`: the bytes stay buffered for the next read); `EINVAL` for an empty
    ///   delimiter or a `maxLength` shorter than it; otherwise as ``read(upTo:)``.
    public func read(until delimiter: [UInt8], maxLength: Int = AsyncSocket.defaultMaximumRecordLength) async throws -> [UInt8] {
        let operation = "read(until:)"
        guard !delimiter.isEmpty else {
            throw SocketError.invalidArgument(operation, "the delimiter is empty", address: peer)
        }
        guard maxLength >= delimiter.count else {
            throw SocketError.invalidArgument(operation, "maxLength \(maxLength) is shorter than the \(delimiter.count)-byte delimiter", address: peer)
        }
        try await lockForCall(.read, operation)
        defer { core.release(.read) }
        guard let end = try await bufferRecord(ending: delimiter, maxLength: maxLength, operation) else {
            throw IncompleteReadError(partial: readAhead.takeAll(), delimiter: delimiter, maxLength: maxLength)
        }
        return readAhead.take(end)
    }

    /// Receives into ``readAhead`` until it holds `delimiter` within its first `maxLength` bytes; returns the
    /// offset just past the delimiter, or nil at end of stream. Throws `EMSGSIZE` when `maxLength` bytes are
    /// buffered without it (they stay buffered). The caller holds the read lock.
    func bufferRecord(ending delimiter: [UInt8], maxLength: Int, _ operation: String) async throws -> Int? {
        var searched = 0
        var deadline: Deadline?
        while true {
            if let end = readAhead.endOfFirst(delimiter, from: searched, limit: maxLength) { return end }
            if readAhead.count >= maxLength {
                throw SocketError(code: EMSGSIZE, operation: operation, address: peer,
                                  detail: "no delimiter within maxLength \(maxLength) bytes (the bytes stay buffered for the next read)")
            }
            // A delimiter split across receives starts at most delimiter.count - 1 bytes before the end.
            searched = max(0, readAhead.count - delimiter.count + 1)
            guard let n = try receiveIntoReadAhead(operation) else {
                deadline = try await waitForReadiness(.read, operation, deadline: deadline)
                continue
            }
            if n == 0 { return nil }
            deadline = nil  // progress: the timeout counts from here again
        }
    }

    /// ``read(exactly:)`` when the read-ahead buffer holds bytes: those first, then the socket. The caller
    /// holds the read lock.
    func readExactlyAfterReadAhead(_ count: Int) async throws -> [UInt8] {
        var bytes = readAhead.take(count)
        let scratch = core.loop.scratch
        var deadline: Deadline?
        while bytes.count < count {
            let limit = min(count - bytes.count, scratch.count)
            guard let n = try receiveStep("read", upTo: limit, { fd in
                let n = as_recv(fd, scratch.baseAddress, UInt(limit))
                if n > 0 { bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[..<n])) }
                return n
            }) else {
                deadline = try await waitForReadiness(.read, "read", deadline: deadline)
                continue
            }
            if n == 0 { throw IncompleteReadError(partial: bytes, expected: count) }
            deadline = nil
        }
        return bytes
    }
}

extension IncompleteReadError {
    /// The error of ``AsyncSocket/read(until:maxLength:)``: the stream ended before `delimiter`.
    init(partial: [UInt8], delimiter: [UInt8], maxLength: Int) {
        self.init(partial: partial, expected: maxLength)
        self.delimiter = delimiter
    }
}
