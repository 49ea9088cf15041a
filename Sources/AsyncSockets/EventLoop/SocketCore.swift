#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CLibeventShim

/// The loop-confined state of one descriptor: the descriptor itself, its readiness registrations, the task
/// waiting in each direction and the FIFO of tasks queued for each direction's operation lock.
///
/// Actors (``AsyncSocket``, the server's listener) own one each and run on the same loop, so their code,
/// libevent's callbacks and cancellation hand-offs all touch it on the loop thread only.
///
/// ## Readiness
/// A direction is registered with libevent the first time it has to wait, as a persistent, edge-triggered
/// event (`EV_PERSIST | EV_ET`), and stays registered until ``close()``: a wait then costs no syscall, only
/// storing the continuation. An edge with no waiter is remembered in ``readHint`` so the next read tries the
/// syscall; after a read that drained the socket (`EAGAIN`, or fewer bytes than asked) the next read waits for
/// the next edge without a wasted `recv`. Timeouts use separate timer events (no syscall either).
///
/// ## Lifetime
/// While libevent holds events whose callback argument is this object, the object keeps itself alive
/// (one retain taken when the first event is created, released by ``close()``). Owners therefore must call
/// ``close()`` when they go away (their `deinit` hands it to the loop thread): libevent can never call back
/// into freed memory, and the descriptor number is not reused while libevent still knows it.
final class SocketCore: @unchecked Sendable {
    // @unchecked Sendable: every stored property except `loop` (immutable, Sendable) is read and written on
    // the loop thread only. The owning actor's executor is `loop`; libevent calls back on the loop thread;
    // cancellation handlers and owners' deinits, which may run on other threads, never touch the state
    // directly: they call `loop.execute`, which runs the closure on the loop thread. `deinit` itself runs only
    // once no events exist (they hold a retain), so nothing can race with it.

    struct Waiter {
        let id: UInt64
        let continuation: UnsafeContinuation<WaitOutcome, Never>
        /// A sleep: readiness edges do not end it, only its timer.
        let ignoresReadiness: Bool
    }

    /// A FIFO lock for one direction: held across suspensions so that writes never interleave and reads
    /// never race for the same bytes.
    struct OperationLock {
        var held = false
        var queue: [Waiter] = []
    }

    let loop: EventLoop
    private(set) var fd: Int32
    private var readEvent = LibeventEvent()
    private var writeEvent = LibeventEvent()
    private var readTimer = LibeventEvent()
    private var writeTimer = LibeventEvent()
    private var readWaiter: Waiter?
    private var writeWaiter: Waiter?
    private var readLock = OperationLock()
    private var writeLock = OperationLock()
    private var nextID: UInt64 = 0
    private var retainedByEvents = false

    /// Whether a read may find data without waiting: false after a read drained the socket, true again after
    /// a readiness edge.
    var readHint = true

    init(fd: Int32, loop: EventLoop) {
        self.fd = fd
        self.loop = loop
    }

    var isClosed: Bool { fd < 0 }

    deinit {
        // No events exist (they would keep this object alive), so closing here cannot race with libevent.
        if fd >= 0 { _ = Glibc.close(fd) }
    }

    /// Closes from any thread: at once on the loop thread, otherwise handed to it. For owners' `deinit`.
    func closeFromAnyThread() {
        if loop.inLoop {
            close()
        } else {
            loop.execute { self.close() }
        }
    }

    // MARK: Waiting for readiness

    /// Waits until the descriptor is ready in `direction`, the timeout passes, the task is cancelled or the
    /// socket is closed. Must be called on the loop thread (from an actor running on `loop`).
    func wait(_ direction: IODirection, timeoutMicroseconds: Int64 = -1,
              isolation: isolated (any Actor)? = #isolation) async -> WaitOutcome {
        await suspend(direction, timeoutMicroseconds: timeoutMicroseconds, sleep: false)
    }

    /// Sleeps for `microseconds` on the loop (`.timedOut` when the time passed), or until cancelled or closed.
    func sleep(microseconds: Int64, isolation: isolated (any Actor)? = #isolation) async -> WaitOutcome {
        await suspend(.read, timeoutMicroseconds: microseconds, sleep: true)
    }

