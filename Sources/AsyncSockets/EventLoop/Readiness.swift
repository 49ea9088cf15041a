internal import CLibeventShim

/// Which way a socket waits: for data to read (or a connection to accept), or for room to write
/// (or a connect to finish).
enum IODirection {
    case read
    case write
}

/// How a wait ended.
enum WaitOutcome {
    /// The descriptor is ready (or, for a timer, the time passed).
    case ready
    /// The timeout passed first.
    case timedOut
    /// The waiting task was cancelled.
    case cancelled
    /// The socket was closed while waiting.
    case closed
    /// libevent refused to register the wait (errno).
    case failed(Int32)
}

/// A libevent readiness registration for one descriptor and direction, created on first use and reused
/// (one-shot: armed per wait with `event_add`, disarmed by firing or `event_del`).
struct ReadinessEvent {
    private(set) var pointer: UnsafeMutableRawPointer?

    /// Arms the event, creating it on first use. `false` with errno set if libevent refused.
    mutating func arm(base: UnsafeMutableRawPointer, fd: Int32, what: Int, timeoutMicroseconds: Int64,
                      callback: as_event_callback, arg: UnsafeMutableRawPointer) -> Bool {
        if pointer == nil {
            pointer = as_event_new(base, fd, Int16(what), callback, arg)
            if pointer == nil { return false }
        }
        return as_event_add(pointer, timeoutMicroseconds) == 0
    }

    /// Removes the event from the loop if it is armed.
    func disarm() {
        if let pointer { _ = as_event_del(pointer) }
    }

    /// Frees the event (it must not be armed, or must be freed on the loop thread).
    mutating func free() {
        if let pointer { as_event_free(pointer) }
        pointer = nil
    }
}
