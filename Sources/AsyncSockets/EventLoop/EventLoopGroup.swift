#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
internal import CLibeventShim

/// A fixed set of ``EventLoop``s, each its own thread and libevent base, that new sockets are spread over
/// round-robin: how a server uses every core.
///
/// ``shared`` has one loop per core and is where sockets live unless told otherwise (see "Where a new socket
/// lives" in <doc:ConcurrencyModel>). Make a group of your own to keep some sockets apart from the rest, or to
/// choose the number of threads:
/// ```swift
/// let group = EventLoopGroup(loopCount: 4)
/// let server = try AsyncServer(host: "0.0.0.0", port: 8080, group: group)
/// ```
/// Loops, and so groups, live as long as the process: their threads never exit. Create groups once, at
/// start-up, not per request.
public final class EventLoopGroup: Sendable, CustomStringConvertible {
    /// The loops of this group, at least one; ``next()`` cycles through them.
    public let loops: [EventLoop]
    private let counter = Atomic<Int>(0)

    /// Creates `loopCount` loops and starts their threads (named `ASGroupN-0`, `ASGroupN-1`, …).
    ///
    /// - Precondition: `loopCount` is at least 1.
    public convenience init(loopCount: Int) {
        precondition(loopCount >= 1, "EventLoopGroup(loopCount:) needs at least 1 loop, got \(loopCount)")
        let number = Self.groupsCreated.wrappingAdd(1, ordering: .relaxed).newValue
        self.init(names: (0..<loopCount).map { "ASGroup\(number)-\($0)" })
    }

    /// Creates one loop per name.
    init(names: [String]) {
        loops = names.map { EventLoop(name: $0) }
    }

    private static let groupsCreated = Atomic<Int>(0)

    /// The group that sockets and servers use unless told otherwise: one loop per CPU this process may run on
    /// (the affinity mask's count on Linux, else the number of online CPUs).
    ///
    /// The environment variable `ASYNCSOCKETS_LOOP_COUNT` (a positive integer) overrides the count. It is read
    /// once, when the group is first used; a value that is not a positive integer is ignored. Set it to `1` to
    /// run everything on one thread, as releases before the group did.
    public static let shared = EventLoopGroup(names: (0..<sharedLoopCount).map { $0 == 0 ? "AsyncSockets" : "AsyncSockets-\($0)" })

    /// How many loops ``shared`` has: `ASYNCSOCKETS_LOOP_COUNT` if valid, else the CPU count.
    static var sharedLoopCount: Int {
        if let raw = getenv("ASYNCSOCKETS_LOOP_COUNT"), let count = Int(String(cString: raw)), count >= 1 {
            return count
        }
        return Int(as_cpu_count())
    }

    /// The loop for the next socket or task: round-robin over ``loops``. Safe from any thread.
    public func next() -> EventLoop {
        if loops.count == 1 { return loops[0] }
        let ticket = counter.wrappingAdd(1, ordering: .relaxed).oldValue
        return loops[Int(UInt(bitPattern: ticket) % UInt(loops.count))]
    }

    /// Whether `loop` is one of this group's loops.
    public func contains(_ loop: EventLoop) -> Bool {
        loops.contains { $0 === loop }
    }

    /// `"EventLoopGroup(2 loops)"`.
    public var description: String { "EventLoopGroup(\(loops.count) loop\(loops.count == 1 ? "" : "s"))" }
}
