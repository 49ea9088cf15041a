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
/// A would-block (`EAGAIN`, or a short read: the next read waits for readiness) starts a new turn, and so does
/// the hand-back, so request/response traffic, whose reads come back short, never reaches the limit: only
/// streaming does.
struct IOBudget {
    /// The system calls one direction may make in one turn (small reads from a fast stream, small writes).
    static let maxOperations = 16
    /// The bytes one direction may move in one turn (4 reads into the loop's 64 KiB scratch buffer); also the
    /// most one `recv` or `send` asks for, so that a single call cannot move megabytes in one go.
    static let maxBytes = 4 * 64 * 1024

    private var operations = 0
    private var bytes = 0

    /// Whether this turn is spent: the direction must hand the loop back before its next system call.
    @inline(__always)
    var isSpent: Bool { operations >= Self.maxOperations || bytes >= Self.maxBytes }

    /// Counts one system call that moved `count` bytes (0 for an end of stream).
    @inline(__always)
    mutating func charge(_ count: Int) {
        operations &+= 1
        bytes &+= count
    }

    /// Starts a new turn: the direction handed the loop back, or will wait for readiness next.
    @inline(__always)
    mutating func reset() {
        operations = 0
        bytes = 0
    }
}
