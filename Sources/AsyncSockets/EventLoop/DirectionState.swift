extension SocketCore {
    /// A task suspended on a core: in a wait, or queued for an operation lock.
    struct Waiter {
        let id: UInt64
        let continuation: UnsafeContinuation<WaitOutcome, Never>
        /// A sleep: readiness reports do not end it, only its timer.
        let ignoresReadiness: Bool
    }

    /// A FIFO lock for one direction: held across suspensions so that writes never interleave and reads
    /// never race for the same bytes.
    struct OperationLock {
        var held = false
        var queue: [Waiter] = []

        /// Takes the lock if it is free.
        @inline(__always)
        mutating func tryAcquire() -> Bool {
            if held { return false }
            held = true
            return true
        }

        /// The next holder, taken from the queue (the lock stays held), or nil (and the lock is free).
        @inline(__always)
        mutating func handOver() -> Waiter? {
            if queue.isEmpty {
                held = false
                return nil
            }
            return queue.removeFirst()
        }
    }

    /// Everything one direction of a descriptor has: its readiness event, its timer, the waiting task, the
    /// operation lock and the readiness hint. Its methods only change this state; `SocketCore` talks to
    /// libevent and resumes the waiters they hand back. Loop thread only, like the core.
    struct DirectionState {
        /// The persistent, level-triggered readiness event, created by the first wait.
        var event = LibeventEvent()
        /// The timeout of the current wait (a pure timer).
        var timer = LibeventEvent()
        /// The task suspended in this direction.
        var waiter: Waiter?
        var lock = OperationLock()
        /// Whether a syscall may find data (reads) or room (writes) without waiting: cleared when one found
        /// nothing (more) to do, set by a readiness report.
        var hint = true
        /// Readiness reports in a row that found nobody waiting (see `SocketCore.unwantedReportLimit(_:)`).
        var unwantedReports = 0

        /// Ends the current wait, if any: its waiter, with its timer disarmed.
        mutating func takeWaiter() -> Waiter? {
            guard let waiter else { return nil }
            self.waiter = nil
            timer.disarm()
            return waiter
        }

        /// A readiness report: sets the hint and ends the wait, unless it is a sleep. With nobody to wake,
        /// counts an unwanted report, and removes the event after `limit` of them in a row (it is
        /// level-triggered: it would be reported on every poll).
        mutating func reportReady(unwantedLimit limit: Int) -> Waiter? {
            hint = true
            guard let waiter, !waiter.ignoresReadiness else {
                unwantedReports += 1
                if unwantedReports >= limit {
                    unwantedReports = 0
                    event.disarm()
                }
                return nil
            }
            unwantedReports = 0
            return takeWaiter()
        }

        /// Removes the wait or queued lock request `id`; nil if it is no longer pending.
        mutating func remove(_ id: UInt64) -> Waiter? {
            if let waiter, waiter.id == id { return takeWaiter() }
            guard let index = lock.queue.firstIndex(where: { $0.id == id }) else { return nil }
            return lock.queue.remove(at: index)
        }

        /// Frees the events; returns the waiting task and the queued ones, all removed.
        mutating func close() -> (waiter: Waiter?, queued: [Waiter]) {
            event.free()
            timer.free()
            defer {
                waiter = nil
                lock.queue.removeAll()
            }
            return (waiter, lock.queue)
        }
    }
}
