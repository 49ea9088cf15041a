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
/// ``connect(to:timeout:sourceAddress:allErrors:happyEyeballsDelay:resolver:multipath:)``, ``pair(on:)`` or an
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
/// ## Fairness
/// A read or write that finds data or room returns without waiting, which is what makes the socket fast. So that a
/// peer that always has data queued, or always has room, cannot keep its task running on the loop forever, each
/// direction of a socket does a bounded amount of work without waiting (16 system calls or 256 KiB, whichever
/// comes first) and then hands its ``EventLoop`` back: the next call in that direction (or the next step of a
/// long ``read(exactly:)`` or ``write(_:)-([UInt8])``) lets the loop poll once, so that every other ready socket,
/// the timers and the accepts get their turn, and then goes on. The hand-back is also where a busy call notices
/// cancellation. Request/response traffic never reaches the limit: its reads come back short and wait anyway,
/// which starts a new turn. (With a zero ``timeout``, non-blocking use, calls never wait and so never hand the
/// loop back; they only check for cancellation there.)
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

    /// Bytes received ahead of the reader by `read(until:)` and `lines` (issue 16); every read serves these first.
    var readAhead = ReadAheadBuffer()

    /// The default timeout of this socket's reads, writes and waits; `nil` waits forever.
    /// Set by ``connect(to:timeout:sourceAddress:allErrors:happyEyeballsDelay:resolver:multipath:)``'s `timeout`.
    public var timeout: Duration?

    /// What this socket's reads and writes did since each last waited for readiness (see ``IOBudget``).
    private var readBudget = IOBudget()
    /// The loop's job number (`EventLoop.jobSerial`) in which the last read filled its whole limit, so that
    /// whether more is waiting is unknown (a shorter read marks the socket drained instead); 0: it did not.
    /// See `tryReceive`.
    private var readFilledLimitInJob: UInt = 0
    /// `tryReceive` returned nil to put the read behind the loop's queued jobs, not to wait for readiness.
    private var readDeferred = false
    /// Whether a read right after a write, with nothing queued on the loop, tries `recv` first (see `tryReceive`).
    private var readAfterWrite = ReadAfterWritePrediction()
    /// The loop's job number in which the last short read marked the socket drained; 0: none since. See
    /// `tryReceive`.
    private var readDrainedInJob: UInt = 0
    /// How many `recv` calls of this socket's reads found nothing (`EAGAIN`): each one is a syscall spent on
    /// learning that the read must wait. For tests and diagnostics.
    private(set) var emptyReceives = 0
    /// How many times this socket's reads and writes handed the loop back because their turn was spent
    /// (``IOBudget``). For tests and diagnostics.
    private(set) var handBacks = 0
    private var writeBudget = IOBudget()
    /// An error that ended a ``read(upTo:)`` after it had bytes to return; the next read throws it.
    private var pendingReadError: (any Error)?

    /// The event loop whose thread runs this socket.
    public nonisolated var eventLoop: EventLoop { core.loop }

    /// The socket's executor: its event loop.
    public nonisolated var unownedExecutor: UnownedSerialExecutor { core.executor }

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

    /// `deadline`, when given, bounds the connect instead of `timeout` (a Happy Eyeballs attempt ends with
    /// the whole call's deadline); `timeout` still becomes the socket's ``timeout``.
    static func connect(to address: SocketAddress, timeout: Duration?, sourceAddress: SocketAddress?,
                        multipath: Bool = false, deadline: Deadline? = nil) async throws -> AsyncSocket {
        let fd = try Syscall.call("socket", address: address) {
            StreamSocket.open(family: address.family, multipath: multipath)
        }
        let socket = AsyncSocket(descriptor: fd, peer: address, timeout: timeout)
        try await socket.finishConnect(to: address, sourceAddress: sourceAddress, deadline: deadline)
        return socket
    }

    /// Python's `socket.socketpair()`: two connected unix-domain stream sockets, both on one event loop.
    ///
    /// - Parameter loop: the loop both ends live on; `nil` chooses as for any new socket (the loop the
    ///   current task prefers, else the next loop of ``EventLoopGroup/shared``).
    /// - Throws: ``SocketError`` (for example `EMFILE` when the process is out of descriptors).
    public static func pair(on loop: EventLoop? = nil) throws -> (AsyncSocket, AsyncSocket) {
        var fds: [Int32] = [-1, -1]
        _ = try Syscall.call("socketpair") { as_socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) }
        let loop = loop ?? EventLoop.next()
        return (AsyncSocket(descriptor: fds[0], loop: loop), AsyncSocket(descriptor: fds[1], loop: loop))
    }

    private func finishConnect(to address: SocketAddress, sourceAddress: SocketAddress?, deadline: Deadline?) async throws {
        do {
            let fd = core.fd
            if address.family != .unix { Self.setNoDelay(fd) }
            if let sourceAddress {
                if sourceAddress.family != address.family {
                    throw SocketError(code: EAFNOSUPPORT, operation: "bind", address: sourceAddress,
                                      detail: "the source address is \(sourceAddress.family), the destination \(address) is \(address.family)")
                }
                _ = try Syscall.call("bind", address: sourceAddress, detail: "binding the source address before connecting to \(address)") {
                    sourceAddress.withSockAddr { Posix.bind(fd, $0, $1) }
                }
            }
            switch Syscall.attempt({ address.withSockAddr { Posix.connect(fd, $0, $1) } }) {
            case .success: return
            // In progress. (`EALREADY` and `EISCONN` only come from a second `connect` on this new socket, after
            // an `EINTR` that `Syscall` retried: the first one is still in progress, or has finished.)
            case .failure(let code) where code.rawValue == EINPROGRESS || code.rawValue == EALREADY: break
            case .failure(let code) where code.rawValue == EISCONN: return
            case .failure(let code): throw SocketError(code: code.rawValue, operation: "connect", address: address)
            }
            core.markDrained(.write)
            switch await waitReady(.write, timeoutMicroseconds: deadline?.remainingMicroseconds ?? Self.microseconds(timeout)) {
            case .ready:
                var error: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                let fd = core.fd  // again: a `close()` may have run on the actor since the wait ended
                if case .failure(let code) = Syscall.attempt({ getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) }) {
                    error = code.rawValue
                }
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

    /// Sets `TCP_NODELAY`, best effort (a failure leaves Nagle's algorithm on; nothing else changes).
    static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        _ = Syscall.attempt { setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size)) }
    }

    // MARK: Addresses

    /// The address this socket is bound to (`getsockname`).
    public var localAddress: SocketAddress {
        get throws {
            try checkOpen("localAddress")
            guard let address = try SocketAddress.local(of: core.fd) else {
                throw SocketError(code: EAFNOSUPPORT, operation: "getsockname")
            }
            return address
        }
    }

    /// The address of the peer (`getpeername`); throws `ENOTCONN` when not connected.
    public var remoteAddress: SocketAddress {
        get throws {
            try checkOpen("remoteAddress")
            guard let address = try SocketAddress.remote(of: core.fd, address: peer) else {
                throw SocketError(code: EAFNOSUPPORT, operation: "getpeername")
            }
            return address
        }
    }

    // MARK: Reading

    /// Reads at least one and at most `maxBytes` bytes, waiting until some arrive (Python's `recv`).
    ///
    /// A large `maxBytes` costs nothing up front (`read(upTo: 1 << 20)` is as cheap as `read(upTo: 65536)`):
    /// the bytes arrive in the loop's 64 KiB buffer first and the result is sized to what arrived; only when
    /// more than 64 KiB is waiting does the read go on, into an array that grows with what arrives (its
    /// capacity stays within about twice its count). One call returns at most what one turn of the loop
    /// allows (about 512 KiB, see ``AsyncSocket`` on fairness): read again for more.
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
        // Buffered reads (issue 16): serve from readAhead first.
        if !readAhead.isEmpty { return readAhead.take(maxBytes) }
        try throwPendingReadError()
        // The scratch buffer is shared by every socket of the loop: copy out in the same synchronous step as
        // the recv, so no other socket's read can reuse the buffer in between, whatever the runtime does
        // between an `await` and the code after it.
        let scratch = core.loop.scratch
        let limit = min(maxBytes, scratch.count)
        var bytes: [UInt8] = []
        var deadline: Deadline?
        while true {
            if let n = try tryReceive("read", upTo: limit, { fd in
                let n = as_recv(fd, scratch.baseAddress, UInt(limit))
                if n > 0 { bytes = Array(UnsafeRawBufferPointer(rebasing: scratch[..<n])) }
                return n
            }) {
                if n == limit && maxBytes > limit { continueReading(into: &bytes, upTo: maxBytes) }
                return bytes
            }
            deadline = try await waitFor(.read, "read", deadline: deadline)
        }
    }

    /// The rest of a ``read(upTo:)`` whose first `recv` filled the scratch buffer: receives on, growing `bytes`
    /// with what arrives, until a short read, `maxBytes`, or the end of this direction's turn. Never waits.
    /// An error ends the read with the bytes it has (they must not be lost); the next read throws it.
    private func continueReading(into bytes: inout [UInt8], upTo maxBytes: Int) {
        // `readHint` is cleared by a short read, an end of stream and `EAGAIN`; a spent turn returns nil.
        while bytes.count < maxBytes && core.readHint {
            do {
                if try receiveAppending(to: &bytes, upTo: maxBytes - bytes.count) == nil { return }
            } catch {
                pendingReadError = error
                return
            }
        }
    }

    /// Reads at least one and at most `maxBytes` bytes and appends them to `buffer`, reusing its storage:
    /// with enough reserved capacity, no allocation happens per call. When `buffer` has at least 4 KiB of spare
    /// capacity the bytes are received straight into it (no copy), at most as many as fit in that capacity
    /// (and at most 256 KiB per call).
    ///
    /// - Returns: the number of bytes appended; `0` only at end of stream.
    /// - Throws: as ``read(upTo:)``.
    public func read(into buffer: inout [UInt8], upTo maxBytes: Int) async throws -> Int {
        guard maxBytes > 0 else {
            throw SocketError.invalidArgument("read(into:upTo:)", "maxBytes must be positive, got \(maxBytes)", address: peer)
        }
        if !core.tryAcquire(.read) { try await lock(.read, "read") }
        defer { core.release(.read) }
        // Buffered reads (issue 16): serve from readAhead first.
        if !readAhead.isEmpty { return readAhead.take(maxBytes, appendingTo: &buffer) }
        try throwPendingReadError()
        let scratch = core.loop.scratch
        var deadline: Deadline?
        while true {
            // Straight into the buffer's spare capacity when it has room for a large read (a reused buffer in a
            // streaming loop: no copy); otherwise through the loop's scratch buffer, so a buffer that is still
            // small does not grow to `maxBytes` just in case.
            let spare = buffer.capacity - buffer.count
            let direct = spare >= min(maxBytes, Self.directReadMinimum)
            let limit = direct ? min(maxBytes, spare, IOBudget.maxBytes) : min(maxBytes, scratch.count)
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
    /// Memory grows with what arrives, not with `count`: a peer that announces a large message and sends
    /// one byte costs about one byte (up to 64 KiB is allocated up front).
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
        // Buffered reads (issue 16): serve from readAhead first.
        if !readAhead.isEmpty { return try await readExactlyAfterReadAhead(count) }
        try throwPendingReadError()
        var deadline: Deadline?
        if count > EventLoop.scratchSize {
            // Too large to allocate up front on faith: grow as the bytes arrive.
            var bytes: [UInt8] = []
            while bytes.count < count {
                guard let n = try receiveAppending(to: &bytes, upTo: count - bytes.count) else {
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

    /// One `recv` of at most `limit` bytes appended to `bytes`, which grows with what arrives: through the
    /// loop's scratch buffer while `bytes` is small (appending grows it geometrically), straight into its
    /// spare capacity once it holds 64 KiB or more (doubling it when full, never past `limit` more bytes).
    /// Returns as ``tryReceive(_:upTo:_:)``.
    @inline(__always)
    private func receiveAppending(to bytes: inout [UInt8], upTo limit: Int) throws -> Int? {
        let scratch = core.loop.scratch
        let large = min(limit, scratch.count)
        var spare = bytes.capacity - bytes.count
        if spare < large && bytes.count >= scratch.count {
            bytes.reserveCapacity(bytes.count + min(limit, bytes.capacity))
            spare = bytes.capacity - bytes.count
        }
        if spare >= large {
            let want = min(limit, spare, IOBudget.maxBytes)
            return try tryReceive("read", upTo: want) { fd in
                var received = 0
                bytes.append(addingCapacity: want) { span in
                    span.withUnsafeMutableBufferPointer { memory, initialized in
                        received = as_recv(fd, memory.baseAddress, UInt(want))
                        if received > 0 { initialized = received }
                    }
                }
                return received
            }
        }
        // Copy out of the shared scratch buffer in the same synchronous step as the recv (see read(upTo:)).
        return try tryReceive("read", upTo: large) { fd in
            let n = as_recv(fd, scratch.baseAddress, UInt(large))
            if n > 0 { bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[..<n])) }
            return n
        }
    }

    /// Throws the error that ended a ``read(upTo:)`` after it had bytes to return (see `continueReading`).
    @inline(__always)
    private func throwPendingReadError() throws {
        if let error = pendingReadError {
            pendingReadError = nil
            throw error
        }
    }

    /// Whether this socket's operations hand the loop back when their turn is spent (see ``IOBudget``): always,
    /// except with a zero ``timeout`` (non-blocking use), where a call never waits; such a call only checks
    /// for cancellation instead.
    @inline(__always)
    private var handsLoopBack: Bool { timeout.map { $0 > .zero } ?? true }

    /// One synchronous read step: runs `attempt` (a `recv` of at most `limit` bytes) and returns its count
    /// (0 at end of stream), or nil when the socket has nothing now and the caller must wait (with
    /// ``waitFor(_:_:deadline:)``) and try again. The caller holds the read lock.
    ///
    /// No readiness report since the socket was found drained: nil at once instead of a `recv` that would
    /// fail, except with a zero timeout (non-blocking use), where the report may simply not be processed yet.
    /// A read that returns fewer than `limit` bytes clears the readiness hint: the socket is most likely
    /// drained, so the next read waits for a readiness report instead of calling `recv` only to get `EAGAIN`
    /// (unless it comes in the same job and `ReadAfterWritePrediction` says the peer's next message is often
    /// there already).
    /// Read readiness is level-triggered, which makes the guess safe: an end of stream or an error pending
    /// behind the data is reported by the next poll (see `SocketCore`).
    ///
    /// Fairness: when this direction's turn is spent (``IOBudget``), nil without a `recv`: the caller's
    /// ``waitFor(_:_:deadline:)`` then hands the loop back instead of waiting for readiness.
    ///
    /// Synchronous and inlined, so that a read that finds data allocates nothing and never suspends.
    @inline(__always)
    func tryReceive(_ operation: String, upTo limit: Int, _ attempt: (Int32) -> Int) throws -> Int? {
        let fd = core.fd
        guard fd >= 0 else { throw SocketError.closed(operation, address: peer) }
        var predicted = false
        if !core.readHint, handsLoopBack {
            // Drained by a short read earlier in this job (a handler that read a request, wrote its answer and
            // reads again): waits at once unless the next request is often there already (`readAfterWrite`).
            guard readAfterWrite.shouldTryAfterDrain(inJob: &readDrainedInJob, on: core.loop) else { return nil }
            predicted = true
        }
        // Request and response: the last read took exactly what it asked for (a message of known size), and
        // this one comes in the same job, with no suspension since (a body isolated to the socket that wrote
        // its request in between): a `recv` now would most likely find nothing, and the read would pay for it
        // and for a readiness wait. When other jobs are queued on the loop (many busy connections), the read
        // goes behind them first, a plain place in the queue; by then the answer has often arrived. A task
        // that hops between its calls (code in `EventLoop.run` that is not isolated to the socket) already
        // went behind the queue at each hop, so its reads come in another job and go straight on. Once per
        // read: the read that comes back does the `recv`. With nothing queued (one connection, or every other
        // one waiting) the answer is there only if the peer ran before `send` returned (on the same core, the
        // kernel often switches to the peer the request woke): `readAfterWrite` learns how often that happens.
        // When it says no, the read counts the socket as drained and waits for readiness without the `recv`
        // that would most likely fail (the next poll reports the socket at once if the answer is there: read
        // readiness is level-triggered).
        if readFilledLimitInJob != 0 {
            let sameJob = readFilledLimitInJob == core.loop.jobSerial
            readFilledLimitInJob = 0
            if sameJob, handsLoopBack, core.loop.currentTaskPrefersLoop {
                if core.loop.hasQueuedJobs {
                    readDeferred = true
                    return nil
                }
                guard readAfterWrite.shouldTry() else {
                    core.markDrained(.read)
                    return nil
                }
                predicted = true
            }
        }
        if readBudget.isSpent(atPoll: core.loop.polls) {
            if handsLoopBack { return nil }
            if Task.isCancelled { throw CancellationError() }
        } else if readBudget.mustCheckCancellation {
            readBudget.checkedCancellation()
            if Task.isCancelled { throw CancellationError() }
        }
        switch try Syscall.nonBlocking(operation, address: peer, { attempt(fd) }) {
        case .processed(let n):
            if predicted { readAfterWrite.record(found: true) }
            if n > 0 { core.noteDataConsumed() }
            if n < limit {
                // Most likely drained: the next read waits for readiness, which starts a new turn.
                core.markDrained(.read)
                readDrainedInJob = core.loop.jobSerial
                readBudget.reset()
            } else {
                readBudget.charge(n, atPoll: core.loop.polls)
                readFilledLimitInJob = core.loop.jobSerial
            }
            return n
        case .wouldBlock:
            if predicted { readAfterWrite.record(found: false) }
            emptyReceives &+= 1
            core.markDrained(.read)
            readBudget.reset()
            return nil
        }
    }

    // MARK: Writing

    /// Writes all of `bytes`, waiting for room as often as needed (Python's `sendall`).
    ///
    /// Writes from concurrent tasks never interleave: each call's bytes go out contiguously. A large write
    /// hands the loop back between chunks of 256 KiB at most (see ``AsyncSocket`` on fairness).
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

    /// Sends from `offset` until every byte is sent, the socket is full (`EAGAIN`: the write hint is cleared) or
    /// this direction's turn is spent (``IOBudget``; each `send` asks for at most 256 KiB); returns the new
    /// offset. The caller's ``waitFor(_:_:deadline:)`` then waits for room, or hands the loop back. Synchronous:
    /// the usual write allocates nothing and never suspends.
    @inline(__always)
    func trySend(_ bytes: ArraySlice<UInt8>, from offset: Int, _ operation: String = "write") throws -> Int {
        var offset = offset
        while offset < bytes.endIndex {
            let fd = core.fd
            guard fd >= 0 else { throw SocketError.closed(operation, address: peer) }
            if writeBudget.isSpent(atPoll: core.loop.polls) {
                if handsLoopBack { return offset }
                if Task.isCancelled { throw CancellationError() }
            } else if writeBudget.mustCheckCancellation {
                writeBudget.checkedCancellation()
                if Task.isCancelled { throw CancellationError() }
            }
            let end = offset + min(bytes.endIndex - offset, IOBudget.maxBytes)
            switch try Syscall.nonBlocking(operation, address: peer, {
                bytes[offset..<end].withUnsafeBytes { as_send(fd, $0.baseAddress, UInt($0.count)) }
            }) {
            case .processed(let n):
                writeBudget.charge(n, atPoll: core.loop.polls)
                offset += n
            case .wouldBlock:
                // Full: the next step waits for room, which starts a new turn.
                core.markDrained(.write)
                writeBudget.reset()
                return offset
            }
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
        let fd = core.fd
        _ = try Syscall.call("shutdown", address: peer, detail: "\(direction)") { Posix.shutdown(fd, how) }
    }

    /// Closes the socket. Idempotent. Calls waiting in ``read(upTo:)``, ``write(_:)-([UInt8])`` or a
    /// connect throw ``SocketError`` with `EBADF` promptly; later calls throw the same.
    public func close() {
        readAhead = ReadAheadBuffer()  // bytes read ahead (issue 16) go with the socket: later reads throw EBADF
        core.close()
    }

    // MARK: Helpers

    func checkOpen(_ operation: String) throws {
        if core.isClosed { throw SocketError.closed(operation, address: peer) }
    }

    /// Takes the operation lock of `direction` when ``SocketCore/tryAcquire(_:)`` found it held: queues
    /// behind the holder.
    func lock(_ direction: IODirection, _ operation: String) async throws {
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
    ///
    /// When the direction's turn is spent (``IOBudget``) it hands the loop back instead: the loop polls once,
    /// runs what is due, and the call goes on, with a new turn (or throws `CancellationError`).
    @inline(__always)
    func waitFor(_ direction: IODirection, _ operation: String,
                         deadline: Deadline?) async throws -> Deadline? {
        if direction == .read && readDeferred {
            readDeferred = false
            await withUnsafeContinuation { continuation in self.core.loop.resumeBehindQueuedJobs(continuation) }
            return deadline
        }
        if direction == .read ? readBudget.isSpent(atPoll: core.loop.polls) : writeBudget.isSpent(atPoll: core.loop.polls) {
            try await handBack(direction, operation)
            return deadline
        }
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

    /// The fairness hand-back: lets the loop poll once (every other ready socket, the timers and the accepts
    /// get their turn), then starts a new turn for `direction`. Where a busy read or write notices cancellation.
    private func handBack(_ direction: IODirection, _ operation: String) async throws {
        handBacks &+= 1
        switch await yieldToLoop(direction) {
        case .ready, .timedOut:
            switch direction {
            case .read: readBudget.reset()
            case .write: writeBudget.reset()
            }
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

/// The stream ended before ``AsyncSocket/read(exactly:)`` had all its bytes, or before
/// ``AsyncSocket/read(until:maxLength:)`` found its delimiter (Python asyncio's `IncompleteReadError`).
public struct IncompleteReadError: Error, Sendable, CustomStringConvertible {
    /// The bytes that did arrive before the end of stream.
    public var partial: [UInt8]
    /// How many bytes were asked for (for ``AsyncSocket/read(until:maxLength:)``, its `maxLength`).
    public var expected: Int
    /// The delimiter ``AsyncSocket/read(until:maxLength:)`` was looking for; nil for ``AsyncSocket/read(exactly:)``.
    public var delimiter: [UInt8]? = nil

    /// Creates the error.
    public init(partial: [UInt8], expected: Int) {
        self.partial = partial
        self.expected = expected
    }

    /// `"read(exactly: N) reached end of stream after M bytes"`.
    public var description: String {
        if let delimiter {
            return "read(until: \(delimiter)) reached end of stream after \(partial.count) bytes without the delimiter"
        }
        return "read(exactly: \(expected)) reached end of stream after \(partial.count) bytes"
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
