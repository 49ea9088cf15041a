#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CLibeventShim

extension DatagramSocket {
    /// The largest `maxSize` a receive allocates for (16 MiB: more than any socket buffer holds); a larger
    /// `maxSize` is treated as this.
    static let largestReceive = 16 << 20

    /// The largest batch one readiness report drains (`recvmmsg`'s message count), and the batch memory's bound.
    static let batchMaximum = Int(AS_DATAGRAM_BATCH_MAX)
    static let batchMemoryLimit = 4 << 20

    /// Receives one datagram, waiting until one arrives (Python's `recvfrom`, through `recvmsg`).
    ///
    /// A datagram longer than `maxSize` is not cut silently: ``Datagram/isTruncated`` is true and ``Datagram/bytes``
    /// holds its first `maxSize` bytes (the rest is lost, as datagram sockets do). A zero-length datagram is
    /// returned as such.
    ///
    /// - Parameter maxSize: the most bytes to return; the default, ``defaultMaxSize``, fits any UDP datagram.
    /// - Throws: ``SocketError`` naming `receive` (`EINVAL` for a negative `maxSize`, `ETIMEDOUT` after
    ///   ``timeout``, `EBADF` after ``close()``; on a connected socket `ECONNREFUSED` once after an ICMP port
    ///   unreachable), or `CancellationError`.
    public func receive(maxSize: Int = DatagramSocket.defaultMaxSize) async throws -> Datagram {
        guard maxSize >= 0 else {
            throw SocketError.invalidArgument("receive(maxSize:)", "maxSize must not be negative, got \(maxSize)", address: peer)
        }
        if !core.tryAcquire(.read) { try await lock(.read, "receive") }
        defer { core.release(.read) }
        if let datagram = takePending(maxSize: maxSize) { return datagram }
        if turnIsSpent { await handBack() }
        var deadline: Deadline?
        while true {
            if let datagram = try tryReceive(maxSize: min(maxSize, Self.largestReceive)) {
                noteWork(1)
                return datagram
            }
            deadline = try await waitFor(.read, "receive", address: peer, deadline: deadline)
        }
    }

    /// One `recvmsg`: the datagram, or nil when none is queued (the caller waits and tries again). The caller
    /// holds the read lock. Every datagram clears the read hint: whether another one is queued is unknown,
    /// and the level-triggered read event reports it at the next poll if so (one `recvmsg` failing with
    /// `EAGAIN` fewer per request/response, as a short stream read; see `SocketCore`).
    @inline(__always)
    private func tryReceive(maxSize: Int) throws -> Datagram? {
        let fd = try openDescriptor("receive")
        if !mayTryRead { return nil }
        let scratch = core.loop.scratch
        var datagram: Datagram?
        let result = Syscall.attempt { () -> Int in
            var storage = sockaddr_storage()
            var length = UInt32(MemoryLayout<sockaddr_storage>.size)
            var truncated: Int32 = 0
            return withUnsafeMutableBytes(of: &storage) { address -> Int in
                if maxSize <= scratch.count {
                    // The scratch buffer is shared by every socket of the loop: copy out in this same synchronous
                    // step (see `AsyncSocket.read(upTo:)`).
                    let n = as_recv_datagram(fd, scratch.baseAddress, UInt(maxSize), address.baseAddress, &length, &truncated)
                    if n >= 0 {
                        datagram = Datagram(bytes: Array(UnsafeRawBufferPointer(rebasing: scratch[..<n])),
                                            sender: SocketAddress(received: address.baseAddress!, length: length),
                                            isTruncated: truncated != 0)
                    }
                    return n
                }
                var bytes = [UInt8](repeating: 0, count: maxSize)
                let n = bytes.withUnsafeMutableBytes {
                    as_recv_datagram(fd, $0.baseAddress, UInt(maxSize), address.baseAddress, &length, &truncated)
                }
                if n >= 0 {
                    bytes.removeLast(maxSize - n)
                    datagram = Datagram(bytes: bytes, sender: SocketAddress(received: address.baseAddress!, length: length),
                                        isTruncated: truncated != 0)
                }
                return n
            }
        }
        switch result {
        case .success:
            core.markDrained(.read)
            return datagram
        case .failure(let code) where code.wouldBlock:
            core.markDrained(.read)
            return nil
        case .failure(let code):
            throw SocketError(code: code.rawValue, operation: "receive", address: peer,
                              detail: "receiving a datagram of at most \(maxSize) bytes")
        }
    }

