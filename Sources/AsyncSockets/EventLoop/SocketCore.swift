#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CLibeventShim

/// The loop-confined state of one descriptor: the descriptor itself and, per direction (``DirectionState``),
/// its readiness event, its timer, its readiness hint, the task waiting and the FIFO of tasks queued for the
/// direction's operation lock.
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
///   two in a row (``unwantedReportLimit(_:)``). The next wait in that direction adds it again.
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
    // @unchecked Sendable: every stored property except `loop` and `executor` (immutable, Sendable), and the memory
    // `directions` points to, is read and written on the loop thread only. The owning actor's executor is
    // `loop`; libevent calls back on the loop thread; cancellation handlers and owners' deinits, which may run
    // on other threads, never touch the state directly: they call `loop.execute`, which runs the closure on
    // the loop thread. `deinit` itself runs only once no events exist (they hold a retain), so nothing can
    // race with it.

    package let loop: EventLoop
    /// The loop's serial executor, the executor of the actor that owns this core: kept here so that the
    /// actor's `unownedExecutor`, which the runtime asks at every call into the actor, is a single load.
    package let executor: UnownedSerialExecutor
    package private(set) var fd: Int32
    /// The state of each direction, indexed by ``IODirection/index``: every operation below is written once,
    /// for either direction. Memory the core owns (allocated in `init`, freed in `deinit`) rather than two
    /// stored properties: Swift checks each access to a class's stored `var` for overlapping accesses at run
    /// time (`swift_beginAccess`, about 100 instructions, several times per read or write), and chooses
    /// between two properties with a branch. Plain memory is safe here because every access is on the loop
    /// thread (see above) and none overlaps another: `DirectionState`'s methods call nothing but libevent's
    /// `event_add`, `event_del` and `event_free`, which never call back into Swift.
    private let directions: UnsafeMutablePointer<DirectionState>
    private var nextID: UInt64 = 0
    private var retainedByEvents = false

    init(fd: Int32, loop: EventLoop) {
        self.fd = fd
        self.loop = loop
        self.executor = loop.asUnownedSerialExecutor()
        directions = .allocate(capacity: 2)
        directions.initialize(repeating: DirectionState(), count: 2)
    }

    /// The state of `direction`, in place.
    private subscript(direction: IODirection) -> DirectionState {
        @inline(__always) unsafeAddress { UnsafePointer(directions + direction.index) }
        @inline(__always) unsafeMutableAddress { directions + direction.index }
    }

    package var isClosed: Bool { fd < 0 }

    /// Whether a read may find data without waiting (see ``DirectionState/hint``).
    package var readHint: Bool {
        @inline(__always) get { self[.read].hint }
    }

    /// How many readiness reports in a row with nobody waiting remove the level-triggered event of
    /// `direction` (until a wait adds it again). Reads: two, not one: a reader that is about to wait (its job
    /// is queued, or it is on its way from another thread) usually arrives within one loop iteration, and
    /// removing and adding the event again would cost two `epoll_ctl` calls. Writes: one (a socket is
    /// writable nearly all the time).
    static func unwantedReportLimit(_ direction: IODirection) -> Int { direction == .read ? 2 : 1 }

    deinit {
        // No events exist (they would keep this object alive), so closing here cannot race with libevent.
        if fd >= 0 { _ = Posix.close(fd) }
        directions.deinitialize(count: 2)
        directions.deallocate()
    }

    /// Closes from any thread: at once on the loop thread, otherwise handed to it. For owners' `deinit`.
    func closeFromAnyThread() {
        if loop.inLoop {
            close()
        } else {
            loop.execute { self.close() }
        }
    }

    /// Resumes a waiter, if there is one. Every waiting task prefers the loop as its task executor while it
    /// waits (`LoopBound` sees to that), so its continuation runs on the loop thread.
    @inline(__always)
    private func resume(_ waiter: Waiter?, _ outcome: WaitOutcome) {
        if let waiter { loop.resume(waiter.continuation, with: outcome) }
    }

    // MARK: Waiting for readiness (driven by `LoopBound` actors; everything here is synchronous)

    /// A fresh identifier for a wait or a queued lock request, so that a late cancellation cannot hit a
    /// later wait.
    func makeWaitID() -> UInt64 {
        nextID &+= 1
        return nextID
    }

    /// Clears the readiness hint of `direction`: the last syscall found nothing (more) to do. For reads, also
    /// after a short read (see "Readiness" above).
    @inline(__always)
    package func markDrained(_ direction: IODirection) {
        self[direction].hint = false
    }

    /// A read found data: the readiness reports since the last wait were not unwanted after all (a reader that
    /// is between reads, not one that went away), so the read event stays registered. Without this, a reader
    /// that often finds its data without waiting (a request/response body whose reads come in a later job)
    /// would see its event removed after two reports and added again at its next wait: two `epoll_ctl` calls.
    /// A level-triggered event whose data nobody consumes still reports with no read in between, and is
    /// removed as before. Loop thread only.
    @inline(__always)
    func noteDataConsumed() {
        self[.read].unwantedReports = 0
    }

    /// Whether the readiness event of `direction` is registered with libevent (added by a wait, not yet
    /// removed as unwanted). For tests and diagnostics. Loop thread only.
    func isRegistered(_ direction: IODirection) -> Bool {
        self[direction].event.isArmed
    }

    /// Starts a wait: registers the direction if needed, arms the timeout, stores the waiter; or resumes
    /// `continuation` at once (closed, already ready, libevent failure). Loop thread only.
    func beginWait(_ direction: IODirection, id: UInt64, timeoutMicroseconds: Int64, sleep: Bool,
                   _ continuation: UnsafeContinuation<WaitOutcome, Never>) {
        loop.checkIsolated()
        if fd < 0 { return continuation.resume(returning: .closed) }
        let arg = Unmanaged.passUnretained(self).toOpaque()
        let libevent = direction.libevent
        if !sleep {
            if self[direction].hint { return continuation.resume(returning: .ready) }
            // The persistent, level-triggered readiness event, registered unless it still is.
            self[direction].unwantedReports = 0
            if !self[direction].event.isArmed {
                guard self[direction].event.arm(base: loop.base, fd: fd, what: libevent.flag | AS_EV_PERSIST,
                                                timeoutMicroseconds: -1, callback: libevent.readiness, arg: arg)
                else { return continuation.resume(returning: .failed(Syscall.lastError)) }
                retainWhileEventsExist()
            }
        }
        if timeoutMicroseconds >= 0 {
            guard self[direction].timer.arm(base: loop.base, fd: -1, what: 0, timeoutMicroseconds: timeoutMicroseconds,
                                            callback: libevent.timer, arg: arg)
            else { return continuation.resume(returning: .failed(Syscall.lastError)) }
            retainWhileEventsExist()
        }
        self[direction].waiter = Waiter(id: id, continuation: continuation, ignoresReadiness: sleep)
    }

    /// Ends the wait `id` with `.cancelled` if it is still pending (a wait or a queued lock request).
    /// Loop thread only: cancellation handlers reach it through `loop.execute`.
    func cancel(_ direction: IODirection, id: UInt64) {
        resume(self[direction].remove(id), .cancelled)
    }

    private func retainWhileEventsExist() {
        if !retainedByEvents {
            retainedByEvents = true
            _ = Unmanaged.passRetained(self)
        }
    }

    /// A readiness report (persistent event) in `direction`.
    @inline(__always)
    fileprivate func ready(_ direction: IODirection) {
        resume(self[direction].reportReady(unwantedLimit: Self.unwantedReportLimit(direction)), .ready)
    }

    /// The timer of `direction` fired (non-persistent: libevent removed it).
    @inline(__always)
    fileprivate func timerFired(_ direction: IODirection) {
        self[direction].timer.fired()
        resume(self[direction].takeWaiter(), .timedOut)
    }

    // MARK: Operation locks

    /// Takes the operation lock of `direction` if it is free. Loop thread only.
    @inline(__always)
    package func tryAcquire(_ direction: IODirection) -> Bool {
        self[direction].lock.tryAcquire()
    }

    /// Queues for the operation lock of `direction` (FIFO); `continuation` is resumed with `.ready` when the
    /// lock is handed over, or `.cancelled`/`.closed`. Loop thread only.
    func enqueueForLock(_ direction: IODirection, id: UInt64, _ continuation: UnsafeContinuation<WaitOutcome, Never>) {
        loop.checkIsolated()
        if fd < 0 { return continuation.resume(returning: .closed) }
        if tryAcquire(direction) { return continuation.resume(returning: .ready) }
        self[direction].lock.queue.append(Waiter(id: id, continuation: continuation, ignoresReadiness: false))
    }

    /// Releases the operation lock of `direction`, handing it to the next queued task if any.
    @inline(__always)
    package func release(_ direction: IODirection) {
        resume(self[direction].lock.handOver(), .ready)
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
        let read = self[.read], write = self[.write]
        return WaitState(reading: read.waiter != nil, writing: write.waiter != nil,
                         queuedReaders: read.lock.queue.count, queuedWriters: write.lock.queue.count)
    }

    // MARK: Closing

    /// Closes the descriptor, frees the libevent events and wakes every waiter with `.closed`. Idempotent.
    /// Loop thread only.
    package func close() {
        guard fd >= 0 else { return }
        // The events first, so that libevent removes the descriptor from epoll before it is closed.
        let read = self[.read].close()
        let write = self[.write].close()
        _ = Posix.close(fd)
        fd = -1
        resume(read.waiter, .closed)
        resume(write.waiter, .closed)
        for waiter in read.queued + write.queued { resume(waiter, .closed) }
        if retainedByEvents {
            retainedByEvents = false
            Unmanaged.passUnretained(self).release()
        }
    }
}

