#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The outcome of a non-blocking system call: it did something, or the descriptor was not ready.
///
/// "Would block" (`EAGAIN`/`EWOULDBLOCK`, and `EINPROGRESS` for `connect`) is a value, not an error: the caller
/// waits for readiness and tries again.
enum IOResult<Value> {
    /// The call succeeded with this value (a byte count, a descriptor, …).
    case processed(Value)
    /// The descriptor was not ready; nothing happened.
    case wouldBlock
}

/// The one funnel every raw system call of the library goes through (SwiftNIO's `syscall(blocking:)` in
/// `System.swift` is the model):
/// - `EINTR` is retried;
/// - `errno` is read in the same synchronous step as the call that set it (no `await`, no other call between);
/// - a failure becomes a ``SocketError`` naming the call and the address;
/// - for non-blocking calls, "would block" is returned as ``IOResult/wouldBlock``.
///
/// Callers never read `errno` themselves. The calls themselves are made through ``Posix`` (the C library's names)
/// or the C shim.
enum Syscall {
    /// Runs `body` (a C call returning a negative value and setting `errno` on failure) until it does not fail
    /// with `EINTR`. Returns its result, or the `errno` of its failure.
    @inline(__always)
    static func attempt<T: BinaryInteger>(_ body: () -> T) -> Result<T, Errno.Code> {
        while true {
            let result = body()
            if result >= 0 { return .success(result) }
            let code = Posix.errno
            if code != EINTR { return .failure(Errno.Code(code)) }
        }
    }

    /// Runs a call that must succeed: retries `EINTR`, throws a ``SocketError`` naming `operation` and
    /// `address` on any failure.
    @inline(__always)
    static func call<T: BinaryInteger>(_ operation: String, address: SocketAddress? = nil, detail: String? = nil,
                                       _ body: () -> T) throws(SocketError) -> T {
        switch attempt(body) {
        case .success(let value): return value
        case .failure(let code):
            throw SocketError(code: code.rawValue, operation: operation, address: address, detail: detail)
        }
    }

    /// Runs a non-blocking call: retries `EINTR`, returns ``IOResult/wouldBlock`` for `EAGAIN`/`EWOULDBLOCK`
    /// (and for `EINPROGRESS`, which a non-blocking `connect` reports), throws a ``SocketError`` naming
    /// `operation` and `address` on any other failure.
    @inline(__always)
    static func nonBlocking<T: BinaryInteger>(_ operation: String, address: SocketAddress? = nil,
                                              detail: String? = nil,
                                              _ body: () -> T) throws(SocketError) -> IOResult<T> {
        switch attempt(body) {
        case .success(let value): return .processed(value)
        case .failure(let code) where code.wouldBlock: return .wouldBlock
        case .failure(let code):
            throw SocketError(code: code.rawValue, operation: operation, address: address, detail: detail)
        }
    }

    /// `errno` right now, for the rare C call outside this funnel that reports failure another way (a NULL
    /// pointer from libevent, `getaddrinfo`'s `EAI_SYSTEM`). Read it in the same synchronous step as the call.
    @inline(__always)
    static var lastError: Int32 { Posix.errno }
}

extension Errno {
    /// An `errno` value captured by ``Syscall``.
    struct Code: Error, Equatable, Sendable {
        let rawValue: Int32

        init(_ rawValue: Int32) { self.rawValue = rawValue }

        /// `EAGAIN`/`EWOULDBLOCK`, or `EINPROGRESS` (a non-blocking connect under way).
        var wouldBlock: Bool {
            rawValue == EAGAIN || rawValue == EWOULDBLOCK || rawValue == EINPROGRESS
        }
    }
}