    /// The next datagram for ``datagrams``: one already received by an earlier batch, or the first of a new
    /// batch of at most `batchSize` (one `recvmmsg` on Linux). `nil` once the socket is closed.
    func nextBatched(maxSize: Int, batchSize: Int) async throws -> Datagram? {
        if !core.tryAcquire(.read) {
            do { try await lock(.read, "receive") } catch let error as SocketError where core.isClosed {
                _ = error
                return nil
            }
        }
        defer { core.release(.read) }
        if let datagram = takePending(maxSize: maxSize) { return datagram }
        if turnIsSpent { await handBack() }
        var deadline: Deadline?
        while true {
            if core.isClosed { return nil }
            if singleReceivesLeft > 0 {
                // The last batch found at most one datagram (request/response traffic): a plain recvmsg is
                // cheaper than a recvmmsg that tries 16 slots. Every `batchProbeInterval` datagrams a batch
                // probes again, so a flood that starts later is drained in batches within a few datagrams.
                if let datagram = try tryReceive(maxSize: min(maxSize, Self.largestReceive)) {
                    singleReceivesLeft -= 1
                    noteWork(1)
                    return datagram
                }
            } else if let received = try tryReceiveBatch(maxSize: maxSize, batchSize: batchSize) {
                if received <= 1 && batchSize > 1 { singleReceivesLeft = Self.batchProbeInterval }
                return takePending(maxSize: maxSize)
            }
            do {
                deadline = try await waitFor(.read, "receive", address: peer, deadline: deadline)
            } catch let error as SocketError where error.code == EBADF && core.isClosed {
                return nil
            }
        }
    }

    /// Datagrams the sequence receives one `recvmsg` at a time after a batch that found at most one, before it
    /// tries a batch again.
    static let batchProbeInterval = 16

    /// One batched receive into ``pending``: how many datagrams arrived (at least one), or nil when none was
    /// queued. A batch that came back short clears the read hint (the queue is most likely empty; the
    /// level-triggered event says otherwise).
    private func tryReceiveBatch(maxSize: Int, batchSize: Int) throws -> Int? {
        let fd = try openDescriptor("receive")
        if !mayTryRead { return nil }
        let slotSize = max(1, min(maxSize, Self.largestReceive))
        let count = max(1, min(batchSize, Self.batchMaximum, Self.batchMemoryLimit / slotSize))
        let buffers: DatagramBatchBuffers
        if let existing = receiveBuffers, existing.slotSize == slotSize, existing.count >= count {
            buffers = existing
        } else {
            buffers = DatagramBatchBuffers(slotSize: slotSize, count: count)
            receiveBuffers = buffers
        }
        for index in 0..<count {
            buffers.addressLengths[index] = UInt32(DatagramBatchBuffers.addressSize)
        }
        let result = Syscall.attempt {
            as_recv_datagrams(fd, buffers.slots.baseAddress, UInt(slotSize), Int32(count),
                              buffers.addresses.baseAddress, buffers.addressLengths.baseAddress,
                              buffers.lengths.baseAddress, buffers.truncated.baseAddress)
        }
        switch result {
        case .success(let received):
            let received = Int(received)
            if pending.capacity < received { pending.reserveCapacity(count) }
            for index in 0..<received {
                let start = buffers.slots.baseAddress! + index * slotSize
                let bytes = Array(UnsafeRawBufferPointer(start: start, count: min(buffers.lengths[index], slotSize)))
                pending.append(Datagram(bytes: bytes, sender: buffers.sender(index),
                                        isTruncated: buffers.truncated[index] != 0))
            }
            if received < count { core.markDrained(.read) }
            noteWork(received)
            return received > 0 ? received : nil
        case .failure(let code) where code.wouldBlock:
            core.markDrained(.read)
            return nil
        case .failure(let code):
            throw SocketError(code: code.rawValue, operation: "receive", address: peer,
                              detail: "receiving datagrams of at most \(maxSize) bytes")
        }
    }

    /// The oldest datagram a batch received and nobody took yet, cut to `maxSize` (and marked truncated)
    /// when longer: what the kernel would have done with this `maxSize`.
    func takePending(maxSize: Int) -> Datagram? {
        guard pendingHead < pending.count else { return nil }
        var datagram = pending[pendingHead]
        pendingHead += 1
        if pendingHead == pending.count {
            pending.removeAll(keepingCapacity: true)
            pendingHead = 0
        }
        if datagram.bytes.count > maxSize {
            datagram.bytes.removeLast(datagram.bytes.count - maxSize)
            datagram.isTruncated = true
        }
        return datagram
    }
}
