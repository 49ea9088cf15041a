/// Package-level hooks for protocol layers built over an ``AsyncSocket`` in other modules of this package
/// (`AsyncSocketsTLS`). Not public API: a layer that owns the socket's I/O makes its own syscalls on
/// ``transportDescriptor`` and waits through the socket's `SocketCore` (a `LoopBound` actor on the same
/// ``EventLoop``), so it follows the same rules: loop thread only, FIFO operation locks per direction,
/// readiness hints cleared before each wait.
extension AsyncSocket {
    /// The address this socket connected to, or the peer an accepted socket came from, for error messages.
    package nonisolated var transportPeer: SocketAddress? { peer }

    /// The loop's shared scratch buffer: copy out of it in the same synchronous step that filled it.
    package nonisolated var transportScratch: UnsafeMutableRawBufferPointer { core.loop.scratch }

    /// The descriptor (`-1` once closed). Loop thread only (the caller is an actor on ``eventLoop``).
    package nonisolated var transportDescriptor: Int32 { core.fd }

    /// ``SocketError`` `EBADF` naming `operation` and the peer, as every call on a closed socket throws.
    package nonisolated func transportClosedError(_ operation: String) -> SocketError {
        SocketError.closed(operation, address: peer)
    }

    /// ``SocketError`` `ETIMEDOUT` after `timeout`, as every call that waited too long throws.
    package nonisolated func transportTimedOutError(_ operation: String, after timeout: Duration?) -> SocketError {
        SocketError.timedOut(operation, address: peer, after: timeout)
    }

    /// ``SocketError`` `EINVAL` for bad input to `operation`.
    package nonisolated func transportInvalidArgument(_ operation: String, _ detail: String) -> SocketError {
        SocketError.invalidArgument(operation, detail, address: peer)
    }
}
