#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CLibeventShim

extension AsyncSocket {
    /// Sends the bytes of a file (Python's `socket.sendfile`): `sendfile(2)` straight from the file's descriptor
    /// to the socket, without copying through this process, waiting for room as often as needed.
    ///
    /// Where `sendfile` cannot be used (a descriptor it does not take, such as a pipe, or a system without it)
    /// the bytes are read and written instead, with `pread` (or `read` for a descriptor that cannot seek, when
    /// `offset` is 0). The file's own offset is never moved, except by those `read`s. Reading the file blocks the
    /// loop thread as long as the disk takes (as `sendfile` itself does): use it for local files.
    ///
    /// Like ``write(_:)-([UInt8])``, it holds the socket's write side until done: other writes never come in
    /// between. A long transfer to a fast peer hands the loop to other work every few MiB.
    ///
    /// - Parameters:
    ///   - descriptor: an open file descriptor (a regular file, or anything readable); not closed by this call.
    ///   - offset: where in the file to start.
    ///   - count: how many bytes to send; `nil` sends to the end of the file.
    /// - Returns: the bytes sent: `count`, or fewer when the file ended first.
    /// - Throws: ``SocketError``: `EINVAL` for a negative descriptor, offset or count; the file's errors (`EBADF`,
    ///   `EIO`, `ESPIPE` for a non-zero offset in a pipe), named `sendFile`; otherwise as ``write(_:)-([UInt8])``.
    ///   When it throws, an unknown number of bytes may have been sent.
    public func sendFile(_ descriptor: Int32, offset: Int = 0, count: Int? = nil) async throws -> Int {
        let operation = "sendFile"
        guard descriptor >= 0 else { throw SocketError.invalidArgument(operation, "the file descriptor is \(descriptor)", address: peer) }
        guard offset >= 0 else { throw SocketError.invalidArgument(operation, "offset must not be negative, got \(offset)", address: peer) }
        if let count, count < 0 { throw SocketError.invalidArgument(operation, "count must not be negative, got \(count)", address: peer) }
        try await lockForCall(.write, operation)
        defer { core.release(.write) }
        try requireOpen(operation)
        let total = count ?? Int.max
        var position = Int64(offset)
        var sent = 0
        var sinceHandOver = 0
        var deadline: Deadline?
        while sent < total {
            let fd = core.fd
            guard fd >= 0 else { throw SocketError.closed(operation, address: peer) }
            let chunk = min(total - sent, Self.sendFileChunk)
            switch Syscall.attempt({ as_sendfile(fd, descriptor, &position, UInt(chunk)) }) {
            case .success(0):
                return sent  // end of file
            case .success(let n):
                sent += n
                sinceHandOver += n
                deadline = nil  // progress: the timeout counts from here again
                if sinceHandOver >= Self.sendFileHandOver {
                    // Fair to the loop's other sockets: a fast peer could keep this call busy indefinitely.
                    sinceHandOver = 0
                    await Task.yield()
                }
            case .failure(let code) where code.wouldBlock:
                core.markDrained(.write)
                sinceHandOver = 0
                deadline = try await waitForReadiness(.write, operation, deadline: deadline)
            case .failure(let code) where sent == 0 && Self.sendFileUnsupported.contains(code.rawValue):
                return try await copyFile(descriptor, offset: offset, count: total, operation)
            case .failure(let code):
                throw SocketError(code: code.rawValue, operation: operation, address: peer)
            }
        }
        return sent
    }

    /// The most bytes one `sendfile` call is asked for (Linux sends at most 2 GiB minus a page anyway).
    static let sendFileChunk = 1 << 30
    /// Bytes ``sendFile(_:offset:count:)`` sends without waiting before it lets the loop run other work.
    static let sendFileHandOver = 4 << 20
    /// The errors with which `sendfile` says it cannot serve this descriptor (or does not exist).
    static let sendFileUnsupported: Set<Int32> = [EINVAL, ENOSYS, EOPNOTSUPP, ESPIPE]

    /// The fallback of ``sendFile(_:offset:count:)``: read a chunk, write it, until `count` bytes or end of file.
    private func copyFile(_ descriptor: Int32, offset: Int, count: Int, _ operation: String) async throws -> Int {
        var buffer = [UInt8](repeating: 0, count: Self.copyChunk)
        var position = offset
        var seekable = true
        var sent = 0
        while sent < count {
            let limit = min(count - sent, buffer.count)
            let at = position
            let readMode = seekable
            var result = buffer.withUnsafeMutableBytes { raw in
                Syscall.attempt {
                    readMode ? as_pread(descriptor, raw.baseAddress, UInt(limit), Int64(at))
                             : as_read(descriptor, raw.baseAddress, UInt(limit))
                }
            }
            if case .failure(let code) = result, code.rawValue == ESPIPE, seekable, position == 0 {
                seekable = false  // a pipe or a socket: read it from where it is
                result = buffer.withUnsafeMutableBytes { raw in
                    Syscall.attempt { as_read(descriptor, raw.baseAddress, UInt(limit)) }
                }
            }
            let n: Int
            switch result {
            case .success(let value): n = value
            case .failure(let code):
                throw SocketError(code: code.rawValue, operation: operation, address: peer,
                                  detail: "reading descriptor \(descriptor) at offset \(position)")
            }
            if n == 0 { break }
            try await sendAll(operation, buffer[..<n])
            sent += n
            position += n
        }
        return sent
    }

    /// The chunk size of the read-and-write fallback.
    static let copyChunk = 64 * 1024
}
