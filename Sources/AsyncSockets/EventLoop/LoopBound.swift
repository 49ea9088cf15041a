/// An actor that runs on an ``EventLoop`` and owns a `SocketCore`: the suspending half of readiness waits
/// and operation locks. The methods are isolated to the actor itself (statically), so no call here can hop
/// off the loop thread between a syscall that found nothing to do and the wait that follows it.
package protocol LoopBound: Actor {
    nonisolated var core: SocketCore { get }
}

extension LoopBound {
    /// Waits until the descriptor is ready in `direction`, `timeoutMicroseconds` pass (negative: never),
    /// the task is cancelled or the socket is closed. Call it after ``SocketCore/markDrained(_:)``.
    @inline(__always)
    package func waitReady(_ direction: IODirection, timeoutMicroseconds: Int64 = -1) async -> WaitOutcome {
        await suspend(direction, timeoutMicroseconds: timeoutMicroseconds, sleep: false)
    }

    /// Sleeps on the loop's timer: `.timedOut` when the time passed, or `.cancelled`/`.closed`.
    func sleepOnLoop(microseconds: Int64) async -> WaitOutcome {
        await suspend(.read, timeoutMicroseconds: microseconds, sleep: true)
    }

    /// Lets the loop poll for readiness once (and run the timers and jobs that are due) before the caller goes
    /// on: a zero-length sleep on the timer of `direction`, whose operation lock the caller holds (so no other
    /// wait of this core uses that direction meanwhile). `.timedOut` (or `.ready`) when the loop got its turn;
    /// `.cancelled`/`.closed` otherwise. The fairness hand-back of a busy read or write (`IOBudget`).
    package func yieldToLoop(_ direction: IODirection) async -> WaitOutcome {
        await suspend(direction, timeoutMicroseconds: 0, sleep: true)
    }

    @inline(__always)
    private func suspend(_ direction: IODirection, timeoutMicroseconds: Int64, sleep: Bool) async -> WaitOutcome {
        let core = self.core
        if core.isClosed { return .closed }
        if Task.isCancelled { return .cancelled }
        if core.loop.currentTaskPrefersLoop {
            return await suspendOnLoop(direction, timeoutMicroseconds: timeoutMicroseconds, sleep: sleep)
        }
        // A task that does not prefer the loop (plain `Task {}` code) waits with the loop as its preferred task
        // executor. Its continuation then runs on the loop as soon as the loop resumes it, where this actor
        // is; without the preference it would be enqueued on the global pool first, only to hop straight back
        // to the loop (two thread hops and two of Dispatch's allocations per wait, measured). Back on the loop
        // (this actor), the task no longer prefers it: the loop must not go on assuming it does.
        let outcome = await withTaskExecutorPreference(core.loop) {
            await self.suspendOnLoop(direction, timeoutMicroseconds: timeoutMicroseconds, sleep: sleep)
        }
        core.loop.currentTaskLeftPreference()
        return outcome
    }

    /// The body of `suspend`, for a task that prefers the loop as its task executor (so the loop resumes it
    /// on its own thread).
    @inline(__always)
    private func suspendOnLoop(_ direction: IODirection, timeoutMicroseconds: Int64, sleep: Bool) async -> WaitOutcome {
        let core = self.core
        let id = core.makeWaitID()
        return await withTaskCancellationHandler {
            // `self.core`, not `core`: a closure in a generic actor context is isolated to the actor only when
            // it captures `self` (SE-0420); without the capture it would run on the global executor.
            await withUnsafeContinuation { continuation in
                // A cancellation that arrived before this point may have found no waiter to cancel.
                if Task.isCancelled { return continuation.resume(returning: .cancelled) }
                self.core.beginWait(direction, id: id, timeoutMicroseconds: timeoutMicroseconds, sleep: sleep,
                                    continuation)
            }
        } onCancel: {
            core.loop.execute { core.cancel(direction, id: id) }
        }
    }

    /// Takes the FIFO operation lock of `direction`: `.ready` when held (release it with
    /// ``SocketCore/release(_:)``), `.cancelled` or `.closed` otherwise.
    @inline(__always)
    package func acquire(_ direction: IODirection) async -> WaitOutcome {
        let core = self.core
        if core.isClosed { return .closed }
        if core.tryAcquire(direction) { return .ready }
        return await queueForLock(direction)
    }

    private func queueForLock(_ direction: IODirection) async -> WaitOutcome {
        if Task.isCancelled { return .cancelled }
        if core.loop.currentTaskPrefersLoop { return await queueForLockOnLoop(direction) }
        // Waits with the loop as the preferred task executor: see `suspend`.
        let outcome = await withTaskExecutorPreference(core.loop) { await self.queueForLockOnLoop(direction) }
        core.loop.currentTaskLeftPreference()  // see `suspend`
        return outcome
    }

    /// The body of `queueForLock`, for a task that prefers the loop as its task executor.
    @inline(__always)
    private func queueForLockOnLoop(_ direction: IODirection) async -> WaitOutcome {
        let core = self.core
        let id = core.makeWaitID()
        return await withTaskCancellationHandler {
            await withUnsafeContinuation { continuation in
                if Task.isCancelled { return continuation.resume(returning: .cancelled) }  // see `suspend`
                self.core.enqueueForLock(direction, id: id, continuation)  // `self`: see `suspend`
            }
        } onCancel: {
            core.loop.execute { core.cancel(direction, id: id) }
        }
    }
}
