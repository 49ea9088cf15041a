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
/// Loops come in groups (``EventLoopGroup``): ``EventLoopGroup/shared`` has one loop per core, and a new
/// socket lives on the loop its creating task prefers, or on the shared group's next loop (see
/// <doc:ConcurrencyModel>). Sockets on different loops work together: a task may use sockets of any loop.
///
/// ## Registration from other threads
/// libevent is used without its internal locks (`EVENT_BASE_FLAG_NOLOCK`): every libevent call is made on the
/// loop thread. Other threads hand work to the loop through a mutex-guarded queue and wake it with an
/// `eventfd` registered in the `event_base`, only when the loop is asleep in `epoll_wait`.
public final class EventLoop: SerialExecutor, TaskExecutor, @unchecked Sendable, CustomStringConvertible {
    // @unchecked Sendable, proved field by field:
    // - `base`, `wakeRead`, `wakeWrite`, `scratch`, `serialExecutor`, `threadID` are written once, before
    //   `init` returns (`serialExecutor` before the thread starts; the initializer waits for the thread to
    //   publish `threadID` and `wakeEvent`), and only read afterwards;
    // - `remote`, `sleeping`, `wakePending` and `syncRequests` are only touched with `lock` held;
    //   `syncCondition` is a thread-safe primitive;
    // - `local`, `running`, `runningLeft`, `counters`' memory, `resumingTaskPrefersLoop`, `jobsRun` and the
    //   libevent base itself are only touched on the loop thread (every use is in `run()`, in libevent
    //   callbacks, in `resume`, or behind `inLoop` checks; `statistics` reads the counters through
    //   `executeAndWait`).

    enum Job {
        /// A task's job; `prefersLoop` when the task prefers this loop as its task executor.
        case task(UnownedJob, prefersLoop: Bool)
        case closure(() -> Void)
        /// A task parked behind the jobs queued before it (`resumeBehindQueuedJobs(_:)`): resumed, preferring this loop.
        case resume(UnsafeContinuation<Void, Never>)
    }

    /// The first loop of ``EventLoopGroup/shared`` (with `ASYNCSOCKETS_LOOP_COUNT=1`, the only one).
    ///
    /// Sockets are spread over every loop of the shared group; this one remains as a convenient loop to
    /// prefer, for example in `EventLoop.shared.run { … }`, where the sockets the body creates live on it.
    public static let shared = EventLoopGroup.shared.loops[0]

    /// Where a new socket lives: on the loop the current task prefers as its task executor (inside
    /// `loop.run { … }` or a `serve` handler), so that it costs that task no hop; otherwise on the next loop of
    /// ``EventLoopGroup/shared``. Servers place their clients with their own group instead. (`package`: the
    /// scoped TLS connection picks its loop the same way.)
    package static func next() -> EventLoop {
        preferredByCurrentTask ?? EventLoopGroup.shared.next()
    }

    /// The loop the current task prefers as its task executor, if it prefers one of ours.
    static var preferredByCurrentTask: EventLoop? {
        guard let preferred = withUnsafeCurrentTask(body: { $0?.unownedTaskExecutor }) else { return nil }
        // Usually the task runs on the very loop it prefers: one comparison.
        if let current, current.asUnownedTaskExecutor() == preferred { return current }
        return registry.withLock { loops in loops.first { $0.asUnownedTaskExecutor() == preferred } }
    }

    /// The loop whose thread is the calling thread, if any.
    static var current: EventLoop? {
        as_current_loop_get().map { Unmanaged<EventLoop>.fromOpaque($0).takeUnretainedValue() }
    }

    /// Every loop created (loops live as long as the process), to find the one a task prefers.
    private static let registry = Locked<[EventLoop]>([])

    let name: String
    let base: UnsafeMutableRawPointer
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private var wakeEvent: UnsafeMutableRawPointer?
    private let lock = Lock()
    private var remote: [Job] = []
    private var sleeping = false
    private var wakePending = false
    /// `executeAndWait` bodies aimed at this loop, not yet run (see `executeAndWait`).
    private var syncRequests: [SyncRequest] = []
    /// What this loop's thread waits on while it is blocked in an `executeAndWait` aimed at another loop.
    private let syncCondition = Condition()
    private var local: [Job] = []
    private var running: [Job] = []
    /// How many jobs of `running` have not started yet (the batch being run, after the current job).
    private var runningLeft = 0
    /// The counters that every read and write of the loop's sockets looks at (`jobSerial`, `polls`), in memory
    /// the loop owns rather than stored properties: Swift checks each access to a class's stored `var` for
    /// overlapping accesses at run time (`swift_beginAccess`), several times per round trip here. Plain memory
    /// is safe because it is touched on the loop thread only (see the proof above) and no access overlaps
    /// another (each is a single load or store). Allocated once and never freed: loops live as long as the
    /// process.
    private let counters: UnsafeMutablePointer<Counters> = {
        let memory = UnsafeMutablePointer<Counters>.allocate(capacity: 1)
        memory.initialize(to: Counters())
        return memory
    }()

