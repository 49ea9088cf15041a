#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