extension IODirection {
    /// The index of this direction's state in a `SocketCore`.
    @inline(__always)
    var index: Int { self == .read ? 0 : 1 }

    /// libevent's flag for this direction and the C callbacks of its readiness event and of its timer (a
    /// timer's report does not say which direction it belongs to, so each direction has its own callbacks).
    fileprivate var libevent: (flag: Int, readiness: as_event_callback, timer: as_event_callback) {
        switch self {
        case .read: (AS_EV_READ, readReadinessCallback, readTimerCallback)
        case .write: (AS_EV_WRITE, writeReadinessCallback, writeTimerCallback)
        }
    }
}

// The C callbacks libevent calls on the loop thread; `arg` is the `SocketCore`, kept alive by its events.
private let readReadinessCallback: as_event_callback = { _, _, arg in
    Unmanaged<SocketCore>.fromOpaque(arg!).takeUnretainedValue().ready(.read)
}

private let writeReadinessCallback: as_event_callback = { _, _, arg in
    Unmanaged<SocketCore>.fromOpaque(arg!).takeUnretainedValue().ready(.write)
}

private let readTimerCallback: as_event_callback = { _, _, arg in
    Unmanaged<SocketCore>.fromOpaque(arg!).takeUnretainedValue().timerFired(.read)
}

private let writeTimerCallback: as_event_callback = { _, _, arg in
    Unmanaged<SocketCore>.fromOpaque(arg!).takeUnretainedValue().timerFired(.write)
}