    private func suspend(_ direction: IODirection, timeoutMicroseconds: Int64, sleep: Bool,
                         isolation: isolated (any Actor)? = #isolation) async -> WaitOutcome {
        if fd < 0 { return .closed }
        if Task.isCancelled { return .cancelled }
        loop.checkIsolated()
        nextID &+= 1
        let id = nextID
        return await withTaskCancellationHandler {
            // Capturing `isolation` keeps this closure isolated to the caller's actor (SE-0420): without it the
            // closure would be nonisolated and hop off the loop thread before touching loop-confined state.
            _ = isolation
            return await withUnsafeContinuation { (continuation: UnsafeContinuation<WaitOutcome, Never>) in
                // Registration and storing the waiter happen in one synchronous step on the loop thread: no
                // readiness edge can be processed in between and lost.
                if !sleep, let failure = register(direction) {
                    continuation.resume(returning: failure)
                    return
                }
                if timeoutMicroseconds >= 0 {
                    let arg = Unmanaged.passUnretained(self).toOpaque()
                    let armed = direction == .read
                        ? readTimer.arm(base: loop.base, fd: -1, what: 0, timeoutMicroseconds: timeoutMicroseconds,
                                        callback: readTimerCallback, arg: arg)
                        : writeTimer.arm(base: loop.base, fd: -1, what: 0, timeoutMicroseconds: timeoutMicroseconds,
                                         callback: writeTimerCallback, arg: arg)
                    guard armed else {
                        continuation.resume(returning: .failed(errno))
                        return
                    }
                    retainWhileEventsExist()
                }
                let waiter = Waiter(id: id, continuation: continuation, ignoresReadiness: sleep)
                switch direction {
                case .read: readWaiter = waiter
                case .write: writeWaiter = waiter
                }
            }
        } onCancel: {
            loop.execute { self.cancelWait(direction, id: id) }
        }
    }

    /// Registers the persistent edge-triggered event of `direction` if it is not yet registered.
    private func register(_ direction: IODirection) -> WaitOutcome? {
        let arg = Unmanaged.passUnretained(self).toOpaque()
        let ok: Bool
        switch direction {
        case .read:
            if readEvent.isArmed { return nil }
            ok = readEvent.arm(base: loop.base, fd: fd, what: AS_EV_READ | AS_EV_PERSIST | AS_EV_ET,
                               timeoutMicroseconds: -1, callback: readCallback, arg: arg)
        case .write:
            if writeEvent.isArmed { return nil }
            ok = writeEvent.arm(base: loop.base, fd: fd, what: AS_EV_WRITE | AS_EV_PERSIST | AS_EV_ET,
                                timeoutMicroseconds: -1, callback: writeCallback, arg: arg)
        }
        guard ok else { return .failed(errno) }
        retainWhileEventsExist()
        return nil
    }

    private func retainWhileEventsExist() {
        if !retainedByEvents {
            retainedByEvents = true
            _ = Unmanaged.passRetained(self)
        }
    }

    /// A readiness edge (persistent event) in `direction`.
    fileprivate func ready(_ direction: IODirection) {
        switch direction {
        case .read:
            readHint = true
            guard let waiter = readWaiter, !waiter.ignoresReadiness else { return }
            readWaiter = nil
            readTimer.disarm()
            waiter.continuation.resume(returning: .ready)
        case .write:
            guard let waiter = writeWaiter else { return }
            writeWaiter = nil
            writeTimer.disarm()
            waiter.continuation.resume(returning: .ready)
        }
    }

    /// The timer of `direction` fired (non-persistent: libevent removed it).
    fileprivate func timerFired(_ direction: IODirection) {
        switch direction {
        case .read:
            readTimer.fired()
            guard let waiter = readWaiter else { return }
            readWaiter = nil
            waiter.continuation.resume(returning: .timedOut)
        case .write:
            writeTimer.fired()
            guard let waiter = writeWaiter else { return }
            writeWaiter = nil
            waiter.continuation.resume(returning: .timedOut)
        }
    }

    private func cancelWait(_ direction: IODirection, id: UInt64) {
        switch direction {
        case .read:
            guard let waiter = readWaiter, waiter.id == id else {
                return cancelQueued(&readLock, id: id)
            }
            readWaiter = nil
            readTimer.disarm()
            waiter.continuation.resume(returning: .cancelled)
        case .write:
            guard let waiter = writeWaiter, waiter.id == id else {
                return cancelQueued(&writeLock, id: id)
            }
            writeWaiter = nil
            writeTimer.disarm()
            waiter.continuation.resume(returning: .cancelled)
        }
    }

