#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CLibeventShim

/// The loop-confined state of one descriptor: the descriptor itself, its readiness events, the task waiting in
/// each direction and the FIFO of tasks queued for each direction's operation lock.
///
/// Actors (``AsyncSocket``, the server's listener) own one each and run on the same loop, so their code,
/// libevent's callbacks and cancellation hand-offs all touch it on the loop thread only.
final class SocketCore: @unchecked Sendable {
    // @unchecked Sendable: every stored property except `loop` (immutable, Sendable) is read and written on
    // the loop thread only. The owning actor's executor is `loop`; libevent calls back on the loop thread;
    // cancellation handlers, which run on arbitrary threads, never touch the state: they call
    // `loop.execute`, which runs the closure on the loop thread. The one exception is `deinit`, which runs
    // when no other reference exists, so nothing can race with it; it hands the libevent events back to the
    // loop thread to be freed.

    struct Waiter {
        let id: UInt64
        let continuation: UnsafeContinuation<WaitOutcome, Never>
    }

    /// A FIFO lock for one direction: held across suspensions so that writes never interleave and reads
    /// never race for the same bytes.
    struct OperationLock {
        var held = false
        var queue: [Waiter] = []
    }

    let loop: EventLoop
    private(set) var fd: Int32
    private var readEvent = ReadinessEvent()
    private var writeEvent = ReadinessEvent()
    private var timerEvent = ReadinessEvent()
    private var readWaiter: Waiter?
    private var writeWaiter: Waiter?
    private var readLock = OperationLock()
    private var writeLock = OperationLock()
    private var nextID: UInt64 = 0

    init(fd: Int32, loop: EventLoop) {
        self.fd = fd
        self.loop = loop
    }

    var isClosed: Bool { fd < 0 }

    /// What is waiting on this descriptor right now: a snapshot for tests and diagnostics. Loop thread only.
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

    deinit {
        if fd >= 0 { _ = Glibc.close(fd) }
        // No wait can be armed here (a waiting task keeps its socket, and so this core, alive).
        let events = EventsToFree(read: readEvent, write: writeEvent, timer: timerEvent)
        if events.isEmpty { return }
        if loop.inLoop {
            events.free()
        } else {
            loop.execute { events.free() }
        }
    }

    // MARK: Waiting for readiness

    /// Waits until the descriptor is ready in `direction`, the timeout passes, the task is cancelled or the
    /// socket is closed. Must be called on the loop thread (from an actor running on `loop`).
    func wait(_ direction: IODirection, timeoutMicroseconds: Int64 = -1,
              isolation: isolated (any Actor)? = #isolation) async -> WaitOutcome {
        await suspend(direction, timeoutMicroseconds: timeoutMicroseconds, timer: false)
    }

    /// Sleeps for `microseconds` on the loop (`.timedOut` when the time passed), or until cancelled or closed.
    func sleep(microseconds: Int64, isolation: isolated (any Actor)? = #isolation) async -> WaitOutcome {
        await suspend(.read, timeoutMicroseconds: microseconds, timer: true)
    }

    private func suspend(_ direction: IODirection, timeoutMicroseconds: Int64, timer: Bool,
                         isolation: isolated (any Actor)? = #isolation) async -> WaitOutcome {
        if fd < 0 { return .closed }
        if Task.isCancelled { return .cancelled }
        nextID &+= 1
        let id = nextID
        return await withTaskCancellationHandler {
            // Every `await` is a potential suspension point, these two included: when the caller's job runs
            // with a task executor other than the task's preference (see `EventLoop.run()`), the runtime
            // re-enqueues the task here, and other jobs of this loop run first. By the time the body runs,
            // the socket may be closed, or the task cancelled (and its cancellation handler may already have
            // run and found no waiter). So the body checks again, atomically with registering the waiter.
            // Passing `isolation` on keeps the body isolated to the caller's actor, on the loop thread.
            await withUnsafeContinuation(isolation: isolation) { (continuation: UnsafeContinuation<WaitOutcome, Never>) in
                assert(loop.inLoop, "SocketCore.suspend must run on its loop's thread")
                if fd < 0 {
                    continuation.resume(returning: .closed)
                    return
                }
                if Task.isCancelled {
                    continuation.resume(returning: .cancelled)
                    return
                }
                let arg = Unmanaged.passUnretained(self).toOpaque()
                let armed: Bool
                switch direction {
                case .read where timer:
                    armed = timerEvent.arm(base: loop.base, fd: -1, what: 0, timeoutMicroseconds: timeoutMicroseconds,
                                           callback: readCallback, arg: arg)
                case .read:
                    armed = readEvent.arm(base: loop.base, fd: fd, what: AS_EV_READ, timeoutMicroseconds: timeoutMicroseconds,
                                          callback: readCallback, arg: arg)
                case .write:
                    armed = writeEvent.arm(base: loop.base, fd: fd, what: AS_EV_WRITE, timeoutMicroseconds: timeoutMicroseconds,
                                           callback: writeCallback, arg: arg)
                }
                guard armed else {
                    continuation.resume(returning: .failed(errno))
                    return
                }
                let waiter = Waiter(id: id, continuation: continuation)
                switch direction {
                case .read: readWaiter = waiter
                case .write: writeWaiter = waiter
                }
            }
        } onCancel: {
            loop.execute { self.cancelWait(direction, id: id) }
        }
    }

