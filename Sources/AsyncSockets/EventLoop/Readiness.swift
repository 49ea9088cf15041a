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