    // MARK: Operation locks

    /// Takes the operation lock of `direction`, waiting in FIFO order behind earlier holders.
    /// `.ready` when taken; `.cancelled` or `.closed` when the wait ended otherwise (the lock is not held).
    @inline(__always)
    func acquire(_ direction: IODirection, isolation: isolated (any Actor)? = #isolation) async -> WaitOutcome {
        if fd < 0 { return .closed }
        switch direction {
        case .read:
            if !readLock.held {
                readLock.held = true
                return .ready
            }
        case .write:
            if !writeLock.held {
                writeLock.held = true
                return .ready
            }
        }
        return await enqueue(direction)
    }

    private func enqueue(_ direction: IODirection, isolation: isolated (any Actor)? = #isolation) async -> WaitOutcome {
        if Task.isCancelled { return .cancelled }
        nextID &+= 1
        let id = nextID
        return await withTaskCancellationHandler {
            // Capturing `isolation` keeps this closure isolated to the caller's actor (SE-0420): without it the
            // closure would be nonisolated and hop off the loop thread before touching loop-confined state.
            _ = isolation
            return await withUnsafeContinuation { (continuation: UnsafeContinuation<WaitOutcome, Never>) in
                let waiter = Waiter(id: id, continuation: continuation, ignoresReadiness: false)
                switch direction {
                case .read: readLock.queue.append(waiter)
                case .write: writeLock.queue.append(waiter)
                }
            }
        } onCancel: {
            loop.execute { self.cancelWait(direction, id: id) }
        }
    }

    /// Releases the operation lock of `direction`, handing it to the next queued task if any.
    @inline(__always)
    func release(_ direction: IODirection) {
        switch direction {
        case .read: Self.handOver(&readLock)
        case .write: Self.handOver(&writeLock)
        }
    }

    private static func handOver(_ lock: inout OperationLock) {
        if lock.queue.isEmpty {
            lock.held = false
        } else {
            lock.queue.removeFirst().continuation.resume(returning: .ready)
        }
    }

    private func cancelQueued(_ lock: inout OperationLock, id: UInt64) {
        guard let index = lock.queue.firstIndex(where: { $0.id == id }) else { return }
        lock.queue.remove(at: index).continuation.resume(returning: .cancelled)
    }

    // MARK: Closing

    /// Closes the descriptor, frees the libevent events and wakes every waiter with `.closed`. Idempotent.
    /// Loop thread only.
    func close() {
        guard fd >= 0 else { return }
        readEvent.free()
        writeEvent.free()
        readTimer.free()
        writeTimer.free()
        _ = Glibc.close(fd)
        fd = -1
        if let waiter = readWaiter {
            readWaiter = nil
            waiter.continuation.resume(returning: .closed)
        }
        if let waiter = writeWaiter {
            writeWaiter = nil
            waiter.continuation.resume(returning: .closed)
        }
        let queued = readLock.queue + writeLock.queue
        readLock.queue.removeAll()
        writeLock.queue.removeAll()
        for waiter in queued { waiter.continuation.resume(returning: .closed) }
        if retainedByEvents {
            retainedByEvents = false
            Unmanaged.passUnretained(self).release()
        }
    }
}

// The C callbacks libevent calls on the loop thread; `arg` is the `SocketCore`, kept alive by its events.
private let readCallback: as_event_callback = { _, _, arg in
    Unmanaged<SocketCore>.fromOpaque(arg!).takeUnretainedValue().ready(.read)
}

private let writeCallback: as_event_callback = { _, _, arg in
    Unmanaged<SocketCore>.fromOpaque(arg!).takeUnretainedValue().ready(.write)
}

private let readTimerCallback: as_event_callback = { _, _, arg in
    Unmanaged<SocketCore>.fromOpaque(arg!).takeUnretainedValue().timerFired(.read)
}

private let writeTimerCallback: as_event_callback = { _, _, arg in
    Unmanaged<SocketCore>.fromOpaque(arg!).takeUnretainedValue().timerFired(.write)
}
