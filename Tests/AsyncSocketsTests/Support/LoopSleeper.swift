import Testing
@testable import AsyncSockets

/// Waiting and polling on an event loop's own timers (libevent's), with no Dispatch involved: for the windows
/// in which a test has filled the descriptor table.
///
/// Why: libdispatch's thread-pool monitor (`_dispatch_workq_monitor_pools` in swift-corelibs-libdispatch's
/// `src/event/workqueue.c`) runs once a second and, for every global queue that has work waiting, opens
/// `/proc/<tid>/stat` of each of its worker threads; when that `open` fails (`EMFILE`) it crashes the process
/// (`DISPATCH_CLIENT_CRASH` "workq: registered worker exited prematurely", SIGILL). `Task.sleep` and tasks
/// without an executor preference put work on those queues, so a test that polls with `Task.sleep` while the
/// table is full crashes whenever a monitor tick finds such work waiting (seen about once in 15 runs of
/// `ServerResourceTests`, more often on a loaded machine; core dump on 2026-12-02). While descriptors are
/// exhausted, run inside `loop.run { }`, start tasks with `Task(executorPreference: loop)`, and wait with
/// these methods.
///
/// It owns a socket pair (two descriptors, made before the table is filled) whose read timers it sleeps on:
/// one for ``pause(_:)`` (and so ``eventually(_:_:)``), one for ``within(_:_:)``'s deadline, so one of each may
/// run at a time. Call ``close()`` at the end.
final class LoopSleeper: Sendable {
    let loop: EventLoop
    private let pollTimer: AsyncSocket
    private let deadlineTimer: AsyncSocket

    init() throws {
        loop = EventLoop.next()
        (pollTimer, deadlineTimer) = try AsyncSocket.pair(on: loop)
    }

    /// Sleeps for `duration` on the loop's timer (returns early only if cancelled).
    func pause(_ duration: Duration) async {
        _ = await pollTimer.sleepOnLoop(microseconds: AsyncSocket.microseconds(duration))
    }

    /// Polls `condition` every 5 ms (on the loop's timer) until it holds or `limit` passes; whether it held.
    func eventually(_ limit: Duration = .seconds(20), _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + limit
        while true {
            if try await condition() { return true }
            if ContinuousClock.now >= deadline { return false }
            await pause(.milliseconds(5))
        }
    }

    /// `body`'s value, or a recorded issue and a thrown error when `limit` passes first (on the loop's timer);
    /// either way the other one is cancelled. Both run as child tasks, so they keep the caller's executor
    /// preference: call it inside `loop.run { }`.
    func within<T: Sendable>(_ limit: Duration, _ what: String, sourceLocation: SourceLocation = #_sourceLocation,
                             _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let value: T? = try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                _ = await self.deadlineTimer.sleepOnLoop(microseconds: AsyncSocket.microseconds(limit))
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        guard let value else {
            Issue.record("\(what) did not finish within \(limit)", sourceLocation: sourceLocation)
            throw CoreFixtures.Failure("\(what) did not finish within \(limit)")
        }
        return value
    }

    /// Closes the two descriptors.
    func close() async {
        await pollTimer.close()
        await deadlineTimer.close()
    }
}
