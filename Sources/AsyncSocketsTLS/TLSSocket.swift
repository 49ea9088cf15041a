import AsyncSockets
internal import CTLSShim

/// A TLS connection over an `AsyncSocket`: the same surface (``read(upTo:)``, ``write(_:)-([UInt8])``,
/// ``shutdown(_:)``, ``close()``, ``timeout``, addresses), encrypted, plus what the handshake negotiated.
///
/// Get one from ``connect(to:context:serverName:timeout:handshakeTimeout:sourceAddress:allErrors:happyEyeballsDelay:resolver:multipath:)``,
/// for a scope from ``withConnection(to:context:serverName:timeout:handshakeTimeout:sourceAddress:allErrors:happyEyeballsDelay:resolver:multipath:isolation:_:)``,
/// ``upgrade(_:context:serverName:handshakeTimeout:)`` (STARTTLS) or
/// `AsyncServer.serveTLS(context:handshakeTimeout:idleTimeout:onError:handler:)`.
/// The handshake is always complete, and the peer verified as configured, before you get the socket.
///
/// ## I/O
/// OpenSSL runs over a BIO of ours that calls `recv` and `send(MSG_NOSIGNAL)` on the non-blocking descriptor
/// (no `SIGPIPE`); when OpenSSL wants to read or write, the call waits for readiness on the socket's
/// `EventLoop`, like `AsyncSocket`'s calls, and then retries the same OpenSSL call. The actor runs on the
/// same loop as its socket: no thread hops.
///
/// ## Concurrency rules
/// As `AsyncSocket`'s: concurrent writes never interleave, concurrent reads never lose bytes, a read and a
/// write may run at once (one TLS connection serves both: when a read needs to write or a write to read,
/// the waits are shared, never lost), cancelling a waiting call throws `CancellationError` at once, and
/// ``close()`` makes waiting calls throw `SocketError` `EBADF` promptly. A write that has to wait for room
/// can be cancelled, but the connection is then unusable for writes (part of a record may have been sent):
/// close it.
///
/// The `AsyncSocket` underneath belongs to this object once upgraded: do not read, write or close it yourself.
/// A TLS socket that is no longer referenced closes its descriptor, without `close_notify`: call ``close()``.
public actor TLSSocket: LoopBound {
    package nonisolated let core: SocketCore
    /// The TCP socket underneath: keeps the descriptor open while this object lives.
    private let socket: AsyncSocket
    private let context: TLSContext
    /// The SSL object and our BIO. Used on the loop thread only (this actor's executor).
    private let handle: ConnectionHandle
    private var connection: OpaquePointer { handle.pointer }
    /// The peer, for error messages.
    private let peer: SocketAddress?
    /// The host name the server's certificate is checked against (clients).
    public nonisolated let serverName: String?

    /// The default timeout of this socket's reads and writes; `nil` waits forever. Starts as the underlying
    /// socket's `AsyncSocket/timeout`.
    public var timeout: Duration?

    /// The event loop whose thread runs this socket (the same as its `AsyncSocket`'s).
    public nonisolated var eventLoop: EventLoop { core.loop }

    /// The socket's executor: its event loop.
    public nonisolated var unownedExecutor: UnownedSerialExecutor { core.executor }

    /// The negotiated protocol version, such as `"TLSv1.3"`.
    public private(set) var protocolVersion = ""
    /// The application protocol agreed through ALPN, or nil.
    public private(set) var alpnProtocol: String?
    /// The peer's certificate, if it sent one.
    public private(set) var peerCertificate: TLSCertificate?
    /// Servers: the name the client asked for (SNI), or nil.
    public private(set) var requestedServerName: String?

    // State of the connection (loop thread).
    private var handshakeDone = false
    private var receivedCloseNotify = false
    private var sentCloseNotify = false
    private var closed = false
    /// A fatal failure: no more I/O on the SSL object and no `SSL_shutdown` (OpenSSL's rule).
    private var failure: (any Error)?
    /// A read result OpenSSL gave while `read` was draining already-buffered records, delivered to the next read.
    private var stashedReadStatus: Int32?

    // Shared readiness waits: one task waits on the core per direction; others wanting the same direction
    // (a read that needs to write while a write waits for room, say) wait for that wait to end, then retry.
    private var waitingAtCore: (read: Bool, write: Bool) = (false, false)
    private var followers: [(id: UInt64, direction: IODirection, continuation: CheckedContinuation<WaitOutcome, Never>)] = []
    private var nextFollowerID: UInt64 = 0

    init(socket: AsyncSocket, context: TLSContext, descriptor: Int32, timeout: Duration?, serverName: String?) throws {
        self.socket = socket
        self.core = socket.core
        self.context = context
        self.peer = socket.transportPeer
        self.timeout = timeout
        self.serverName = serverName
        var error = [CChar](repeating: 0, count: 512)
        guard let connection = ats_conn_new(context.pointer, descriptor, &error, error.count) else {
            throw TLSError(kind: .handshakeFailed, operation: "TLS handshake", address: socket.transportPeer,
                           reason: String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        self.handle = ConnectionHandle(connection)
    }

    /// Sets ``timeout``.
    public func setTimeout(_ timeout: Duration?) {
        self.timeout = timeout
    }

    /// Whether ``close()`` has been called (or the socket underneath was closed).
    public var isClosed: Bool { closed || core.isClosed }

    /// The address this socket is bound to.
    public var localAddress: SocketAddress {
        get async throws { try await socket.localAddress }
    }

    /// The address of the peer.
    public var remoteAddress: SocketAddress {
        get async throws { try await socket.remoteAddress }
    }

    /// How many `recv` calls this connection made that found nothing (`EAGAIN`): each is a syscall spent on
    /// learning that a read must wait. For tests and diagnostics.
    package var emptyReceives: Int { ats_conn_empty_receives(connection) }

    /// SSL objects alive in the process (for leak checks).
    package static var liveConnectionCount: Int { ats_live_connections() }

    // MARK: Handshake

    /// Sets the host name to verify and send as SNI (clients), then runs the handshake, bounded by `limit`.
    func handshake(limit: Duration?, verifyHost: Bool) async throws {
        if let serverName {
            let isIP = ats_is_ip_address(serverName) != 0
            guard ats_conn_set_host(connection, serverName, isIP ? 1 : 0, verifyHost ? 1 : 0) != 0 else {
                throw TLSError(kind: .configuration, operation: "TLS handshake", address: peer, serverName: serverName,
                               reason: "\(String(cString: ats_conn_error(connection))): \"\(serverName)\"")
            }
        }
        // Both directions: nothing else may run on the connection during the handshake.
        try await lock(.read, "TLS handshake")
        defer { core.release(.read) }
        try await lock(.write, "TLS handshake")
        defer { core.release(.write) }
        let deadline = limit.map { Deadline.after($0) }
        while true {
            if core.isClosed { throw socket.transportClosedError("TLS handshake") }
            let status = ats_conn_handshake(connection)
            switch status {
            case Int32(ATS_OK):
                handshakeDone = true
                recordNegotiated()
                return
            case Int32(ATS_WANT_READ):
                _ = try await wait(.read, "TLS handshake", limit: limit, deadline: deadline)
            case Int32(ATS_WANT_WRITE):
                _ = try await wait(.write, "TLS handshake", limit: limit, deadline: deadline)
            case Int32(ATS_CLOSED), Int32(ATS_TRUNCATED):
                throw fail(TLSError(kind: .handshakeFailed, operation: "TLS handshake", address: peer,
                                    serverName: serverName, reason: "the peer closed the connection during the handshake"))
            default:
                throw fail(error(status, "TLS handshake", handshake: true))
            }
        }
    }

    private func recordNegotiated() {
        protocolVersion = String(cString: ats_conn_version(connection))
        var protocolPointer: UnsafePointer<UInt8>?
        let length = ats_conn_alpn(connection, &protocolPointer)
        if length > 0, let protocolPointer {
            alpnProtocol = String(decoding: UnsafeBufferPointer(start: protocolPointer, count: length), as: UTF8.self)
        }
        if let name = ats_conn_server_name(connection), context.isServer { requestedServerName = String(cString: name) }
        var der: UnsafeMutablePointer<UInt8>?
        let count = ats_conn_peer_certificate_der(connection, &der)
        if count > 0, let der {
            let bytes = Array(UnsafeBufferPointer(start: der, count: count))
            ats_free(der)
            var subject = ""
            if let text = ats_conn_peer_subject(connection) {
                subject = String(cString: text)
                ats_free(text)
            }
            peerCertificate = TLSCertificate(subject: subject, der: bytes)
        }
    }

    // MARK: Reading

    /// Reads at least one and at most `maxBytes` decrypted bytes, waiting until some arrive.
    ///
    /// - Returns: the bytes; an empty array only at the end of the stream: the peer's `close_notify`
    ///   (or, with ``TLSConfiguration/allowsTruncation``, the end of the TCP stream).
    /// - Throws: ``TLSError`` (``TLSError/Kind/truncated`` when the stream ends without `close_notify`, the
    ///   peer's alerts), `SocketError` (`EINVAL` when `maxBytes` is not positive, `ETIMEDOUT` after
    ///   ``timeout``, `ECONNRESET`, `EBADF` after ``close()``), or `CancellationError`.
    public func read(upTo maxBytes: Int) async throws -> [UInt8] {
        guard maxBytes > 0 else {
            throw socket.transportInvalidArgument("read(upTo:)", "maxBytes must be positive, got \(maxBytes)")
        }
        if !core.tryAcquire(.read) { try await lock(.read, "read") }
        defer { core.release(.read) }
        let scratch = socket.transportScratch
        let limit = min(maxBytes, scratch.count)
        var deadline: Deadline?
        while true {
            // Copied out of the loop's shared scratch buffer in the same synchronous step as the read.
            if let n = try readStep(into: scratch.baseAddress!, capacity: limit) {
                return Array(UnsafeRawBufferPointer(rebasing: scratch[..<n]))
            }
            deadline = try await wait(pendingDirection, "read", limit: timeout, deadline: deadline)
        }
    }

    /// Reads at least one and at most `maxBytes` decrypted bytes and appends them to `buffer`. When `buffer`
    /// has at least 4 KiB of spare capacity (a reused buffer), OpenSSL decrypts straight into it, growing it
    /// if needed to take up to `maxBytes` (at most 64 KiB per call): no copy. A buffer with less spare capacity
    /// gets a copy of exactly what arrived.
    ///
    /// - Returns: the number of bytes appended; `0` only at the end of the stream.
    /// - Throws: as ``read(upTo:)``.
    public func read(into buffer: inout [UInt8], upTo maxBytes: Int) async throws -> Int {
        guard maxBytes > 0 else {
            throw socket.transportInvalidArgument("read(into:upTo:)", "maxBytes must be positive, got \(maxBytes)")
        }
        if !core.tryAcquire(.read) { try await lock(.read, "read") }
        defer { core.release(.read) }
        let scratch = socket.transportScratch
        var deadline: Deadline?
        while true {
            let spare = buffer.capacity - buffer.count
            let limit = min(maxBytes, scratch.count)
            if spare >= min(limit, Self.directReadMinimum) {
                // Straight into the buffer, grown to take `limit` more if needed (a reused buffer keeps its
                // capacity; one that stayed at its first read's size would cap every later read at that size).
                let room = limit
                var outcome: Result<Int?, any Error> = .success(nil)
                buffer.append(addingCapacity: room) { span in
                    span.withUnsafeMutableBufferPointer { memory, initialized in
                        outcome = Result { try readStep(into: UnsafeMutableRawPointer(memory.baseAddress!), capacity: room) }
                        if case .success(let n?) = outcome { initialized = n }
                    }
                }
                if let n = try outcome.get() { return n }
            } else if let n = try readStep(into: scratch.baseAddress!, capacity: limit) {
                // Copied out of the loop's shared scratch buffer in the same synchronous step as the read.
                buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[..<n]))
                return n
            }
            deadline = try await wait(pendingDirection, "read", limit: timeout, deadline: deadline)
        }
    }

    /// The spare capacity from which ``read(into:upTo:)`` decrypts straight into the caller's buffer.
    static let directReadMinimum = 4096

    /// Reads exactly `count` decrypted bytes.
    ///
    /// - Throws: `IncompleteReadError` if the stream ends first; otherwise as ``read(upTo:)``.
    public func read(exactly count: Int) async throws -> [UInt8] {
        guard count >= 0 else {
            throw socket.transportInvalidArgument("read(exactly:)", "count must not be negative, got \(count)")
        }
        if !core.tryAcquire(.read) { try await lock(.read, "read") }
        defer { core.release(.read) }
        if count == 0 { try checkUsable("read"); return [] }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(min(count, 16 << 20))
        var deadline: Deadline?
        let scratch = socket.transportScratch
        while bytes.count < count {
            let limit = min(count - bytes.count, scratch.count)
            guard let n = try readStep(into: scratch.baseAddress!, capacity: limit) else {
                deadline = try await wait(pendingDirection, "read", limit: timeout, deadline: deadline)
                continue
            }
            if n == 0 { throw IncompleteReadError(partial: bytes, expected: count) }
            // Copied out of the loop's shared scratch buffer in the same synchronous step as the read.
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[..<n]))
            deadline = nil
        }
        return bytes
    }

    /// How often a read or write handed the loop back because its turn was spent (see `IOBudget`; for tests).
    private(set) var handBacks = 0
    /// The fairness turns of reads and writes (`IOBudget`, as `AsyncSocket`'s): charged per `SSL_read_ex` and
    /// `SSL_write_ex` that moved bytes, across calls, so that an echo loop over a stream that always has data
    /// (or room) hands the loop back instead of keeping it (the other connections, the accepts, the timers).
    private var readBudget = IOBudget()
    private var writeBudget = IOBudget()
    /// The read turn is spent: the read step returned nil without reading, and the caller's `wait` hands the
    /// loop back instead of waiting for readiness.
    private var readTurnSpent = false
    /// Whether reads and writes hand the loop back when their turn is spent: always, except with a zero
    /// ``timeout`` (non-blocking use, where a call never waits): such a call only checks for cancellation.
    private var handsLoopBack: Bool { timeout.map { $0 > .zero } ?? true }
    /// The direction the last step that could not finish is waiting for.
    private var pendingDirection: IODirection = .read
    /// Whether a read that finds the socket drained by the read before it, in the same job, tries anyway
    /// (see `readStep`).
    private var readAfterWrite = ReadAfterWritePrediction()
    /// The loop's job number in which a read step last marked the socket drained; 0: none since.
    private var readDrainedInJob: UInt = 0

    /// One synchronous read step: OpenSSL's `SSL_read_ex` into `destination` (at most `capacity` bytes), then
    /// more while OpenSSL already holds bytes (`SSL_has_pending`). Returns the count (0 at the end of the
    /// stream), or nil when the caller must wait for ``pendingDirection`` and call again.
    ///
    /// A read that took everything (nothing left in OpenSSL, and our BIO's last `recv` came back short) marks
    /// the socket drained, as `AsyncSocket`'s short reads do: the next read then waits for a readiness report
    /// instead of calling `SSL_read_ex` and `recv` only to learn that nothing came (request and response: the
    /// handler writes its answer and reads again before the next request can have arrived). Safe because read
    /// readiness is level-triggered and nothing is buffered in OpenSSL: bytes that did arrive are reported by
    /// the next poll. The exception: a read in the same job as the one that drained the socket, with nothing
    /// else queued on the loop, calls `SSL_read_ex` anyway when `ReadAfterWritePrediction` says the next
    /// request is often there already (the peer on the same core, run while the answer was being sent).
    private func readStep(into destination: UnsafeMutableRawPointer, capacity: Int) throws -> Int? {
        if receivedCloseNotify { return 0 }
        try checkUsable("read")
        var status: Int32
        var count = 0
        if let stashed = stashedReadStatus {
            stashedReadStatus = nil
            status = stashed
        } else {
            if readBudget.isSpent(atPoll: core.loop.polls) {
                if handsLoopBack {
                    readTurnSpent = true
                    pendingDirection = .read
                    return nil
                }
                if Task.isCancelled { throw CancellationError() }
            } else if readBudget.mustCheckCancellation {
                readBudget.checkedCancellation()
                if Task.isCancelled { throw CancellationError() }
            }
            var predicted = false
            if !core.readHint, ats_conn_has_pending(connection) == 0 {
                guard readAfterWrite.shouldTryAfterDrain(inJob: &readDrainedInJob, on: core.loop) else {
                    pendingDirection = .read
                    return nil
                }
                predicted = true
            }
            var done = 0
            status = ats_conn_read(connection, destination, capacity, &done)
            if predicted { readAfterWrite.record(found: status != Int32(ATS_WANT_READ)) }
            if status == Int32(ATS_OK) {
                count = done
                while count < capacity, ats_conn_has_pending(connection) != 0 {
                    let next = ats_conn_read(connection, destination + count, capacity - count, &done)
                    if next == Int32(ATS_OK) {
                        count += done
                    } else {
                        if next != Int32(ATS_WANT_READ) { stashedReadStatus = next }
                        break
                    }
                }
                readBudget.charge(count, atPoll: core.loop.polls)
                if stashedReadStatus == nil, ats_conn_input_drained(connection) != 0,
                   ats_conn_has_pending(connection) == 0 {
                    core.markDrained(.read)
                    readDrainedInJob = core.loop.jobSerial
                    readBudget.reset()
                }
            }
        }
        switch status {
        case Int32(ATS_OK):
            return count
        case Int32(ATS_WANT_READ):
            pendingDirection = .read
            return nil
        case Int32(ATS_WANT_WRITE):
            pendingDirection = .write
            return nil
        case Int32(ATS_CLOSED):
            receivedCloseNotify = true
            return 0
        default:
            if status == Int32(ATS_TRUNCATED) || (status == Int32(ATS_SYSCALL) && ats_conn_errno(connection) == 0) {
                if context.configuration.allowsTruncation {
                    receivedCloseNotify = true
                    return 0
                }
                throw fail(TLSError(kind: .truncated, operation: "read", address: peer, serverName: serverName,
                                    reason: "the stream ended without close_notify (truncated)"))
            }
            throw fail(error(status, "read", handshake: false))
        }
    }

    /// The most bytes handed to one `SSL_write_ex`.
    static let writeChunk = 256 << 10

    // MARK: Writing

    /// Encrypts and writes all of `bytes`, waiting for room as often as needed.
    ///
    /// Writes from concurrent tasks never interleave.
    /// - Throws: `SocketError` (`EPIPE` or `ECONNRESET` when the peer is gone, `EPIPE` after
    ///   ``shutdown(_:)``, `ETIMEDOUT` after ``timeout`` without progress, `EBADF` after ``close()``),
    ///   ``TLSError``, or `CancellationError`.
    public func write(_ bytes: [UInt8]) async throws {
        try await send(bytes[...])
    }

    /// Encrypts and writes all of `bytes` (see ``write(_:)-([UInt8])``).
    public func write(_ bytes: ArraySlice<UInt8>) async throws {
        try await send(bytes)
    }

    /// Encrypts and writes the UTF-8 bytes of `text` (see ``write(_:)-([UInt8])``).
    public func write(_ text: String) async throws {
        try await send(Array(text.utf8)[...])
    }

    private func send(_ bytes: ArraySlice<UInt8>) async throws {
        if !core.tryAcquire(.write) { try await lock(.write, "write") }
        defer { core.release(.write) }
        try checkUsable("write")
        if sentCloseNotify {
            throw SocketError(code: 32 /* EPIPE */, operation: "write", address: peer, detail: "close_notify was already sent")
        }
        var offset = bytes.startIndex
        var deadline: Deadline?
        while offset < bytes.endIndex {
            try checkUsable("write")
            if writeBudget.isSpent(atPoll: core.loop.polls) {
                if handsLoopBack {
                    try await handBack(.write, "write")
                    continue
                }
                if Task.isCancelled { throw CancellationError() }
            } else if writeBudget.mustCheckCancellation {
                writeBudget.checkedCancellation()
                if Task.isCancelled { throw CancellationError() }
            }
            // After a wait, the same call again with the same bytes (OpenSSL's rule): `offset` only moves on success.
            let length = min(bytes.endIndex - offset, Self.writeChunk)
            var done = 0
            let status = bytes[offset..<(offset + length)].withUnsafeBytes {
                ats_conn_write(connection, $0.baseAddress, $0.count, &done)
            }
            switch status {
            case Int32(ATS_OK):
                offset += done
                deadline = nil
                writeBudget.charge(done, atPoll: core.loop.polls)
            case Int32(ATS_WANT_WRITE):
                deadline = try await wait(.write, "write", limit: timeout, deadline: deadline)
            case Int32(ATS_WANT_READ):
                deadline = try await wait(.read, "write", limit: timeout, deadline: deadline)
            default:
                throw fail(error(status, "write", handshake: false))
            }
        }
        // The records wait in the shim's write buffer (one send for all of them): send them before returning.
        while true {
            try checkUsable("write")
            let status = ats_conn_flush(connection)
            if status == Int32(ATS_OK) { return }
            if status != Int32(ATS_WANT_WRITE) { throw fail(error(status, "write", handshake: false)) }
            deadline = try await wait(.write, "write", limit: timeout, deadline: deadline)
        }
    }

    // MARK: Shutdown and close

    /// Shuts down one or both directions. `ShutdownDirection/write` (and `ShutdownDirection/both`) sends
    /// `close_notify` (after any write in progress), then shuts down the socket's write side: the peer reads
    /// the end of the stream; this side can go on reading (TLS 1.3). `ShutdownDirection/read` shuts down
    /// the socket's read side only.
    ///
    /// - Throws: `SocketError`, ``TLSError``, or `CancellationError`.
    public func shutdown(_ direction: ShutdownDirection) async throws {
        if direction != .read {
            try await lock(.write, "shutdown")
            defer { core.release(.write) }
            try await sendCloseNotify(limit: timeout)
        }
        try await socket.shutdown(direction)
    }

    /// Sends `close_notify` (once, then closes): waits for room at most
    /// ``TLSConfiguration/closeTimeout``, and not at all when a write is in progress or the connection failed.
    /// Idempotent. Calls waiting in reads or writes throw `SocketError` `EBADF` promptly.
    public func close() async {
        if closed { return }
        closed = true
        if handshakeDone, failure == nil, !sentCloseNotify, !core.isClosed, core.tryAcquire(.write) {
            defer { core.release(.write) }
            try? await sendCloseNotify(limit: context.configuration.closeTimeout)
        }
        core.close()
    }

    /// Sends `close_notify` unless already sent; the caller holds the write lock.
    private func sendCloseNotify(limit: Duration?) async throws {
        if sentCloseNotify || failure != nil || !handshakeDone { return }
        var deadline: Deadline?
        while true {
            if core.isClosed { throw socket.transportClosedError("close_notify") }
            let status = ats_conn_shutdown(connection)
            switch status {
            case Int32(ATS_OK), Int32(ATS_WANT_READ), Int32(ATS_CLOSED):
                sentCloseNotify = true
                return
            case Int32(ATS_WANT_WRITE):
                deadline = try await wait(.write, "close_notify", limit: limit, deadline: deadline)
            default:
                throw fail(error(status, "close_notify", handshake: false))
            }
        }
    }

    // MARK: Helpers

    private func checkUsable(_ operation: String) throws {
        if closed || core.isClosed { throw socket.transportClosedError(operation) }
        if let failure { throw failure }
    }

    /// Records a fatal failure (no more I/O, no `SSL_shutdown`) and returns it.
    private func fail(_ error: any Error) -> any Error {
        if failure == nil { failure = error }
        return error
    }

    /// The error for a failed OpenSSL call (`ATS_SYSCALL` or `ATS_FAILED`), read right after it.
    private func error(_ status: Int32, _ operation: String, handshake: Bool) -> any Error {
        if status == Int32(ATS_SYSCALL) {
            let code = ats_conn_errno(connection)
            if code != 0 { return SocketError(code: code, operation: operation, address: peer) }
            return TLSError(kind: handshake ? .handshakeFailed : .truncated, operation: operation, address: peer,
                            serverName: serverName, reason: "the peer closed the connection")
        }
        let reason = String(cString: ats_conn_error(connection))
        let verification = ats_conn_verify_error(connection).map { String(cString: $0) }
        let kind: TLSError.Kind = verification != nil ? .certificateVerificationFailed
            : handshake ? .handshakeFailed : .protocolFailure
        return TLSError(kind: kind, operation: operation, address: peer, serverName: serverName, reason: reason,
                        verificationError: verification)
    }

    /// Takes the socket's operation lock of `direction` (FIFO). Hot paths try `core.tryAcquire` inline first:
    /// an async call costs a frame on the task's allocator even when it does not suspend.
    private func lock(_ direction: IODirection, _ operation: String) async throws {
        if core.tryAcquire(direction) { return }
        switch await acquire(direction) {
        case .ready: return
        case .cancelled: throw CancellationError()
        case .closed: throw socket.transportClosedError(operation)
        case .timedOut: throw socket.transportTimedOutError(operation, after: timeout)
        case .failed(let code): throw SocketError(code: code, operation: operation, address: peer)
        }
    }

    /// Waits for readiness in `direction`, bounded by `limit` from `deadline` (nil: from now). One task waits
    /// on the socket per direction; another one wanting the same direction waits for that wait to end.
    @inline(__always)
    private func wait(_ direction: IODirection, _ operation: String, limit: Duration?,
                      deadline: Deadline?) async throws -> Deadline? {
        if direction == .read, readTurnSpent {
            // Set by the read step that returned just before, in the same job (no suspension in between).
            readTurnSpent = false
            try await handBack(.read, operation)
            return deadline
        }
        if direction == .read { readBudget.reset() } else { writeBudget.reset() }
        var micros: Int64 = -1
        var deadline = deadline
        if let limit {
            let end = deadline ?? Deadline.after(limit)
            deadline = end
            micros = end.remainingMicroseconds
            if micros == 0 { throw timedOut(operation, limit) }
        }
        core.markDrained(direction)
        let outcome: WaitOutcome
        if direction == .read ? waitingAtCore.read : waitingAtCore.write {
            outcome = await follow(direction)
        } else {
            if direction == .read { waitingAtCore.read = true } else { waitingAtCore.write = true }
            outcome = await waitReady(direction, timeoutMicroseconds: micros)
            if direction == .read { waitingAtCore.read = false } else { waitingAtCore.write = false }
            wakeFollowers(direction)
        }
        switch outcome {
        case .ready: return deadline
        case .timedOut:
            if let deadline, deadline.remainingMicroseconds > 0 { return deadline }  // libevent's coarse clock
            throw timedOut(operation, limit)
        case .cancelled: throw CancellationError()
        case .closed: throw socket.transportClosedError(operation)
        case .failed(let code): throw SocketError(code: code, operation: operation, address: peer, detail: "event_add failed")
        }
    }

    /// The fairness hand-back (see `IOBudget`): lets the loop poll once, so every other ready socket, the timers
    /// and the accepts get their turn, then starts a new turn for `direction`. The caller holds the operation
    /// lock of `direction`. Uses the direction's wait at the core like `wait` (followers then try again); when
    /// another task waits there already (a write that needs to read, or the reverse), it goes behind the loop's
    /// queued jobs instead. Where a busy read or write notices cancellation.
    private func handBack(_ direction: IODirection, _ operation: String) async throws {
        handBacks &+= 1
        defer { if direction == .read { readBudget.reset() } else { writeBudget.reset() } }
        if direction == .read ? waitingAtCore.read : waitingAtCore.write {
            await Task.yield()
            try Task.checkCancellation()
            return
        }
        if direction == .read { waitingAtCore.read = true } else { waitingAtCore.write = true }
        let outcome = await yieldToLoop(direction)
        if direction == .read { waitingAtCore.read = false } else { waitingAtCore.write = false }
        wakeFollowers(direction)
        switch outcome {
        case .ready, .timedOut: return
        case .cancelled: throw CancellationError()
        case .closed: throw socket.transportClosedError(operation)
        case .failed(let code): throw SocketError(code: code, operation: operation, address: peer, detail: "event_add failed")
        }
    }

    private func timedOut(_ operation: String, _ limit: Duration?) -> any Error {
        socket.transportTimedOutError(operation, after: limit)
    }

    /// Waits until the task waiting on the socket in `direction` is woken (`.ready`: try again), or this
    /// task is cancelled.
    private func follow(_ direction: IODirection) async -> WaitOutcome {
        nextFollowerID &+= 1
        let id = nextFollowerID
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if Task.isCancelled { return continuation.resume(returning: .cancelled) }
                followers.append((id, direction, continuation))
            }
        } onCancel: {
            Task { await self.cancelFollower(id) }
        }
    }

    private func wakeFollowers(_ direction: IODirection) {
        guard !followers.isEmpty else { return }
        var kept: [(id: UInt64, direction: IODirection, continuation: CheckedContinuation<WaitOutcome, Never>)] = []
        for follower in followers {
            if follower.direction == direction {
                follower.continuation.resume(returning: core.isClosed ? .closed : .ready)
            } else {
                kept.append(follower)
            }
        }
        followers = kept
    }

    private func cancelFollower(_ id: UInt64) {
        guard let index = followers.firstIndex(where: { $0.id == id }) else { return }
        followers.remove(at: index).continuation.resume(returning: .cancelled)
    }
}

/// Owns an `ats_conn *` (the SSL object and our BIO), freed with the last reference: the actor's, once no
/// call can be using it. `SSL_free` does no I/O (no `close_notify`).
private final class ConnectionHandle {
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        ats_conn_free(pointer)
    }
}

/// A peer's certificate.
public struct TLSCertificate: Sendable, Hashable {
    /// The subject's distinguished name (RFC 2253), such as `"CN=localhost,O=Example"`.
    public var subject: String
    /// The certificate in DER.
    public var der: [UInt8]

    /// Creates the value.
    public init(subject: String, der: [UInt8]) {
        self.subject = subject
        self.der = der
    }
}
