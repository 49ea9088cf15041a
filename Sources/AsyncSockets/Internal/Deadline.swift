#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A point in time on the monotonic clock, for the timeout of one socket call.
///
/// A fixed-size stand-in for `ContinuousClock.Instant`: that type comes from a resilient library, so the compiler
/// does not know its size, and every one held across an `await` costs the task a heap allocation
/// (`swift_task_alloc`). Reads and writes keep a deadline across their waits, so this matters on the hot path.
package struct Deadline: Sendable {
    /// Nanoseconds on `CLOCK_MONOTONIC`.
    package let nanoseconds: Int64

    /// The deadline `duration` from now (saturating: a huge duration is a deadline far away, never an overflow).
    package static func after(_ duration: Duration) -> Deadline {
        let (seconds, attoseconds) = duration.components
        let (fromSeconds, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let span = overflow ? (seconds < 0 ? Int64.min / 2 : Int64.max / 2) : fromSeconds + attoseconds / 1_000_000_000
        let (sum, sumOverflow) = now().addingReportingOverflow(span)
        return Deadline(nanoseconds: sumOverflow ? (span < 0 ? Int64.min : Int64.max) : sum)
    }

    /// Microseconds left until the deadline, 0 once it has passed.
    package var remainingMicroseconds: Int64 {
        let left = nanoseconds.subtractingReportingOverflow(Self.now())
        if left.overflow { return nanoseconds > 0 ? Int64.max / 1000 : 0 }
        return max(0, left.partialValue / 1000)
    }

    private static func now() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
    }
}
