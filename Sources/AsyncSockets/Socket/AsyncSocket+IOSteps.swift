#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CLibeventShim

// The waiting and syscall steps the extensions of issue 16 (read(until:), lines, sendFile, gather writes,
// descriptor passing) are built from. They follow the same protocol as the steps of AsyncSocket.swift (which
// are private to that file): try the syscall first, wait only after it would block, hold the direction's FIFO
// operation lock for the whole call, count the timeout from the last progress.
extension AsyncSocket {
    /// Takes the operation lock of `direction` (FIFO behind the holder and earlier waiters).
    @inline(__always)
    func lockForCall(_ direction: IODirection, _ operation: String) async throws {
        if core.tryAcquire(direction) { return }
        switch await acquire(direction) {
        case .ready: return
        case .cancelled: throw CancellationError()
        case .closed: throw SocketError.closed(operation, address: peer)
        case .timedOut: throw SocketError.timedOut(operation, address: peer, after: timeout)
        case .failed(let code): throw SocketError(code: code, operation: operation, address: peer)
        }
    }

    /// Throws `EBADF` once the socket is closed.
    func requireOpen(_ operation: String) throws {
        if core.isClosed { throw SocketError.closed(operation, address: peer) }
    }

    /// Waits for readiness in `direction` (after a syscall found nothing to do), applying ``timeout`` from
    /// `deadline` (nil: the clock starts now). Returns the deadline for the next wait of the same call.
    func waitForReadiness(_ direction: IODirection, _ operation: String, deadline: Deadline?) async throws -> Deadline? {
        var micros: Int64 = -1
        var deadline = deadline
        if let timeout {
            let end = deadline ?? Deadline.after(timeout)
            deadline = end
            micros = end.remainingMicroseconds
            if micros == 0 { throw SocketError.timedOut(operation, address: peer, after: timeout) }
        }
        switch await waitReady(direction, timeoutMicroseconds: micros) {
        case .ready: return deadline
        case .timedOut:
            // libevent's timers may fire up to a clock tick early (see AsyncSocket.waitFor).
            if let deadline, deadline.remainingMicroseconds > 0 { return deadline }
            throw SocketError.timedOut(operation, address: peer, after: timeout)
        case .cancelled: throw CancellationError()
        case .closed: throw SocketError.closed(operation, address: peer)
        case .failed(let code): throw SocketError(code: code, operation: operation, address: peer, detail: "event_add failed")
        }
    }

    /// One receive step under the read lock: runs `attempt` (a receive of at most `limit` bytes on the
    /// descriptor) and returns its count (0 at end of stream), or nil when the caller must wait and try again.
    /// Keeps the read hint as `AsyncSocket.tryReceive` does: no report since the socket was found drained means
    /// no syscall (except with a zero timeout), and a short read marks the socket drained.
    @inline(__always)
    func receiveStep(_ operation: String, upTo limit: Int, _ attempt: (Int32) -> Int) throws -> Int? {
        let fd = core.fd
        guard fd >= 0 else { throw SocketError.closed(operation, address: peer) }
        if !core.readHint, timeout.map({ $0 > .zero }) ?? true { return nil }
        switch try Syscall.nonBlocking(operation, address: peer, { attempt(fd) }) {
        case .processed(let n):
            if n < limit { core.markDrained(.read) }
            return n
        case .wouldBlock:
            core.markDrained(.read)
            return nil
        }
    }

    /// Receives what the socket has (at most one scratch buffer) into ``readAhead``: the count (0 at end of
    /// stream), or nil when the caller must wait. The caller holds the read lock.
    func receiveIntoReadAhead(_ operation: String) throws -> Int? {
        let scratch = core.loop.scratch
        return try receiveStep(operation, upTo: scratch.count) { fd in
            // Copied out of the loop's shared scratch buffer in the same synchronous step as the recv.
            let n = as_recv(fd, scratch.baseAddress, UInt(scratch.count))
            if n > 0 { readAhead.append(UnsafeRawBufferPointer(rebasing: scratch[..<n])) }
            return n
        }
    }

    /// Sends `bytes[offset...]` until all are sent or the socket is full; returns the new offset. The caller
    /// holds the write lock.
    func sendStep(_ operation: String, _ bytes: ArraySlice<UInt8>, from offset: Int) throws -> Int {
        var offset = offset
        while offset < bytes.endIndex {
            let fd = core.fd
            guard fd >= 0 else { throw SocketError.closed(operation, address: peer) }
            let result = try Syscall.nonBlocking(operation, address: peer) {
                bytes[offset...].withUnsafeBytes { as_send(fd, $0.baseAddress, UInt($0.count)) }
            }
            guard case .processed(let n) = result else {
                core.markDrained(.write)
                return offset
            }
            offset += n
        }
        return offset
    }

    /// Writes all of `bytes` under the write lock the caller holds, waiting for room as needed.
    func sendAll(_ operation: String, _ bytes: ArraySlice<UInt8>) async throws {
        var offset = try sendStep(operation, bytes, from: bytes.startIndex)
        var deadline: Deadline?
        while offset < bytes.endIndex {
            deadline = try await waitForReadiness(.write, operation, deadline: deadline)
            let next = try sendStep(operation, bytes, from: offset)
            if next != offset { deadline = nil }  // progress: the timeout counts from here again
            offset = next
        }
    }

    /// Throws `EOPNOTSUPP` unless this is a unix-domain socket (`getsockname`), for calls that exist only there.
    func requireUnixDomain(_ operation: String) throws {
        try requireOpen(operation)
        let domain = as_socket_domain(core.fd)
        guard domain == AF_UNIX else {
            throw SocketError(code: EOPNOTSUPP, operation: operation, address: peer,
                              detail: "only unix-domain sockets support this; this socket's family is \(domain == AF_INET ? "IPv4" : domain == AF_INET6 ? "IPv6" : "\(domain)")")
        }
    }
}
