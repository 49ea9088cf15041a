/// Whether a read that comes right after a write, in the same job and with nothing else queued on the loop,
/// calls `recv` before it waits for readiness: learned per socket from how such reads went.
///
/// The case is a body isolated to its socket (`AsyncSocket.withConnection`) that writes a request and reads the
/// answer: the read comes in the job of the write, with no suspension in
/// between. Whether the answer is already there depends on where the peer runs:
/// - on another core or another host it cannot have come yet: a `recv` finds nothing (`EAGAIN`), one system
///   call spent per round trip only to learn that the read must wait;
/// - on the same core the kernel often runs the peer as soon as the request wakes it, before `send` returns
///   (wake-up preemption): the answer is there, and a `recv` at once saves the whole readiness wait (a poll,
///   the suspension and the resumption).
///
/// So each outcome is counted: a `recv` that found something earns two credits, one that found nothing costs
/// one, and reads try while they have credit (the answer must be there about one time in three for trying to
/// pay). Without credit a read waits at once, and tries again only as a probe, after 2, 4, … up to
/// ``maxProbeInterval`` reads that waited, so a peer that never answers that fast costs one `recv` in 65 reads
/// at most. Touched by the read holding the read lock only.
package struct ReadAfterWritePrediction {
    /// Tries left before trying stops (each `recv` that found something adds 2, up to ``maxCredit``).
    private var credit: UInt8 = 0
    /// Reads that wait at once before the next probe.
    private var skipsLeft: UInt8 = 0
    /// The skips after the next failed probe.
    private var probeInterval: UInt8 = 1

    /// A socket's first such read probes.
    package init() {}

    /// The most credit a run of found answers builds up.
    package static let maxCredit: UInt8 = 8
    /// The most reads that wait at once between two probes.
    package static let maxProbeInterval: UInt8 = 64

    /// Whether this read should call `recv` first; report what it found with ``record(found:)``. When it
    /// returns false the read waits for readiness at once (and counts towards the next probe).
    @inline(__always)
    package mutating func shouldTry() -> Bool {
        if credit > 0 { return true }
        if skipsLeft > 0 {
            skipsLeft &-= 1
            return false
        }
        return true
    }

    /// What the `recv` that ``shouldTry()`` allowed found: bytes or the end of stream (`found`), or nothing.
    @inline(__always)
    package mutating func record(found: Bool) {
        if found {
            credit = min(credit &+ 2, Self.maxCredit)
            probeInterval = 1
        } else if credit > 1 {
            credit &-= 1
        } else {
            // The last credit spent, or a probe failed: wait at once for a while, longer after each failed probe.
            if credit == 0 { probeInterval = min(probeInterval &* 2, Self.maxProbeInterval) }
            credit = 0
            skipsLeft = probeInterval
        }
    }
}

extension ReadAfterWritePrediction {
    /// Whether a read that finds its socket drained by an earlier read of the same loop job (`drainedInJob`,
    /// `EventLoop.jobSerial` then; 0: none) calls `recv` anyway: a request and response handler isolated to
    /// its socket (a `serve` handler) that read a request with a short read, wrote the answer and reads again,
    /// with no suspension in between. Such a read waits for readiness at once, except when nothing else is
    /// queued on the loop, its task prefers the loop (no hop between its calls) and the prediction says the
    /// next request is often there already (the peer on the same core, run while the answer was sent).
    /// Clears `drainedInJob`: once per read. Loop thread only.
    @inline(__always)
    package mutating func shouldTryAfterDrain(inJob drainedInJob: inout UInt, on loop: EventLoop) -> Bool {
        guard drainedInJob != 0 else { return false }
        let sameJob = drainedInJob == loop.jobSerial
        drainedInJob = 0
        guard sameJob, !loop.hasQueuedJobs, loop.currentTaskPrefersLoop else { return false }
        return shouldTry()
    }
}
