/// How much work one direction of a socket may do without waiting before it hands the loop back: the fairness
/// rule.
///
/// A read or write that finds data or room returns without suspending, so a peer that always has data queued
/// (or always has room) would let one task run on the loop forever: the loop's job budget bounds jobs, not the
/// work inside one job. So each direction of each socket counts the system calls it made, and the bytes they
/// moved, since it last had to wait. Once the turn is spent, the next operation in that direction hands the
/// loop back before its next system call: a zero-length sleep on the loop's timer (`LoopBound.yieldToLoop`),
/// so the loop polls once and every other ready socket, the timers and the accepts get their turn before the
/// operation goes on; that is also where a cancelled task notices. (Not a wait for readiness: a socket's
/// "writable" report needs more free room than a `send` does, so a writer that still had room could wait for a
/// peer that only reads once the write is done.) (SwiftNIO reads at most `maxMessagesPerRead`, 4, per readiness report and writes at
/// most `writeSpinCount`, 16, times per flush; libevent's own servers read once per callback.)
///
/// A turn ends whenever the loop polls for readiness: a would-block (`EAGAIN`, or a short read: the next read
/// waits for readiness) and the hand-back end it at once, and a call charged after the loop has polled since the
/// turn's first call starts a new one. So request/response traffic never reaches the limit, not even when every
/// read takes exactly what it asked for (a message of known size) and every write fits: its task waits for the
/// peer between calls, and the loop polls meanwhile. Only a direction that keeps finding data or room within one
/// stretch of jobs, with no poll in between, does: streaming.
package struct IOBudget {
    /// The system calls one direction may make in one turn (small reads from a fast stream, small writes).
    package static let maxOperations = 16
    /// The bytes one direction may move in one turn (4 reads into the loop's 64 KiB scratch buffer); also the
    /// most one `recv` or `send` asks for, so that a single call cannot move megabytes in one go.
    package static let maxBytes = 4 * 64 * 1024

    /// A budget whose turn has not begun.
    package init() {}

    private var operations = 0
    private var bytes = 0
    /// The loop's poll count (`EventLoop.polls`) when this turn began.
    private var poll = 0
    /// Calls charged since the direction last waited or handed the loop back: where a task notices
    /// cancellation. A poll does not clear it, so a call that keeps finding data or room while the loop polls
    /// in between (its task hops to the loop for each call) still notices cancellation as often.
    private var sinceSuspension = 0

    /// Whether this turn is spent: the direction must hand the loop back before its next system call. `poll` is
    /// the loop's poll count now: once the loop has polled since the turn began, the turn is over and a new one
    /// is not spent.
    @inline(__always)
    package func isSpent(atPoll poll: Int) -> Bool {
        poll == self.poll && (operations >= Self.maxOperations || bytes >= Self.maxBytes)
    }

    /// Counts one system call that moved `count` bytes (0 for an end of stream), at the loop's poll count `poll`;
    /// the first call after a poll starts a new turn.
    @inline(__always)
    package mutating func charge(_ count: Int, atPoll poll: Int) {
        if poll != self.poll {
            self.poll = poll
            operations = 0
            bytes = 0
        }
        operations &+= 1
        bytes &+= count
        sinceSuspension &+= 1
    }

    /// Whether the direction made ``maxOperations`` calls without waiting or handing the loop back: the next
    /// call checks for cancellation first (see ``checkedCancellation()``).
    @inline(__always)
    package var mustCheckCancellation: Bool { sinceSuspension >= Self.maxOperations }

    /// The call checked for cancellation: the count starts again.
    @inline(__always)
    package mutating func checkedCancellation() {
        sinceSuspension = 0
    }

    /// Starts a new turn: the direction handed the loop back, or will wait for readiness next.
    @inline(__always)
    package mutating func reset() {
        operations = 0
        bytes = 0
        sinceSuspension = 0
    }
}
