#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CLibeventShim

/// The listening descriptor of an ``AsyncServer``: an actor on the server's event loop that accepts.
actor Listener: LoopBound {
    nonisolated let core: SocketCore
    let address: SocketAddress
    /// Where accepted clients live: each goes to the group's next loop.
    nonisolated let group: EventLoopGroup

    nonisolated var unownedExecutor: UnownedSerialExecutor { core.executor }

    /// How many calls are inside ``accept()`` now (holding the accept turn or queued for it). For tests
    /// and diagnostics: it rises as soon as a call enters, before it first suspends.
    private(set) var pendingAccepts = 0
    /// How many times an accept failed for lack of descriptors or memory and backed off (since creation).
    private(set) var backoffCount = 0
    /// The last batch returned its clients after an accept found the queue empty (see ``acceptBatch(upTo:)``).
    private var drainedByLastBatch = false

    /// A listener on the group's next loop.
    init(descriptor: Int32, address: SocketAddress, group: EventLoopGroup) {
        self.core = SocketCore(fd: descriptor, loop: group.next())
        self.address = address
        self.group = group
    }

    deinit {
        // The last reference is gone (the server and every iterator of `accepts`), so nothing else touches the
        // core; a unix socket file still present is ours (``AsyncServer/close()`` removes it when closing).
        if let path = address.unixPath, !core.isClosed { unlink(path) }
        core.closeFromAnyThread()
    }

    /// The first backoff after `EMFILE`/`ENFILE`, doubled per failure up to ``maximumBackoff``.
    static let initialBackoff: Int64 = 10_000
    static let maximumBackoff: Int64 = 1_000_000

    /// Accepts one connection. `nil` once the server is closed or the calling task is cancelled.
    ///
    /// Concurrent callers queue in FIFO order (each gets a different connection). Transient errors are
    /// skipped: `ECONNABORTED`, `EINTR`, and the network errors that Linux's accept(2) passes on from the
    /// new connection (`EPROTO`, `ENETDOWN`, `ENOPROTOOPT`, `EHOSTDOWN`, `ENONET`, `EHOSTUNREACH`,
    /// `EOPNOTSUPP`, `ENETUNREACH`) and `EPERM` (a firewall rule refused the connection). Running out of
    /// descriptors or memory (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`) backs off from 10 ms, doubling up to
    /// 1 s, and tries again: the connection waits in the kernel's backlog meanwhile.
    func accept() async throws -> AsyncSocket? {
        try await acceptBatch(upTo: 1)?.first
    }

    /// Accepts at least one and at most `limit` connections (as ``accept()``): waits for the first when none
    /// is queued, then takes the ones already queued without waiting again, so one readiness report brings
    /// in a whole burst with one actor hop. `nil` once the server is closed or the task is cancelled.
    /// (An error after the first connection returns the batch; the next call meets the error again.)
    func acceptBatch(upTo limit: Int) async throws -> [AsyncSocket]? {
        pendingAccepts += 1
        defer { pendingAccepts -= 1 }
        switch await acquire(.read) {
        case .ready: break
        case .cancelled, .closed, .timedOut: return nil
        case .failed(let code): throw SocketError(code: code, operation: "accept", address: address)
        }
        defer { core.release(.read) }
        if drainedByLastBatch {
            // The last batch ended on EAGAIN: wait for a readiness report (at once if one came meanwhile)
            // instead of an accept that would only find the queue empty again.
            drainedByLastBatch = false
            switch await waitReady(.read) {
            case .ready, .timedOut: break
            case .cancelled, .closed: return nil
            case .failed(let code): throw SocketError(code: code, operation: "accept", address: address, detail: "event_add failed")
            }
        }
        var backoff = Self.initialBackoff
        var batch: [AsyncSocket] = []
        while batch.count < limit {
            let fd = core.fd
            if fd < 0 || Task.isCancelled { return batch.isEmpty ? nil : batch }
            var storage = sockaddr_storage()
            var length = UInt32(MemoryLayout<sockaddr_storage>.size)
            let code: Errno.Code
            switch Syscall.attempt({ withUnsafeMutablePointer(to: &storage) { as_accept(fd, $0, &length) } }) {
            case .success(let client):
                let peer = withUnsafeBytes(of: &storage) { SocketAddress(sockaddr: $0.baseAddress!, length: socklen_t(length)) }
                if address.family != .unix { AsyncSocket.setNoDelay(client) }
                batch.append(AsyncSocket(descriptor: client, loop: group.next(), peer: peer))
                continue
            case .failure(let failure):
                code = failure
            }
            if !batch.isEmpty, code.rawValue != ECONNABORTED {
                if code.wouldBlock {
                    core.markDrained(.read)
                    drainedByLastBatch = true
                }
                return batch  // no waiting, backing off or throwing with clients in hand
            }
            if code.wouldBlock {
                core.markDrained(.read)
                switch await waitReady(.read) {
                case .ready, .timedOut: continue
                case .cancelled, .closed: return nil
                case .failed(let code): throw SocketError(code: code, operation: "accept", address: address, detail: "event_add failed")
                }
            }
            switch code.acceptFailure {
            case .skip:
                continue
            case .backOff:
                backoffCount += 1
                switch await sleepOnLoop(microseconds: backoff) {
                case .ready, .timedOut:
                    backoff = min(backoff * 2, Self.maximumBackoff)
                    continue
                case .cancelled, .closed: return nil
                case .failed(let code): throw SocketError(code: code, operation: "accept", address: address, detail: "event_add failed")
                }
            case .fail:
                throw SocketError(code: code.rawValue, operation: "accept", address: address)
            }
        }
        return batch
    }
}
