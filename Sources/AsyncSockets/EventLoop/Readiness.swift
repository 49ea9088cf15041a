internal import CLibeventShim

/// Which way a socket waits: for data to read (or a connection to accept), or for room to write
/// (or a connect to finish).
package enum IODirection {
    case read
    case write
}

/// How a wait ended.
package enum WaitOutcome {
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

/// One libevent `struct event`, owned by a `SocketCore`: created on first use, freed by `free()`.
/// Loop thread only.
struct LibeventEvent {
    private(set) var pointer: UnsafeMutableRawPointer?
    /// Whether the event is pending (added and not yet deleted).
    private(set) var isArmed = false

    var exists: Bool { pointer != nil }

    /// Creates the event if needed and adds it (`timeoutMicroseconds` < 0: no timeout).
    /// `false`, with errno set, when libevent refuses.
    mutating func arm(base: UnsafeMutableRawPointer, fd: Int32, what: Int, timeoutMicroseconds: Int64,
                      callback: as_event_callback, arg: UnsafeMutableRawPointer) -> Bool {
        if pointer == nil {
            pointer = as_event_new(base, fd, Int16(what), callback, arg)
            if pointer == nil { return false }
        }
        guard as_event_add(pointer, timeoutMicroseconds) == 0 else { return false }
        isArmed = true
        return true
    }

    /// A non-persistent event fired: libevent removed it.
    mutating func fired() { isArmed = false }

    /// Removes the event from the loop if it is pending.
    mutating func disarm() {
        if isArmed, let pointer { _ = as_event_del(pointer) }
        isArmed = false
    }

    /// Deletes and frees the event.
    mutating func free() {
        if let pointer { as_event_free(pointer) }
        pointer = nil
        isArmed = false
    }
}
