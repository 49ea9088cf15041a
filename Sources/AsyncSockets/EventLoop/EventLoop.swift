#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CLibeventShim

/// An event loop: one thread that runs a libevent `event_base` for readiness notification and the Swift jobs
/// of the sockets assigned to it.
///
/// The loop is both a `SerialExecutor` and a `TaskExecutor`:
/// - every ``AsyncSocket`` is an actor whose executor is its loop, so a socket's syscalls, the libevent
///   callback that reports readiness and the resumption of the waiting call all run on this one thread;
/// - tasks that prefer the loop as their task executor (``AsyncServer/serve(idleTimeout:onError:handler:)``
///   does this for every connection handler, and `EventLoop.run { … }` does it for any code) call into
///   their sockets without a thread hop at all.
///
/// Code running on other threads (the global concurrent pool) works too: its calls hop to the loop and back.
///
/// ## Registration from other threads
/// libevent is used without its internal locks (`EVENT_BASE_FLAG_NOLOCK`): every libevent call is made on the
/// loop thread. Other threads hand work to the loop through a mutex-guarded queue and wake it with an
/// `eventfd` registered in the `event_base`, only when the loop is asleep in `epoll_wait`.
public final class EventLoop: SerialExecutor, TaskExecutor, @unchecked Sendable, CustomStringConvertible {
    // @unchecked Sendable, proved field by field:
    // - `base`, `wakeRead`, `wakeWrite`, `scratch`, `threadID` are written once, before `init` returns
    //   (the initializer waits for the thread to publish `threadID`), and only read afterwards;
    // - `remote`, `sleeping` and `wakePending` are only touched with `lock` held;
    // - `local`, `running` and the libevent base itself are only touched on the loop thread (every use is
    //   in `run()`, in libevent callbacks, or behind `precondition(inLoop)` / `enqueue`'s `inLoop` check).

    enum Job {
        case task(UnownedJob)
        case closure(() -> Void)
    }

    /// The loop every socket uses unless told otherwise.
    public static let shared = EventLoop(name: "AsyncSockets")

    /// The loop that the next new socket is assigned to (round-robin over the loops in use; one today).
    static func next() -> EventLoop { shared }

    let name: String
    let base: UnsafeMutableRawPointer
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private var wakeEvent: UnsafeMutableRawPointer?
    private let lock = Lock()
    private var remote: [Job] = []
    private var sleeping = false
    private var wakePending = false
    private var local: [Job] = []
    private var running: [Job] = []
    private var threadID = pthread_t()

    /// A buffer that reads on this loop's thread fill before copying out; one per loop, not per socket.
    let scratch: UnsafeMutableRawBufferPointer
    static let scratchSize = 64 * 1024

    /// Creates a loop and starts its thread. Loops live as long as the process.
    init(name: String) {
        self.name = name
        guard let base = as_base_new() else { fatalError("AsyncSockets: event_base_new failed (errno \(errno))") }
        self.base = base
        var writeFD: Int32 = -1
        let readFD = as_wakeup_fd(&writeFD)
        guard readFD >= 0 else { fatalError("AsyncSockets: eventfd failed (errno \(errno))") }
        self.wakeRead = readFD
        self.wakeWrite = writeFD
        self.scratch = .allocate(byteCount: Self.scratchSize, alignment: 16)
        local.reserveCapacity(64)
        running.reserveCapacity(64)

        let started = Locked(false)
        let ready = Condition()
        startThread(name: name) { [unowned(unsafe) self] in
            self.threadID = pthread_self()
            self.wakeEvent = as_event_new(self.base, self.wakeRead, Int16(AS_EV_READ | AS_EV_PERSIST), { _, _, arg in
                Unmanaged<EventLoop>.fromOpaque(arg!).takeUnretainedValue().drainWakeups()
            }, Unmanaged.passUnretained(self).toOpaque())
            _ = as_event_add(self.wakeEvent, -1)
            ready.signal { started.withLock { $0 = true } }
            self.run()
        }
        ready.wait(until: { started.withLock { $0 } })
    }

    /// `"EventLoop(AsyncSockets, epoll)"`.
    public var description: String { "EventLoop(\(name), \(String(cString: as_base_method(base))))" }

