#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `pthread_mutex_t` that owns its memory (`Condition` pairs its own mutex with a condition variable).
///
/// (A `pthread_mutex` wrapper rather than `Synchronization.Mutex`: ThreadSanitizer reported races on the
/// latter with this toolchain that disappeared with the same logic behind a pthread mutex; see the design notes.)
final class Lock: @unchecked Sendable {
    // @unchecked Sendable: the only stored state is the mutex itself, which exists to be shared between
    // threads; it is initialised in `init`, destroyed in `deinit`, and otherwise only passed to pthread calls.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let rc = pthread_mutex_init(mutex, nil)
        precondition(rc == 0, "pthread_mutex_init failed: \(rc)")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }

    @inline(__always)
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// A value guarded by a `Lock`.
final class Locked<Value: Sendable>: @unchecked Sendable {
    // @unchecked Sendable: `value` is only read or written inside `lock.withLock`, so every access is
    // serialised by the mutex; callers cannot reach `value` any other way. `Value: Sendable`, so what a
    // caller copies out of the lock may safely travel to another thread.
    private let lock = Lock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        try lock.withLock { try body(&value) }
    }
}
