#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CLibeventShim

/// The listening descriptor of an ``AsyncServer``: an actor on the server's event loop that accepts.
actor Listener {
    let core: SocketCore
    let address: SocketAddress

    nonisolated var unownedExecutor: UnownedSerialExecutor { core.loop.asUnownedSerialExecutor() }

    init(descriptor: Int32, address: SocketAddress, loop: EventLoop) {
        self.core = SocketCore(fd: descriptor, loop: loop)
        self.address = address
    }

    deinit {
        core.closeFromAnyThread()
    }

    /// The first backoff after `EMFILE`/`ENFILE`, doubled per failure up to ``maximumBackoff``.
    static let initialBackoff: Int64 = 10_000
    static let maximumBackoff: Int64 = 1_000_000

    /// Accepts one connection. `nil` once the server is closed or the calling task is cancelled.
    ///
    /// Concurrent callers queue in FIFO order (each gets a different connection). Transient errors
    /// (`ECONNABORTED`, `EINTR`, `EPROTO`) are skipped; running out of descriptors (`EMFILE`, `ENFILE`,
    /// `ENOBUFS`, `ENOMEM`) backs off from 10 ms, doubling up to 1 s, and tries again.
    func accept() async throws -> AsyncSocket? {
        switch await core.acquire(.read) {
        case .ready: break
        case .cancelled, .closed, .timedOut: return nil
        case .failed(let code): throw SocketError(code: code, operation: "accept", address: address)
        }
        defer { core.release(.read) }
        var backoff = Self.initialBackoff
        while true {
            let fd = core.fd
            if fd < 0 || Task.isCancelled { return nil }
            var storage = sockaddr_storage()
            var length = UInt32(MemoryLayout<sockaddr_storage>.size)
            let client = withUnsafeMutablePointer(to: &storage) { as_accept(fd, $0, &length) }
            if client >= 0 {
                let peer = withUnsafeBytes(of: &storage) { SocketAddress(sockaddr: $0.baseAddress!, length: socklen_t(length)) }
                if address.family != .unix { AsyncSocket.setNoDelay(client) }
                return AsyncSocket(descriptor: client, loop: .next(), peer: peer)
            }
            let code = errno
            switch code {
            case EAGAIN, EWOULDBLOCK:
                switch await core.wait(.read) {
                case .ready, .timedOut: continue
                case .cancelled, .closed: return nil
                case .failed(let code): throw SocketError(code: code, operation: "accept", address: address, detail: "event_add failed")
                }
            case ECONNABORTED, EINTR, EPROTO:
                continue
            case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                switch await core.sleep(microseconds: backoff) {
                case .ready, .timedOut:
                    backoff = min(backoff * 2, Self.maximumBackoff)
                    continue
                case .cancelled, .closed: return nil
                case .failed(let code): throw SocketError(code: code, operation: "accept", address: address, detail: "event_add failed")
                }
            default:
                throw SocketError(code: code, operation: "accept", address: address)
            }
        }
    }
}
