#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CLibeventShim

// The waiting and syscall steps the extensions of issue 16 (read(until:), lines, sendFile, gather writes,
// descriptor passing) are built from: the steps of AsyncSocket.swift under these names, so that every call
// follows the same protocol (try the syscall first, wait only after it would block, hold the direction's FIFO
// operation lock for the whole call, count the timeout from the last progress) and the same fairness turn
// (``IOBudget``: a call that keeps finding data or room hands the loop back).
extension AsyncSocket {
    /// Takes the operation lock of `direction` (FIFO behind the holder and earlier waiters).
    @inline(__always)
    func lockForCall(_ direction: IODirection, _ operation: String) async throws {
        if !core.tryAcquire(direction) { try await lock(direction, operation) }
    }

    /// Throws `EBADF` once the socket is closed.
    func requireOpen(_ operation: String) throws {
        try checkOpen(operation)
    }

    /// Waits for readiness in `direction` (after a step found nothing to do, or its turn spent), applying
    /// ``timeout`` from `deadline` (nil: the clock starts now). Returns the deadline for the next wait of the
    /// same call.
    func waitForReadiness(_ direction: IODirection, _ operation: String, deadline: Deadline?) async throws -> Deadline? {
        try await waitFor(direction, operation, deadline: deadline)
    }

    /// One receive step under the read lock: runs `attempt` (a receive of at most `limit` bytes on the
    /// descriptor) and returns its count (0 at end of stream), or nil when the caller must wait and try again
    /// (see `tryReceive`: the read hint and the fairness turn apply).
    @inline(__always)
    func receiveStep(_ operation: String, upTo limit: Int, _ attempt: (Int32) -> Int) throws -> Int? {
        try tryReceive(operation, upTo: limit, attempt)
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

    /// Sends `bytes[offset...]` until all are sent, the socket is full or the turn is spent; returns the new
    /// offset. The caller holds the write lock.
    func sendStep(_ operation: String, _ bytes: ArraySlice<UInt8>, from offset: Int) throws -> Int {
        try trySend(bytes, from: offset, operation)
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
