#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CLibeventShim

extension DatagramSocket {
    /// Sends `bytes` as one datagram to `address` (Python's `sendto`): all of it, or an error. Waits for room
    /// when the socket's send buffer is full (`EAGAIN`), bounded by ``timeout``.
    ///
    /// A datagram that was sent may still be lost on its way, as datagrams are.
    /// - Throws: ``SocketError`` naming `send`, the address and the size: `EMSGSIZE` when the datagram is too
    ///   long (over 65,507 bytes on IPv4, 65,527 on IPv6), `EACCES` for a broadcast address without `broadcast`,
    ///   `EHOSTUNREACH`/`ENETUNREACH`, `ENOBUFS`, `EAFNOSUPPORT` for an address of another family, `EISCONN`
    ///   on some systems when connected, `ETIMEDOUT` after ``timeout``, `EBADF` after ``close()``; or
    ///   `CancellationError`. Only this call fails: the socket stays usable.
    public func send(_ bytes: [UInt8], to address: SocketAddress) async throws {
        try await sendOne(bytes, to: address)
    }

    /// Sends `bytes` as one datagram to the peer of a connected socket (see ``connect(to:)``).
    ///
    /// - Throws: as ``send(_:to:)``; `EDESTADDRREQ` (or `ENOTCONN`) when not connected, and `ECONNREFUSED` once
    ///   after the peer's port was found closed (an ICMP error; the socket stays usable).
    public func send(_ bytes: [UInt8]) async throws {
        try await sendOne(bytes, to: nil)
    }

    @inline(__always)
    private func sendOne(_ bytes: [UInt8], to address: SocketAddress?) async throws {
        if !core.tryAcquire(.write) { try await lock(.write, "send") }
        defer { core.release(.write) }
        if turnIsSpent { await handBack() }
        var deadline: Deadline?
        while try !trySend(bytes, to: address) {
            deadline = try await waitFor(.write, "send", address: address ?? peer, deadline: deadline)
        }
        noteWork(1)
    }

    /// One `sendto`: true when sent, false when the send buffer is full (the write hint is cleared).
    @inline(__always)
    private func trySend(_ bytes: [UInt8], to address: SocketAddress?) throws -> Bool {
        let fd = try openDescriptor("send", address: address)
        let result = Syscall.attempt { () -> Int in
            bytes.withUnsafeBytes { buffer in
                if let address {
                    return address.withSockAddr { name, length in
                        as_send_datagram(fd, buffer.baseAddress, UInt(buffer.count), name, UInt32(length))
                    }
                }
                return as_send_datagram(fd, buffer.baseAddress, UInt(buffer.count), nil, 0)
            }
        }
        switch result {
        case .success: return true
        case .failure(let code) where code.wouldBlock:
            core.markDrained(.write)
            return false
        case .failure(let code):
            throw SocketError(code: code.rawValue, operation: "send", address: address ?? peer,
                              detail: "a datagram of \(bytes.count) bytes")
        }
    }

    /// Sends several datagrams, each to its own address, in as few system calls as possible (`sendmmsg` on
    /// Linux, up to 64 per call; `sendto` in a loop elsewhere). Returns once every datagram is sent, waiting for
    /// room as ``send(_:to:)`` does. The batch holds the socket's write side throughout: other sends wait.
    ///
    /// - Throws: as ``send(_:to:)``, for the first datagram that fails: the error names its address, its size
    ///   and its position in the batch; the datagrams before it were sent, the ones after it were not.
    public func send(batch datagrams: [OutgoingDatagram]) async throws {
        if datagrams.isEmpty { _ = try openDescriptor("send"); return }
        if !core.tryAcquire(.write) { try await lock(.write, "send") }
        defer { core.release(.write) }
        let buffers: DatagramAddressBuffers
        if let existing = sendBuffers {
            buffers = existing
        } else {
            buffers = DatagramAddressBuffers()
            sendBuffers = buffers
        }
        var next = 0
        var deadline: Deadline?
        while next < datagrams.count {
            if turnIsSpent { await handBack() }
            let end = min(datagrams.count, next + DatagramAddressBuffers.count)
            let sent = try trySendBatch(datagrams, next..<end, buffers)
            if sent == 0 {
                let failed = datagrams[next]
                deadline = try await waitFor(.write, "send", address: failed.address ?? peer, deadline: deadline)
                continue
            }
            deadline = nil  // progress: the timeout counts from here again
            next += sent
            noteWork(sent)
        }
    }

    /// One `sendmmsg` of `range`: how many datagrams were sent (0 when the send buffer is full: the write hint
    /// is cleared). Throws for the first datagram of the range when that one fails.
    private func trySendBatch(_ datagrams: [OutgoingDatagram], _ range: Range<Int>,
                              _ buffers: DatagramAddressBuffers) throws -> Int {
        let fd = try openDescriptor("send", address: datagrams[range.lowerBound].address)
        for index in range {
            buffers.store(datagrams[index].address, at: index - range.lowerBound)
        }
        let result = Self.withBytePointers(datagrams, range, range.lowerBound, buffers) {
            Syscall.attempt {
                as_send_datagrams(fd, buffers.bytes.baseAddress, buffers.lengths.baseAddress,
                                  buffers.addressPointers.baseAddress, buffers.addressLengths.baseAddress,
                                  Int32(range.count))
            }
        }
        switch result {
        case .success(let sent): return Int(sent)
        case .failure(let code) where code.wouldBlock:
            core.markDrained(.write)
            return 0
        case .failure(let code):
            let failed = datagrams[range.lowerBound]
            throw SocketError(code: code.rawValue, operation: "send", address: failed.address ?? peer,
                              detail: "datagram \(range.lowerBound + 1) of \(datagrams.count) in the batch, \(failed.bytes.count) bytes; the \(range.lowerBound) before it were sent")
        }
    }

    /// Calls `body` with `buffers.bytes`/`lengths` pointing at the bytes of `datagrams[range]`: nested
    /// `withUnsafeBytes`, one per datagram (at most 64 deep), so no bytes are copied and every pointer stays
    /// valid during `body`.
    private static func withBytePointers<R>(_ datagrams: [OutgoingDatagram], _ range: Range<Int>, _ index: Int,
                                            _ buffers: DatagramAddressBuffers, _ body: () -> R) -> R {
        if index == range.upperBound { return body() }
        return datagrams[index].bytes.withUnsafeBytes { bytes in
            buffers.bytes[index - range.lowerBound] = bytes.baseAddress
            buffers.lengths[index - range.lowerBound] = UInt(bytes.count)
            return withBytePointers(datagrams, range, index + 1, buffers, body)
        }
    }
}
