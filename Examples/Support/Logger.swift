// Logger: log output that never blocks the event loop (ChatServer and PortForwarder use it).
//
// A `write(2)` to stdout or stderr blocks when the terminal is slow or the pipe is full (a supervisor that
// stopped reading, `| less` left at its first page): done from a handler, that blocks the event loop thread
// and with it every connection of the loop. So log lines go into a bounded `AsyncStream` (the newest
// `capacity` lines; older ones are dropped and counted), and one task drains it, handing each write to a
// Dispatch queue of its own: only that queue's thread ever blocks on the descriptor. When the output is
// read again, a line "(N log lines dropped)" says how many were lost.

import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Log lines written to a descriptor by a task and a thread of their own: ``log(_:)`` never blocks its
/// caller, and when the output is not read, the oldest waiting lines are dropped and counted.
public final class Logger: Sendable {
    private let lines: AsyncStream<String>.Continuation
    private let state: State

    /// Counters shared with the draining task.
    private final class State: Sendable {
        let dropped = Atomic<Int>(0)
        let finished = Atomic<Bool>(false)
    }

    /// A logger writing to `descriptor` (1: stdout, 2: stderr), keeping at most `capacity` lines waiting.
    public init(descriptor: Int32, capacity: Int = 1024) {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(capacity))
        let state = State()
        self.lines = continuation
        self.state = state
        let writer = DispatchQueue(label: "log-writer-\(descriptor)")
        // Detached: it runs on the global executor, never on an event loop, whoever creates the logger.
        Task.detached {
            for await line in stream {
                let lost = state.dropped.exchange(0, ordering: .relaxed)
                let text = (lost > 0 ? "(\(lost) log lines dropped: the output was not read)\n" : "") + line + "\n"
                await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                    writer.async {
                        writeAll(descriptor, text)
                        done.resume()
                    }
                }
            }
            state.finished.store(true, ordering: .releasing)
        }
    }

    /// Queues one line (a newline is added); never waits.
    public func log(_ line: String) {
        if case .dropped = lines.yield(line) {
            state.dropped.add(1, ordering: .relaxed)
        }
    }

    /// Stops taking lines and waits (at most `limit`) until the queued ones are written.
    public func finish(within limit: Duration = .seconds(1)) async {
        lines.finish()
        let deadline = ContinuousClock.now + limit
        while !state.finished.load(ordering: .acquiring), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}
