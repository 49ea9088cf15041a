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
/// libevent's callbacks and cancellation hand-offs all touch it on the loop thread only. Its methods are
/// synchronous: the actors suspend (see `LoopBound`) and hand it their continuations.
///
/// ## Readiness
/// A direction is registered with libevent the first time it has to wait, as a persistent, level-triggered event
/// (`EV_PERSIST`), and stays registered while it is wanted: a wait then costs no syscall, only storing the
/// continuation. Each direction has a readiness hint: a report from libevent sets it, a syscall that found nothing
/// to do clears it, and a wait that starts while its hint is set returns at once, so no report is lost between a
/// syscall and the wait. Timeouts use separate timer events (no syscall either).
///
/// - A read that returns fewer bytes than asked for clears the read hint, so the next read waits instead of
///   calling `recv` only to get `EAGAIN`: one syscall fewer per request/response. The guess is safe only
///   because the event is level-triggered: if bytes, an end of stream or an error are still pending (a FIN or
///   RST that arrived together with the data raises no further edge), the next poll reports the socket again.
/// - A level-triggered event that nobody waits for is reported on every poll (a socket is writable nearly all
///   the time), so it is removed when that happens: a write event at its first such report, a read event after
///   ``unwantedReportLimit`` reports in a row. The next wait in that direction adds it again.
/// - Both directions of a descriptor must use the same mode: libevent keeps one epoll registration per
///   descriptor, whose edge-triggered flag follows the last change made to it, so an edge-triggered write event
///   would silently make the read event edge-triggered too (and a level-triggered read event would make the write
///   event level-triggered: a loop that never sleeps).
///
/// ## Lifetime
/// While libevent holds events whose callback argument is this object, the object keeps itself alive
/// (one retain taken when the first event is created, released by ``close()``). Owners therefore must call
/// ``close()`` when they go away (their `deinit` hands it to the loop thread): libevent can never call back
/// into freed memory, and the descriptor number is not reused while libevent still knows it.
package final class SocketCore: @unchecked Sendable {
    // @unchecked Sendable: every stored property except `loop` (immutable, Sendable) is read and written on
    // the loop thread only. The owning actor's executor is `loop`; libevent calls back on the loop thread;
    // cancellation handlers and owners' deinits, which may run on other threads, never touch the state
    // directly: they call `loop.execute`, which runs the closure on the loop thread. `deinit` itself runs only
    // once no events exist (they hold a retain), so nothing can race with it.

    struct Waiter {
        let id: UInt64
        let continuation: UnsafeContinuation<WaitOutcome, Never>
        /// A sleep: readiness reports do not end it, only its timer.
        let ignoresReadiness: Bool
    }

    /// Resumes a waiter. Every waiting task prefers the loop as its task executor while it waits (`LoopBound`
    /// sees to that), so its continuation runs on the loop thread.
    @inline(__always)
    private func resume(_ waiter: Waiter, _ outcome: WaitOutcome) {
        loop.resume(waiter.continuation, with: outcome)
    }

    /// A FIFO lock for one direction: held across suspensions so that writes never interleave and reads
    /// never race for the same bytes.
    struct OperationLock {
        var held = false
        var queue: [Waiter] = []
    }

    package let loop: EventLoop
    package private(set) var fd: Int32
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

    /// Whether a read may find data without waiting: false after a read found the socket drained (`EAGAIN` or
    /// a short read), true again after a readiness report.
    var readHint = true
    /// Read readiness reports in a row that found no reader waiting (see ``unwantedReportLimit``).
    private var unwantedReadReports = 0
    /// After this many read reports in a row with no reader waiting, the level-triggered read event is
    /// removed until a read waits again. Two, not one: a reader that is about to wait (its job is queued, or it
    /// is on its way from another thread) usually arrives within one loop iteration, and removing and adding
    /// the event again would cost two `epoll_ctl` calls.
    static let unwantedReportLimit = 2

    init(fd: Int32, loop: EventLoop) {
        self.fd = fd
        self.loop = loop
    }

    package var isClosed: Bool { fd < 0 }

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

    // MARK: Waiting for readiness (driven by `LoopBound` actors; everything here is synchronous)

    /// A fresh identifier for a wait or a queued lock request, so that a late cancellation cannot hit a
    /// later wait.
    func makeWaitID() -> UInt64 {
        nextID &+= 1
        return nextID
    }

    /// Whether a write may find room without waiting: false after `EAGAIN` (or a connect in progress), true
    /// again after a readiness report.
    private var writeHint = true

    /// Clears the readiness hint of `direction`: the last syscall found nothing (more) to do. For reads, also
    /// after a short read (see "Readiness" above).
    package func markDrained(_ direction: IODirection) {
        switch direction {
        case .read: readHint = false
        case .write: writeHint = false
        }
    }

    /// Starts a wait: registers the direction if needed, arms the timeout, stores the waiter; or resumes
    /// `continuation` at once (closed, already ready, libevent failure). Loop thread only.
    func beginWait(_ direction: IODirection, id: UInt64, timeoutMicroseconds: Int64, sleep: Bool,
                   _ continuation: UnsafeContinuation<WaitOutcome, Never>) {
        loop.checkIsolated()
        if fd < 0 { return continuation.resume(returning: .closed) }
        if !sleep {
            let hinted = direction == .read ? readHint : writeHint
            if hinted { return continuation.resume(returning: .ready) }
            if let failure = register(direction) { return continuation.resume(returning: failure) }
        }
        if timeoutMicroseconds >= 0 {
            let arg = Unmanaged.passUnretained(self).toOpaque()
            let armed = direction == .read
                ? readTimer.arm(base: loop.base, fd: -1, what: 0, timeoutMicroseconds: timeoutMicroseconds,
                                callback: readTimerCallback, arg: arg)
                : writeTimer.arm(base: loop.base, fd: -1, what: 0, timeoutMicroseconds: timeoutMicroseconds,
                                 callback: writeTimerCallback, arg: arg)
            guard armed else { return continuation.resume(returning: .failed(errno)) }
            retainWhileEventsExist()
        }
        let waiter = Waiter(id: id, continuation: continuation, ignoresReadiness: sleep)
        switch direction {
        case .read: readWaiter = waiter
        case .write: writeWaiter = waiter
        }
    }

    /// Ends the wait `id` with `.cancelled` if it is still pending (a wait or a queued lock request).
    /// Loop thread only: cancellation handlers reach it through `loop.execute`.
    func cancel(_ direction: IODirection, id: UInt64) {
        switch direction {
        case .read:
            guard let waiter = readWaiter, waiter.id == id else {
                return cancelQueued(.read, id: id)
            }
            readWaiter = nil
            readTimer.disarm()
            resume(waiter, .cancelled)
        case .write:
            guard let waiter = writeWaiter, waiter.id == id else {
                return cancelQueued(.write, id: id)
            }
            writeWaiter = nil
            writeTimer.disarm()
            resume(waiter, .cancelled)
        }
    }

    /// Registers the persistent, level-triggered event of `direction` if it is not registered.
    private func register(_ direction: IODirection) -> WaitOutcome? {
        let arg = Unmanaged.passUnretained(self).toOpaque()
        let ok: Bool
        switch direction {
        case .read:
            unwantedReadReports = 0
            if readEvent.isArmed { return nil }
            ok = readEvent.arm(base: loop.base, fd: fd, what: AS_EV_READ | AS_EV_PERSIST,
                               timeoutMicroseconds: -1, callback: readCallback, arg: arg)
        case .write:
            if writeEvent.isArmed { return nil }
            ok = writeEvent.arm(base: loop.base, fd: fd, what: AS_EV_WRITE | AS_EV_PERSIST,
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

    /// A readiness report (persistent event) in `direction`.
    fileprivate func ready(_ direction: IODirection) {
        switch direction {
        case .read:
            readHint = true
            guard let waiter = readWaiter, !waiter.ignoresReadiness else {
                // Level-triggered: nobody wants this now, and it will be reported on every poll until read.
                unwantedReadReports += 1
                if unwantedReadReports >= Self.unwantedReportLimit {
                    unwantedReadReports = 0
                    readEvent.disarm()
                }
                return
            }
            unwantedReadReports = 0
            readWaiter = nil
            readTimer.disarm()
            resume(waiter, .ready)
        case .write:
            writeHint = true
            guard let waiter = writeWaiter else {
                // Level-triggered and writable: reported on every poll until removed.
                writeEvent.disarm()
                return
            }
            writeWaiter = nil
            writeTimer.disarm()
            resume(waiter, .ready)
        }
    }

    /// The timer of `direction` fired (non-persistent: libevent removed it).
    fileprivate func timerFired(_ direction: IODirection) {
        switch direction {
        case .read:
            readTimer.fired()
            guard let waiter = readWaiter else { return }
            readWaiter = nil
            resume(waiter, .timedOut)
        case .write:
            writeTimer.fired()
            guard let waiter = writeWaiter else { return }
            writeWaiter = nil
            resume(waiter, .timedOut)
        }
    }


    // MARK: Operation locks

    /// Takes the operation lock of `direction` if it is free. Loop thread only.
    @inline(__always)
    package func tryAcquire(_ direction: IODirection) -> Bool {
        switch direction {
        case .read:
            if readLock.held { return false }
            readLock.held = true
        case .write:
            if writeLock.held { return false }
            writeLock.held = true
        }
        return true
    }

    /// Queues for the operation lock of `direction` (FIFO); `continuation` is resumed with `.ready` when the
    /// lock is handed over, or `.cancelled`/`.closed`. Loop thread only.
    func enqueueForLock(_ direction: IODirection, id: UInt64, _ continuation: UnsafeContinuation<WaitOutcome, Never>) {
        loop.checkIsolated()
        if fd < 0 { return continuation.resume(returning: .closed) }
        if tryAcquire(direction) { return continuation.resume(returning: .ready) }
        let waiter = Waiter(id: id, continuation: continuation, ignoresReadiness: false)
        switch direction {
        case .read: readLock.queue.append(waiter)
        case .write: writeLock.queue.append(waiter)
        }
    }

    /// Releases the operation lock of `direction`, handing it to the next queued task if any.
    @inline(__always)
    package func release(_ direction: IODirection) {
        let next: Waiter?
        switch direction {
        case .read: next = Self.handOver(&readLock)
        case .write: next = Self.handOver(&writeLock)
        }
        if let next { resume(next, .ready) }
    }

    /// The next holder of `lock` (which stays held), or nil (and the lock is free).
    private static func handOver(_ lock: inout OperationLock) -> Waiter? {
        if lock.queue.isEmpty {
            lock.held = false
            return nil
        }
        return lock.queue.removeFirst()
    }

    private func cancelQueued(_ direction: IODirection, id: UInt64) {
        let removed: Waiter?
        switch direction {
        case .read: removed = Self.remove(id, from: &readLock)
        case .write: removed = Self.remove(id, from: &writeLock)
        }
        if let removed { resume(removed, .cancelled) }
    }

    private static func remove(_ id: UInt64, from lock: inout OperationLock) -> Waiter? {
        guard let index = lock.queue.firstIndex(where: { $0.id == id }) else { return nil }
        return lock.queue.remove(at: index)
    }

    /// What is waiting on this core now (for tests and diagnostics).
    struct WaitState: Equatable, Sendable {
        /// A task is suspended waiting for readability (or for a timer, on a listener).
        var reading: Bool
        /// A task is suspended waiting for writability (or for a connect to finish).
        var writing: Bool
        /// Tasks queued behind the holder of the read lock.
        var queuedReaders: Int
        /// Tasks queued behind the holder of the write lock.
        var queuedWriters: Int
    }

    /// The current ``WaitState``. Loop thread only.
    var waitState: WaitState {
        WaitState(reading: readWaiter != nil, writing: writeWaiter != nil,
                  queuedReaders: readLock.queue.count, queuedWriters: writeLock.queue.count)
    }

    // MARK: Closing

    /// Closes the descriptor, frees the libevent events and wakes every waiter with `.closed`. Idempotent.
    /// Loop thread only.
    package func close() {
        guard fd >= 0 else { return }
        readEvent.free()
        writeEvent.free()
        readTimer.free()
        writeTimer.free()
        _ = Glibc.close(fd)
        fd = -1
        if let waiter = readWaiter {
            readWaiter = nil
            resume(waiter, .closed)
        }
        if let waiter = writeWaiter {
            writeWaiter = nil
            resume(waiter, .closed)
        }
        let queued = readLock.queue + writeLock.queue
        readLock.queue.removeAll()
        writeLock.queue.removeAll()
        for waiter in queued { resume(waiter, .closed) }
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