    fileprivate func fire(_ direction: IODirection, what: Int16) {
        let outcome: WaitOutcome = Int(what) & AS_EV_TIMEOUT != 0 ? .timedOut : .ready
        switch direction {
        case .read:
            guard let waiter = readWaiter else { return }
            readWaiter = nil
            waiter.continuation.resume(returning: outcome)
        case .write:
            guard let waiter = writeWaiter else { return }
            writeWaiter = nil
            waiter.continuation.resume(returning: outcome)
        }
    }

    private func cancelWait(_ direction: IODirection, id: UInt64) {
        switch direction {
        case .read:
            guard let waiter = readWaiter, waiter.id == id else {
                return cancelQueued(&readLock, id: id)
            }
            readWaiter = nil
            readEvent.disarm()
            timerEvent.disarm()
            waiter.continuation.resume(returning: .cancelled)
        case .write:
            guard let waiter = writeWaiter, waiter.id == id else {
                return cancelQueued(&writeLock, id: id)
            }
            writeWaiter = nil
            writeEvent.disarm()
            waiter.continuation.resume(returning: .cancelled)
        }
    }

    // MARK: Operation locks

    /// Takes the operation lock of `direction`, waiting in FIFO order behind earlier holders.
    /// `.ready` when taken; `.cancelled` or `.closed` when the wait ended otherwise (the lock is not held).
    func acquire(_ direction: IODirection, isolation: isolated (any Actor)? = #isolation) async -> WaitOutcome {
        if fd < 0 { return .closed }
        if take(direction) { return .ready }
        if Task.isCancelled { return .cancelled }
        nextID &+= 1
        let id = nextID
        return await withTaskCancellationHandler {
            // As in `suspend`: the holder may have released the lock (or the socket been closed, or the task
            // cancelled) while this task was re-enqueued on the way here; check again before queueing, or the
            // waiter would sit behind a lock that nobody holds.
            await withUnsafeContinuation(isolation: isolation) { (continuation: UnsafeContinuation<WaitOutcome, Never>) in
                assert(loop.inLoop, "SocketCore.acquire must run on its loop's thread")
                if fd < 0 {
                    continuation.resume(returning: .closed)
                    return
                }
                if take(direction) {
                    continuation.resume(returning: .ready)
                    return
                }
                if Task.isCancelled {
                    continuation.resume(returning: .cancelled)
                    return
                }
                let waiter = Waiter(id: id, continuation: continuation)
                switch direction {
                case .read: readLock.queue.append(waiter)
                case .write: writeLock.queue.append(waiter)
                }
            }
        } onCancel: {
            loop.execute { self.cancelWait(direction, id: id) }
        }
    }

    /// Takes the lock of `direction` if it is free.
    private func take(_ direction: IODirection) -> Bool {
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

    /// Releases the operation lock of `direction`, handing it to the next queued task if any.
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

    /// Closes the descriptor and wakes every waiter with `.closed`. Idempotent. Loop thread only.
    func close() {
        guard fd >= 0 else { return }
        readEvent.disarm()
        writeEvent.disarm()
        timerEvent.disarm()
        readEvent.free()
        writeEvent.free()
        timerEvent.free()
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
        for waiter in readLock.queue { waiter.continuation.resume(returning: .closed) }
        for waiter in writeLock.queue { waiter.continuation.resume(returning: .closed) }
        readLock.queue.removeAll()
        writeLock.queue.removeAll()
    }

    /// Gives up ownership of the descriptor without closing it (for moving it elsewhere). Loop thread only.
    func detach() -> Int32 {
        let descriptor = fd
        readEvent.free()
        writeEvent.free()
        timerEvent.free()
        fd = -1
        return descriptor
    }
}

/// libevent events whose owner is gone, to be freed on the loop thread.
private struct EventsToFree: @unchecked Sendable {
    // @unchecked Sendable: the pointers are moved out of a deinitialising `SocketCore` (no other reference
    // exists) and used exactly once, by `free()`, on the loop thread.
    var read: ReadinessEvent
    var write: ReadinessEvent
    var timer: ReadinessEvent

    var isEmpty: Bool { read.pointer == nil && write.pointer == nil && timer.pointer == nil }

    func free() {
        var copy = self
        copy.read.free()
        copy.write.free()
        copy.timer.free()
    }
}

// The C callbacks libevent calls on the loop thread; `arg` is the unretained `SocketCore`.
private let readCallback: as_event_callback = { _, what, arg in
    Unmanaged<SocketCore>.fromOpaque(arg!).takeUnretainedValue().fire(.read, what: what)
}

private let writeCallback: as_event_callback = { _, what, arg in
    Unmanaged<SocketCore>.fromOpaque(arg!).takeUnretainedValue().fire(.write, what: what)
}