    /// See `counters`.
    struct Counters {
        var jobSerial: UInt = 1
        var polls = 0
        /// The job running now is a task's job that the loop knows prefers this loop as its task executor
        /// (see `currentTaskPrefersLoop`).
        var jobPrefersLoop = false
    }

    /// Numbers the jobs this loop runs (never 0): code that sees the same number twice ran in one job, with no
    /// suspension between. Loop thread only.
    package var jobSerial: UInt {
        @inline(__always) get { counters.pointee.jobSerial }
    }
    private var threadID = pthread_t()
    private var resumingTaskPrefersLoop = false
    private var serialExecutor: LoopSerialExecutor!
    /// Jobs and closures run since start (loop thread only).
    private var jobsRun = 0
    /// Readiness polls made since start: work between two polls is one fairness turn (`IOBudget`). Loop
    /// thread only.
    package var polls: Int {
        @inline(__always) get { counters.pointee.polls }
    }

    /// Counters for benchmarks and tests: jobs run and readiness polls since the loop started (read on the
    /// loop thread; from another thread this waits for the loop to answer).
    @_spi(Statistics) public var statistics: (jobs: Int, polls: Int) {
        if inLoop { return (jobsRun, polls) }
        let result = Locked((jobs: 0, polls: 0))
        executeAndWait { result.withLock { $0 = (self.jobsRun, self.polls) } }
        return result.withLock { $0 }
    }

    /// A buffer that reads on this loop's thread fill before copying out; one per loop, not per socket.
    let scratch: UnsafeMutableRawBufferPointer
    static let scratchSize = 64 * 1024
    /// How many queued jobs run between two readiness polls at most.
    static let jobsPerPoll = 256

    /// Creates a loop and starts its thread. Loops live as long as the process.
    init(name: String) {
        self.name = name
        guard let base = as_base_new() else { fatalError("AsyncSockets: event_base_new failed (errno \(Syscall.lastError))") }
        self.base = base
        var writeFD: Int32 = -1
        let readFD = as_wakeup_fd(&writeFD)
        guard readFD >= 0 else { fatalError("AsyncSockets: eventfd failed (errno \(Syscall.lastError))") }
        self.wakeRead = readFD
        self.wakeWrite = writeFD
        self.scratch = .allocate(byteCount: Self.scratchSize, alignment: 16)
        local.reserveCapacity(64)
        running.reserveCapacity(64)
        serialExecutor = LoopSerialExecutor(loop: self)

        let started = Locked(false)
        let ready = Condition()
        // `unowned(unsafe)`: a loop is never deinitialised (loops live as long as the process, see above), so
        // the thread it starts can never outlive it; no retain cycle between the loop and its own thread.
        startThread(name: name) { [unowned(unsafe) self] in
            self.threadID = pthread_self()
            as_current_loop_set(Unmanaged.passUnretained(self).toOpaque())
            self.wakeEvent = as_event_new(self.base, self.wakeRead, Int16(AS_EV_READ | AS_EV_PERSIST), { _, _, arg in
                Unmanaged<EventLoop>.fromOpaque(arg!).takeUnretainedValue().drainWakeups()
            }, Unmanaged.passUnretained(self).toOpaque())
            _ = as_event_add(self.wakeEvent, -1)
            ready.signal { started.withLock { $0 = true } }
            self.run()
        }
        ready.wait(until: { started.withLock { $0 } })
        Self.registry.withLock { $0.append(self) }
    }

    /// `"EventLoop(AsyncSockets, epoll)"`.
    public var description: String { "EventLoop(\(name), \(String(cString: as_base_method(base))))" }

    /// Whether the calling thread is this loop's thread.
    @inline(__always)
    public var inLoop: Bool { pthread_equal(pthread_self(), threadID) != 0 }

