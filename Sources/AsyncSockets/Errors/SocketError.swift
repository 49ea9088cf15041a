#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An error from a socket operation: the `errno`, the operation that failed and the address it targeted.
///
/// Its ``description`` reads like a sentence a person can act on:
/// `connect to 127.0.0.1:8080 failed: Connection refused (ECONNREFUSED)`.
///
/// Timeouts are reported with ``code`` `ETIMEDOUT`; use after ``AsyncSocket/close()`` with `EBADF`;
/// invalid arguments (a bad address, a non-positive count, an over-long unix path) with `EINVAL`
/// and a ``detail`` naming the value.
public struct SocketError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The `errno` value: `ECONNREFUSED`, `EADDRINUSE`, `ETIMEDOUT` for timeouts, `EINVAL` for bad input, …
    public var code: Int32
    /// The address the failed operation targeted, where there is one.
    public var address: SocketAddress?
    /// The operation that failed, such as `"connect"`, `"bind"`, `"read"`, `"write"`, `"accept"`, `"resolve"`.
    public var operation: String
    /// Extra context: the offending value of an invalid argument, or what the library was doing.
    public var detail: String?

    /// Creates an error for `operation`, failed with `code`, targeting `address`.
    public init(code: Int32, operation: String, address: SocketAddress? = nil, detail: String? = nil) {
        self.code = code
        self.operation = operation
        self.address = address
        self.detail = detail
    }

    /// The symbolic name of ``code``, such as `"ECONNREFUSED"`, or `"errno N"` for an unusual value.
    public var codeName: String { Errno.name(code) }

    /// The system's text for ``code``, such as `"Connection refused"`.
    public var reason: String { Errno.text(code) }

    /// Whether this error reports a timeout (``code`` is `ETIMEDOUT`).
    public var isTimeout: Bool { code == ETIMEDOUT }

    /// `"<operation> [<preposition> <address>] failed: <reason> (<ERRNO>)[: <detail>]"`.
    public var description: String {
        var text = operation
        if let address {
            text += " \(Self.preposition(for: operation)) \(address)"
        }
        text += " failed: \(reason) (\(codeName))"
        if let detail { text += ": \(detail)" }
        return text
    }

    private static func preposition(for operation: String) -> String {
        // "read(upTo:)", "read(exactly:)", "read(into:upTo:)" read from their peer like "read" does.
        if operation.hasPrefix("read(") { return "from" }
        switch operation {
        case "read", "recv", "receive", "accept", "lines": return "from"
        case "listen": return "on"
        case "resolve": return "of"
        default: return "to"
        }
    }
}

extension SocketError {
    /// An error with the calling thread's current `errno` (``Syscall/lastError``), for a C call outside the
    /// funnel; read it in the same synchronous step as the call. Prefer ``Syscall/call(_:address:detail:_:)``.
    static func fromErrno(_ operation: String, address: SocketAddress? = nil, detail: String? = nil) -> SocketError {
        SocketError(code: Syscall.lastError, operation: operation, address: address, detail: detail)
    }

    /// `EINVAL` with a detail naming the bad value.
    static func invalidArgument(_ operation: String, _ detail: String, address: SocketAddress? = nil) -> SocketError {
        SocketError(code: EINVAL, operation: operation, address: address, detail: detail)
    }

    /// `EBADF`: the socket was closed before or during the operation.
    static func closed(_ operation: String, address: SocketAddress? = nil) -> SocketError {
        SocketError(code: EBADF, operation: operation, address: address, detail: "the socket is closed")
    }

    /// `ETIMEDOUT` after `timeout`.
    static func timedOut(_ operation: String, address: SocketAddress? = nil, after timeout: Duration?) -> SocketError {
        SocketError(code: ETIMEDOUT, operation: operation, address: address,
                    detail: timeout.map { "no progress within \($0)" })
    }
}