    /// Whether the calling thread is this loop's thread.
    @inline(__always)
    public var inLoop: Bool { pthread_equal(pthread_self(), threadID) != 0 }

    // MARK: Executors

    /// Enqueues a job to run on the loop thread (the `SerialExecutor` and `TaskExecutor` requirement).
    public func enqueue(_ job: consuming ExecutorJob) {
        submit(.task(UnownedJob(job)))
    }

    /// This loop as the serial executor of the actors assigned to it.
    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Traps unless called on the loop thread.
    public func checkIsolated() {
        precondition(inLoop, "expected to run on the event loop thread of \(self)")
    }

    /// Runs `body` on the loop thread (soon, in order with other submitted work). Safe from any thread.
    func execute(_ body: @escaping @Sendable () -> Void) {
        submit(.closure(body))
    }

    /// Runs `body` on the loop thread and returns after it ran: at once when called on the loop thread,
    /// otherwise by handing it over and blocking the caller until the loop has run it (the loop never waits
    /// on another thread, so this cannot deadlock).
    func executeAndWait(_ body: @escaping @Sendable () -> Void) {
        if inLoop {
            body()
            return
        }
        let done = Locked(false)
        let condition = Condition()
        execute {
            body()
            condition.signal { done.withLock { $0 = true } }
        }
        condition.wait(until: { done.withLock { $0 } })
    }

    @inline(__always)
    private func submit(_ job: Job) {
        if inLoop {
            local.append(job)
            return
        }
        let wake: Bool = lock.withLock {
            remote.append(job)
            if sleeping && !wakePending {
                wakePending = true
                return true
            }
            return false
        }
        if wake { as_wakeup_signal(wakeWrite) }
    }

    private func drainWakeups() {
        as_wakeup_drain(wakeRead)
        lock.withLock { wakePending = false }
    }

    // MARK: The loop

    private func run() {
        let serial = asUnownedSerialExecutor()
        let task = asUnownedTaskExecutor()
        while true {
            // Run what is queued now; jobs queued by these jobs run after the next readiness poll,
            // so a busy socket cannot starve the others' I/O.
            if !local.isEmpty {
                swap(&local, &running)
                for job in running {
                    switch job {
                    case .task(let job): job.runSynchronously(isolatedTo: serial, taskExecutor: task)
                    case .closure(let body): body()
                    }
                }
                running.removeAll(keepingCapacity: true)
            }
            let idle: Bool = lock.withLock {
                if !remote.isEmpty {
                    local.append(contentsOf: remote)
                    remote.removeAll(keepingCapacity: true)
                }
                sleeping = local.isEmpty
                return sleeping
            }
            _ = as_base_loop(base, Int32(idle ? AS_LOOP_ONCE : AS_LOOP_NONBLOCK))
            if idle { lock.withLock { sleeping = false } }
        }
    }
}

/// A condition variable paired with its own mutex, for the rare blocking hand-offs (loop start-up,
/// `executeAndWait`, the resolver's worker threads).
final class Condition: @unchecked Sendable {
    // @unchecked Sendable: the mutex and condition variable are process-shared primitives made for use from
    // several threads; they are created in `init`, destroyed in `deinit`, and only passed to pthread calls.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        cond = .allocate(capacity: 1)
        cond.initialize(to: pthread_cond_t())
        pthread_cond_init(cond, nil)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    /// Runs `change` under the mutex, then wakes every waiter.
    func signal(_ change: () -> Void) {
        pthread_mutex_lock(mutex)
        change()
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
    }

    /// Blocks until `predicate` (evaluated under the mutex) is true.
    func wait(until predicate: () -> Bool) {
        pthread_mutex_lock(mutex)
        while !predicate() { pthread_cond_wait(cond, mutex) }
        pthread_mutex_unlock(mutex)
    }

    /// Runs `body` under the mutex, and waits on the condition whenever `body` returns nil; returns the first
    /// non-nil result.
    func waitFor<T>(_ body: () -> T?) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while true {
            if let value = body() { return value }
            pthread_cond_wait(cond, mutex)
        }
    }

    /// Runs `body` under the mutex and wakes one waiter.
    func withLockSignalOne<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer {
            pthread_cond_signal(cond)
            pthread_mutex_unlock(mutex)
        }
        return body()
    }
}
