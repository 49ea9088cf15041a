#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CLibeventShim

/// A connected stream socket (TCP or unix-domain), non-blocking underneath and `async` on top.
///
/// Python's `socket.socket` for stream sockets, made async: ``read(upTo:)`` is `recv`, ``write(_:)-([UInt8])`` is
/// `sendall`, ``shutdown(_:)`` and ``close()`` are what they say. Get one from
/// ``connect(to:timeout:sourceAddress:allErrors:happyEyeballsDelay:resolver:)``, ``pair()`` or an
/// ``AsyncServer``'s ``AsyncServer/accepts``.
///
/// ## Concurrency rules
/// The socket is an actor that runs on its ``EventLoop``. It is safe to use from many tasks at once:
/// - two tasks writing at once never interleave the bytes of their writes: each ``write(_:)-([UInt8])`` holds the
///   socket's write side until all its bytes are written, later writes wait their turn in FIFO order;
/// - two tasks reading at once never lose or duplicate bytes: each read holds the read side for its
///   duration (``read(exactly:)`` until it has all its bytes), later reads wait in FIFO order;
/// - ``close()`` while another task waits in a read, write or connect makes that call throw promptly
///   (``SocketError`` with `EBADF`);
/// - cancelling a task that waits in any call makes the call throw `CancellationError` at once; the socket
///   stays usable.
///
/// ## Timeouts
/// ``timeout`` (Python's `settimeout`) bounds each call's waiting time: a read or write that makes no
/// progress for that long throws ``SocketError`` with `ETIMEDOUT`. `nil` waits forever.
///
/// The descriptor is created with `SOCK_NONBLOCK | SOCK_CLOEXEC`; writes never raise `SIGPIPE`;
/// TCP sockets have `TCP_NODELAY` set (use ``setOption(_:_:)`` to turn it off).
/// A socket that is no longer referenced closes its descriptor.
public actor AsyncSocket: LoopBound {
    package nonisolated let core: SocketCore
    /// The address this socket connected to, for error messages (nil for pairs and until known).
    let peer: SocketAddress?

    /// The default timeout of this socket's reads, writes and waits; `nil` waits forever.
    /// Set by ``connect(to:timeout:sourceAddress:allErrors:happyEyeballsDelay:resolver:)``'s `timeout`.
    public var timeout: Duration?

    /// The event loop whose thread runs this socket.
    public nonisolated var eventLoop: EventLoop { core.loop }

    /// The socket's executor: its event loop.
    public nonisolated var unownedExecutor: UnownedSerialExecutor { core.loop.asUnownedSerialExecutor() }

    init(descriptor: Int32, loop: EventLoop = .next(), peer: SocketAddress? = nil, timeout: Duration? = nil) {
        self.core = SocketCore(fd: descriptor, loop: loop)
        self.peer = peer
        self.timeout = timeout
    }

    deinit {
        core.closeFromAnyThread()
    }

    /// Sets ``timeout``: `nil` waits forever; a zero or negative duration makes every call that would wait
    /// throw `ETIMEDOUT` at once.
    public func setTimeout(_ timeout: Duration?) {
        self.timeout = timeout
    }

    /// The operating system's descriptor, or `-1` once closed. Use it for options this type does not
    /// offer; do not close it or change its blocking mode.
    public var descriptor: Int32 { core.fd }

    /// Whether ``close()`` has been called.
    public var isClosed: Bool { core.isClosed }

    // MARK: Creating sockets

    /// Connects to one resolved address (no lookup, no racing), like `socket.connect` on a new socket.
    ///
    /// - Parameters:
    ///   - address: the IPv4, IPv6 or unix-domain address to connect to.
    ///   - timeout: bounds the connect (``SocketError`` with `ETIMEDOUT` after it) and becomes the
    ///     socket's ``timeout``. `nil` waits as long as the system does.
    /// - Throws: ``SocketError`` naming `connect` and the address, or `CancellationError`.
    public static func connect(to address: SocketAddress, timeout: Duration? = nil) async throws -> AsyncSocket {
        try await connect(to: address, timeout: timeout, sourceAddress: nil)
    }

    static func connect(to address: SocketAddress, timeout: Duration?, sourceAddress: SocketAddress?) async throws -> AsyncSocket {
        let fd = as_socket(address.family.rawValue, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SocketError.fromErrno("socket", address: address) }
        let socket = AsyncSocket(descriptor: fd, peer: address, timeout: timeout)
        try await socket.finishConnect(to: address, sourceAddress: sourceAddress)
        return socket
    }

    /// Python's `socket.socketpair()`: two connected unix-domain stream sockets.
    ///
    /// - Throws: ``SocketError`` (for example `EMFILE` when the process is out of descriptors).
    public static func pair() throws -> (AsyncSocket, AsyncSocket) {
        var fds: [Int32] = [-1, -1]
        guard as_socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else {
            throw SocketError.fromErrno("socketpair")
        }
        let loop = EventLoop.next()
        return (AsyncSocket(descriptor: fds[0], loop: loop), AsyncSocket(descriptor: fds[1], loop: loop))
    }

    private func finishConnect(to address: SocketAddress, sourceAddress: SocketAddress?) async throws {
        do {
            if address.family != .unix { Self.setNoDelay(core.fd) }
            if let sourceAddress {
                if sourceAddress.family != address.family {
                    throw SocketError(code: EAFNOSUPPORT, operation: "bind", address: sourceAddress,
                                      detail: "the source address is \(sourceAddress.family), the destination \(address) is \(address.family)")
                }
                let rc = sourceAddress.withSockAddr { Glibc.bind(core.fd, $0, $1) }
                if rc != 0 { throw SocketError.fromErrno("bind", address: sourceAddress, detail: "binding the source address before connecting to \(address)") }
            }
            let rc = address.withSockAddr { Glibc.connect(core.fd, $0, $1) }
            if rc == 0 { return }
            let code = errno
            guard code == EINPROGRESS || code == EINTR else {
                throw SocketError(code: code, operation: "connect", address: address)
            }
            core.markDrained(.write)
            switch await waitReady(.write, timeoutMicroseconds: Self.microseconds(timeout)) {
            case .ready:
                var error: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                if getsockopt(core.fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 { error = errno }
                if error != 0 { throw SocketError(code: error, operation: "connect", address: address) }
            case .timedOut: throw SocketError.timedOut("connect", address: address, after: timeout)
            case .cancelled: throw CancellationError()
            case .closed: throw SocketError.closed("connect", address: address)
            case .failed(let code): throw SocketError(code: code, operation: "connect", address: address, detail: "event_add failed")
            }
        } catch {
            core.close()
            throw error
        }
    }

    static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    // MARK: Addresses

    /// The address this socket is bound to (`getsockname`).
    public var localAddress: SocketAddress {
        get throws {
            try checkOpen("localAddress")
            let fd = core.fd
            guard let result = SocketAddress.read({ getsockname(fd, $0, $1) }) else {
                throw SocketError.fromErrno("getsockname")
            }
            guard let address = result else { throw SocketError(code: EAFNOSUPPORT, operation: "getsockname") }
            return address
        }
    }

    /// The address of the peer (`getpeername`); throws `ENOTCONN` when not connected.
    public var remoteAddress: SocketAddress {
        get throws {
            try checkOpen("remoteAddress")
            let fd = core.fd
            guard let result = SocketAddress.read({ getpeername(fd, $0, $1) }) else {
                throw SocketError.fromErrno("getpeername", address: peer)
            }
            guard let address = result else { throw SocketError(code: EAFNOSUPPORT, operation: "getpeername") }
            return address
        }
    }

    // MARK: Reading

    /// Reads at least one and at most `maxBytes` bytes, waiting until some arrive (Python's `recv`).
    ///
    /// - Returns: the bytes read; an empty array only at end of stream (the peer shut down its write side
    ///   or closed).
    /// - Throws: ``SocketError`` (`EINVAL` when `maxBytes` is not positive, `ETIMEDOUT` after ``timeout``,
    ///   `ECONNRESET`, `EBADF` after ``close()``), or `CancellationError`.
    public func read(upTo maxBytes: Int) async throws -> [UInt8] {
        guard maxBytes > 0 else {
            throw SocketError.invalidArgument("read(upTo:)", "maxBytes must be positive, got \(maxBytes)", address: peer)
        }
        if !core.tryAcquire(.read) { try await lock(.read, "read") }
        defer { core.release(.read) }
        let scratch = core.loop.scratch
        if maxBytes > scratch.count {
            // `maxBytes` is a bound, not a size to allocate: `read(upTo: .max)` must not try to allocate it.
            let maxBytes = min(maxBytes, Self.largestSingleRead)
            var bytes = [UInt8](repeating: 0, count: maxBytes)
            var deadline: Deadline?
            var count: Int
            while true {
                if let n = try tryReceive("read", upTo: maxBytes, { fd in
                    bytes.withUnsafeMutableBytes { as_recv(fd, $0.baseAddress, UInt($0.count)) }
                }) { count = n; break }
                deadline = try await waitFor(.read, "read", deadline: deadline)
            }
            bytes.removeLast(maxBytes - count)
            return bytes
        }
        // The scratch buffer is shared by every socket of the loop: copy out in the same synchronous step as
        // the recv, so no other socket's read can reuse the buffer in between, whatever the runtime does
        // between an `await` and the code after it.
        var bytes: [UInt8] = []
        var deadline: Deadline?
        while try tryReceive("read", upTo: maxBytes, { fd in
            let n = as_recv(fd, scratch.baseAddress, UInt(maxBytes))
            if n > 0 { bytes = Array(UnsafeRawBufferPointer(rebasing: scratch[..<n])) }
            return n
        }) == nil {
            deadline = try await waitFor(.read, "read", deadline: deadline)
        }
        return bytes
    }

    /// Reads at least one and at most `maxBytes` bytes and appends them to `buffer`, reusing its storage:
    /// with enough reserved capacity, no allocation happens per call. When `buffer` has at least 4 KiB of spare
    /// capacity the bytes are received straight into it (no copy), at most as many as fit in that capacity.
    ///
    /// - Returns: the number of bytes appended; `0` only at end of stream.
    /// - Throws: as ``read(upTo:)``.
    public func read(into buffer: inout [UInt8], upTo maxBytes: Int) async throws -> Int {
        guard maxBytes > 0 else {
            throw SocketError.invalidArgument("read(into:upTo:)", "maxBytes must be positive, got \(maxBytes)", address: peer)
        }
        if !core.tryAcquire(.read) { try await lock(.read, "read") }
        defer { core.release(.read) }
        let scratch = core.loop.scratch
        var deadline: Deadline?
        while true {
            // Straight into the buffer's spare capacity when it has room for a large read (a reused buffer in a
            // streaming loop: no copy); otherwise through the loop's scratch buffer, so a buffer that is still
            // small does not grow to `maxBytes` just in case.
            let spare = buffer.capacity - buffer.count
            let direct = spare >= min(maxBytes, Self.directReadMinimum)
            let limit = direct ? min(maxBytes, spare) : min(maxBytes, scratch.count)
            if let n = try tryReceive("read", upTo: limit, { fd in
                if direct {
                    var received = 0
                    buffer.append(addingCapacity: limit) { span in
                        span.withUnsafeMutableBufferPointer { memory, initialized in
                            received = as_recv(fd, memory.baseAddress, UInt(limit))
                            if received > 0 { initialized = received }
                        }
                    }
                    return received
                }
                // Copy out of the shared scratch buffer in the same synchronous step as the recv (see read(upTo:)).
                let n = as_recv(fd, scratch.baseAddress, UInt(limit))
                if n > 0 { buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[..<n])) }
                return n
            }) { return n }
            deadline = try await waitFor(.read, "read", deadline: deadline)
        }
    }

    /// The spare capacity from which ``read(into:upTo:)`` receives straight into the caller's buffer (at most
    /// that much per call) instead of copying from the loop's scratch buffer.
    static let directReadMinimum = 4096

    /// Reads exactly `count` bytes, waiting as long as it takes (and as ``timeout`` allows).
    ///
    /// - Throws: ``IncompleteReadError`` if the stream ends first (with the bytes that did arrive);
    ///   otherwise as ``read(upTo:)``. `count` 0 returns `[]` at once; a negative count throws `EINVAL`.
    public func read(exactly count: Int) async throws -> [UInt8] {
        guard count >= 0 else {
            throw SocketError.invalidArgument("read(exactly:)", "count must not be negative, got \(count)", address: peer)
        }
        if count == 0 { try checkOpen("read"); return [] }
        if !core.tryAcquire(.read) { try await lock(.read, "read") }
        defer { core.release(.read) }
        if count > Self.largestSingleRead {
            // Too large to allocate up front on faith: grow as the bytes arrive.
            var bytes: [UInt8] = []
            let scratch = core.loop.scratch
            var deadline: Deadline?
            while bytes.count < count {
                let limit = min(count - bytes.count, scratch.count)
                guard let n = try tryReceive("read", upTo: limit, { fd in
                    let n = as_recv(fd, scratch.baseAddress, UInt(limit))
                    if n > 0 { bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[..<n])) }
                    return n
                }) else {
                    deadline = try await waitFor(.read, "read", deadline: deadline)
                    continue
                }
                if n == 0 { throw IncompleteReadError(partial: bytes, expected: count) }
                deadline = nil  // progress: the timeout counts from here again
            }
            return bytes
        }
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        var deadline: Deadline?
        while filled < count {
            let start = filled
            guard let n = try tryReceive("read", upTo: count - start, { fd in
                bytes.withUnsafeMutableBytes { as_recv(fd, $0.baseAddress! + start, UInt(count - start)) }
            }) else {
                deadline = try await waitFor(.read, "read", deadline: deadline)
                continue
            }
            if n == 0 {
                throw IncompleteReadError(partial: Array(bytes[..<filled]), expected: count)
            }
            filled += n
            deadline = nil  // progress: the timeout counts from here again
        }
        return bytes
    }

    /// The most bytes one `read(upTo:)` allocates, and the largest `read(exactly:)` allocated up front
    /// (16 MiB: more than any socket receive buffer holds).
    static let largestSingleRead = 16 << 20

    /// One synchronous read step: runs `attempt` (a `recv` of at most `limit` bytes) and returns its count
    /// (0 at end of stream), or nil when the socket has nothing now and the caller must wait (with
    /// ``waitFor(_:_:deadline:)``) and try again. The caller holds the read lock.
    ///
    /// No readiness report since the socket was found drained: nil at once instead of a `recv` that would
    /// fail, except with a zero timeout (non-blocking use), where the report may simply not be processed yet.
    /// A read that returns fewer than `limit` bytes clears the readiness hint: the socket is most likely
    /// drained, so the next read waits for a readiness report instead of calling `recv` only to get `EAGAIN`.
    /// Read readiness is level-triggered, which makes the guess safe: an end of stream or an error pending
    /// behind the data is reported by the next poll (see `SocketCore`).
    ///
    /// Synchronous and inlined, so that a read that finds data allocates nothing and never suspends.
    @inline(__always)
    private func tryReceive(_ operation: String, upTo limit: Int, _ attempt: (Int32) -> Int) throws -> Int? {
        while true {
            let fd = core.fd
            guard fd >= 0 else { throw SocketError.closed(operation, address: peer) }
            if !core.readHint, timeout.map({ $0 > .zero }) ?? true { return nil }
            let n = attempt(fd)
            if n >= 0 {
                if n < limit { core.markDrained(.read) }
                return n
            }
            let code = errno
            if code == EINTR { continue }
            guard code == EAGAIN || code == EWOULDBLOCK else {
                throw SocketError(code: code, operation: operation, address: peer)
            }
            core.markDrained(.read)
            return nil
        }
    }

    // MARK: Writing

    /// Writes all of `bytes`, waiting for room as often as needed (Python's `sendall`).
    ///
    /// Writes from concurrent tasks never interleave: each call's bytes go out contiguously.
    /// - Throws: ``SocketError`` (`EPIPE` or `ECONNRESET` when the peer is gone, `ETIMEDOUT` after
    ///   ``timeout`` without progress, `EBADF` after ``close()``), or `CancellationError`. When it throws,
    ///   an unknown prefix of the bytes may have been sent.
    public func write(_ bytes: [UInt8]) async throws {
        try await send(bytes[...])
    }

    /// Writes all of `bytes` (see ``write(_:)-([UInt8])``).
    public func write(_ bytes: ArraySlice<UInt8>) async throws {
        try await send(bytes)
    }

    /// Writes the UTF-8 bytes of `text` (see ``write(_:)-([UInt8])``).
    public func write(_ text: String) async throws {
        try await send(Array(text.utf8)[...])
    }

    /// The body of every `write`, inlined into each so that a write that finds room runs without an extra
    /// async frame.
    @inline(__always)
    private func send(_ bytes: ArraySlice<UInt8>) async throws {
        if !core.tryAcquire(.write) { try await lock(.write, "write") }
        defer { core.release(.write) }
        if bytes.isEmpty { return try checkOpen("write") }
        var offset = try trySend(bytes, from: bytes.startIndex)
        var deadline: Deadline?
        while offset < bytes.endIndex {
            deadline = try await waitFor(.write, "write", deadline: deadline)
            let next = try trySend(bytes, from: offset)
            if next != offset { deadline = nil }  // progress: the timeout counts from here again
            offset = next
        }
    }

    /// Sends from `offset` until every byte is sent or the socket is full (`EAGAIN`: the write hint is
    /// cleared); returns the new offset. Synchronous: the usual write allocates nothing and never suspends.
    @inline(__always)
    private func trySend(_ bytes: ArraySlice<UInt8>, from offset: Int) throws -> Int {
        var offset = offset
        while offset < bytes.endIndex {
            let fd = core.fd
            guard fd >= 0 else { throw SocketError.closed("write", address: peer) }
            let n = bytes[offset...].withUnsafeBytes { as_send(fd, $0.baseAddress, UInt($0.count)) }
            if n >= 0 {
                offset += n
                continue
            }
            let code = errno
            if code == EINTR { continue }
            guard code == EAGAIN || code == EWOULDBLOCK else {
                throw SocketError(code: code, operation: "write", address: peer)
            }
            core.markDrained(.write)
            return offset
        }
        return offset
    }

    // MARK: Shutdown and close

    /// Shuts down one or both directions (`shutdown(2)`): after ``ShutdownDirection/write`` the peer reads
    /// end of stream once it has read everything sent before.
    ///
    /// - Throws: ``SocketError`` (`ENOTCONN` when not connected, `EBADF` after ``close()``).
    public func shutdown(_ direction: ShutdownDirection) throws {
        try checkOpen("shutdown")
        let how: Int32
        switch direction {
        case .read: how = Int32(SHUT_RD)
        case .write: how = Int32(SHUT_WR)
        case .both: how = Int32(SHUT_RDWR)
        }
        if Glibc.shutdown(core.fd, how) != 0 {
            throw SocketError.fromErrno("shutdown", address: peer, detail: "\(direction)")
        }
    }

    /// Closes the socket. Idempotent. Calls waiting in ``read(upTo:)``, ``write(_:)-([UInt8])`` or a
    /// connect throw ``SocketError`` with `EBADF` promptly; later calls throw the same.
    public func close() {
        core.close()
    }

    // MARK: Helpers

    private func checkOpen(_ operation: String) throws {
        if core.isClosed { throw SocketError.closed(operation, address: peer) }
    }

    /// Takes the operation lock of `direction` when ``SocketCore/tryAcquire(_:)`` found it held: queues
    /// behind the holder.
    private func lock(_ direction: IODirection, _ operation: String) async throws {
        switch await acquire(direction) {
        case .ready: return
        case .cancelled: throw CancellationError()
        case .closed: throw SocketError.closed(operation, address: peer)
        case .timedOut: throw SocketError.timedOut(operation, address: peer, after: timeout)
        case .failed(let code): throw SocketError(code: code, operation: operation, address: peer)
        }
    }

    /// Waits for readiness in `direction`, applying ``timeout`` from `deadline` (nil: the wait starts the clock,
    /// now). Returns the deadline to pass to the next wait of the same call. Not inlined: only a call that has
    /// to wait pays for the wait's frames.
    @inline(__always)
    private func waitFor(_ direction: IODirection, _ operation: String,
                         deadline: Deadline?) async throws -> Deadline? {
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
            // libevent's timers run on the coarse monotonic clock and may fire up to a clock tick early: a
            // timeout is only reported once the deadline has really passed. The caller tries again and waits
            // for the rest.
            if let deadline, deadline.remainingMicroseconds > 0 { return deadline }
            throw SocketError.timedOut(operation, address: peer, after: timeout)
        case .cancelled: throw CancellationError()
        case .closed: throw SocketError.closed(operation, address: peer)
        case .failed(let code): throw SocketError(code: code, operation: operation, address: peer, detail: "event_add failed")
        }
    }

    static func microseconds(_ duration: Duration?) -> Int64 {
        guard let duration else { return -1 }
        let (seconds, attoseconds) = duration.components
        if seconds < 0 { return 0 }
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000)
        if overflow { return Int64.max / 2 }
        return product + attoseconds / 1_000_000_000_000
    }
}

/// The stream ended before ``AsyncSocket/read(exactly:)`` had all its bytes (Python asyncio's
/// `IncompleteReadError`).
public struct IncompleteReadError: Error, Sendable, CustomStringConvertible {
    /// The bytes that did arrive before the end of stream.
    public var partial: [UInt8]
    /// How many bytes were asked for.
    public var expected: Int

    /// Creates the error.
    public init(partial: [UInt8], expected: Int) {
        self.partial = partial
        self.expected = expected
    }

    /// `"read(exactly: N) reached end of stream after M bytes"`.
    public var description: String {
        "read(exactly: \(expected)) reached end of stream after \(partial.count) bytes"
    }
}

/// Which direction ``AsyncSocket/shutdown(_:)`` shuts down.
public enum ShutdownDirection: Sendable, Hashable {
    /// No more reads (`SHUT_RD`).
    case read
    /// No more writes: the peer sees end of stream (`SHUT_WR`).
    case write
    /// Both (`SHUT_RDWR`).
    case both
}
