internal import CLibeventShim

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