    // MARK: Executors

    /// Enqueues a job of a task that prefers this loop as its task executor (the `TaskExecutor` requirement).
    public func enqueue(_ job: consuming ExecutorJob) {
        submit(.task(UnownedJob(job), prefersLoop: true))
    }

    /// Enqueues a job for an actor on this loop (the serial executor's requirement). Whether the job's task
    /// prefers this loop is known when the job is a continuation that this loop resumes (see
    /// `resume(_:with:)`); other jobs run without a task executor.
    fileprivate func enqueueIsolated(_ job: consuming ExecutorJob) {
        submit(.task(UnownedJob(job), prefersLoop: inLoop && resumingTaskPrefersLoop))
    }

    /// The serial executor of the actors assigned to this loop (their `unownedExecutor`).
    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        serialExecutor.asUnownedSerialExecutor()
    }

    /// Traps unless called on the loop thread.
    public func checkIsolated() {
        precondition(inLoop, "expected to run on the event loop thread of \(self)")
    }

    /// Whether the current task prefers this loop as its task executor (`EventLoop.run`, `serve`,
    /// `withConnection`). Called on the loop thread, by the socket code that decides how to wait.
    ///
    /// Asking the task costs a walk of its status records under their lock, twice per round trip, so the
    /// loop remembers it per job: a job that came through the task executor (`enqueue`), or that resumes a
    /// wait begun with the loop preferred (`enqueueIsolated` inside `resume`), belongs to a task that prefers
    /// this loop. Only that answer is trusted; otherwise the task is asked. A task can stop preferring the loop
    /// within a job (the end of a `withTaskExecutorPreference` scope); `LoopBound` clears the flag where its own
    /// scope ends, and a scope in the caller's code that ends mid-job can at worst make a wait skip its
    /// preference: its resumption then hops through the global pool, correct but slower, as before `LoopBound`
    /// set preferences at all. Nothing else depends on the answer.
    package var currentTaskPrefersLoop: Bool {
        if inLoop && counters.pointee.jobPrefersLoop { return true }
        let mine = asUnownedTaskExecutor()
        return withUnsafeCurrentTask { $0?.unownedTaskExecutor == mine }
    }

    /// The current task no longer prefers this loop (a `withTaskExecutorPreference(loop)` scope of `LoopBound`
    /// ended): `currentTaskPrefersLoop` asks the task again for the rest of the job. Loop thread only.
    @inline(__always)
    func currentTaskLeftPreference() {
        counters.pointee.jobPrefersLoop = false
    }

    /// Resumes a continuation of a task suspended on an actor of this loop. The task prefers this loop as its
    /// task executor while it waits (see `LoopBound`), so the runtime enqueues it here through `enqueue`; should
    /// the job come through the serial executor instead, `enqueueIsolated` still runs it with the loop as its
    /// task executor, so its next calls into sockets on this loop need no extra hop. Loop thread only.
    @inline(__always)
    func resume<T: Sendable>(_ continuation: UnsafeContinuation<T, Never>, with value: T) {
        resumingTaskPrefersLoop = true
        continuation.resume(returning: value)
        resumingTaskPrefersLoop = false
    }

    /// Whether jobs are queued behind the one running now (this batch's rest, or new ones). Loop thread only.
    @inline(__always)
    package var hasQueuedJobs: Bool { runningLeft > 0 || !local.isEmpty }

    /// Parks `continuation` behind the jobs queued now; the loop resumes it (preferring this loop) when it gets
    /// there. No readiness poll and no timer: a plain place in the queue. Loop thread only.
    @inline(__always)
    func resumeBehindQueuedJobs(_ continuation: UnsafeContinuation<Void, Never>) {
        local.append(.resume(continuation))
    }

    /// Runs `body` on the loop thread (soon, in order with other submitted work). Safe from any thread.
    func execute(_ body: @escaping @Sendable () -> Void) {
        submit(.closure(body))
    }

    /// Runs `body` on the loop thread and returns after it ran: at once when called on the loop thread,
    /// otherwise by handing it over and blocking the caller until the loop has run it.
    ///
    /// Loops wait on each other only here, and never deadlock doing so: a loop blocked in an
    /// `executeAndWait` aimed at another loop keeps running the `executeAndWait` bodies aimed at itself (for
    /// example two handlers on two loops, each closing a server whose listener is on the other loop). Only
    /// those bodies run meanwhile, never jobs, so no actor is entered twice.
    func executeAndWait(_ body: @escaping @Sendable () -> Void) {
        if inLoop {
            body()
            return
        }
        let caller = Self.current
        let request = SyncRequest(body, signal: caller?.syncCondition ?? Condition())
        lock.withLock { syncRequests.append(request) }
        // Runs it as soon as this loop gets to it, and wakes this loop if it is itself blocked in an
        // `executeAndWait` (then it runs the request from there).
        execute { [unowned(unsafe) self] in self.runSyncRequests() }
        syncCondition.signal {}
        if let caller {
            caller.waitServingSyncRequests(until: request)
        } else {
            request.signal.wait(until: { request.isDone })
        }
    }

    /// Runs the `executeAndWait` bodies aimed at this loop. Loop thread only.
    private func runSyncRequests() {
        let pending: [SyncRequest] = lock.withLock {
            defer { syncRequests.removeAll() }
            return syncRequests
        }
        for request in pending { request.run() }
    }

    /// Blocks this loop's thread until `request` (aimed at another loop) has run, running the
    /// `executeAndWait` bodies that arrive for this loop meanwhile. Loop thread only.
    private func waitServingSyncRequests(until request: SyncRequest) {
        while true {
            let serve: Bool = syncCondition.waitFor {
                if request.isDone { return false }
                return lock.withLock { syncRequests.isEmpty } ? nil : true
            }
            if !serve { return }
            runSyncRequests()
        }
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
            // Run what is queued, including what those jobs queue (hops between actors and tasks on this
            // loop), up to a budget; then poll for readiness, so that a busy socket cannot starve the others.
            var budget = Self.jobsPerPoll
            while !local.isEmpty && budget > 0 {
                swap(&local, &running)
                budget -= running.count
                runningLeft = running.count
                for job in running {
                    runningLeft &-= 1
                    let next = counters.pointee.jobSerial &+ 1
                    counters.pointee.jobSerial = next == 0 ? 1 : next
                    switch job {
                    case .task(let job, let prefersLoop):
                        counters.pointee.jobPrefersLoop = prefersLoop
                        if prefersLoop {
                            job.runSynchronously(isolatedTo: serial, taskExecutor: task)
                        } else {
                            job.runSynchronously(on: serial)
                        }
                        counters.pointee.jobPrefersLoop = false
                    case .closure(let body): body()
                    case .resume(let continuation): resume(continuation, with: ())
                    }
                }
                jobsRun &+= running.count
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
            counters.pointee.polls &+= 1
            // One round either way: `ONCE` alone blocks until something is active; with `NONBLOCK` it returns
            // at once. (`NONBLOCK` without `ONCE` keeps polling for as long as each poll finds events, which
            // with level-triggered reads never ends while a socket nobody reads stays readable, and would hold
            // back the jobs that read it.)
            _ = as_base_loop(base, Int32(idle ? AS_LOOP_ONCE : AS_LOOP_ONCE | AS_LOOP_NONBLOCK))
            if idle { lock.withLock { sleeping = false } }
        }
    }
}

/// The `SerialExecutor` of the actors on an ``EventLoop``: the same queue and thread as the loop itself, which
/// is the `TaskExecutor`. Two objects, because the runtime calls `enqueue` on both protocols alike and the loop
/// must know which one a job came through: a job enqueued on the task executor belongs to a task that prefers
/// the loop, and runs with the loop as both its serial and task executor, so that its calls into actors on
/// the loop switch without a hop.
final class LoopSerialExecutor: SerialExecutor {
    unowned(unsafe) let loop: EventLoop
    // `unowned(unsafe)`: loops live as long as the process and own this executor.

    init(loop: EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        loop.enqueueIsolated(job)
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    func checkIsolated() {
        loop.checkIsolated()
    }
}
/// One `executeAndWait` body: run exactly once, by its loop (taken from the loop's list under the loop's lock),
/// then `signal` wakes the waiting caller.
final class SyncRequest: Sendable {
    let body: @Sendable () -> Void
    /// The caller waits on it: its loop's condition when the caller is a loop, else its own.
    let signal: Condition
    private let done = Locked(false)

    init(_ body: @escaping @Sendable () -> Void, signal: Condition) {
        self.body = body
        self.signal = signal
    }

    var isDone: Bool { done.withLock { $0 } }

    func run() {
        body()
        signal.signal { done.withLock { $0 = true } }
    }
}
