#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A typed socket option for ``AsyncSocket/setOption(_:_:)`` and ``AsyncSocket/option(_:)``.
///
/// The common ones are provided (``tcpNoDelay``, ``keepAlive``, ``receiveBufferSize``, ``sendBufferSize``,
/// ``reuseAddress``, ``reusePort``); any other integer option can be named with
/// ``init(level:name:)``, and ``AsyncSocket/setRawOption(level:name:bytes:)`` takes raw bytes.
public struct SocketOption<Value: SocketOptionValue>: Sendable, Hashable, CustomStringConvertible {
    /// The protocol level, such as `SOL_SOCKET` or `IPPROTO_TCP`.
    public var level: Int32
    /// The option name, such as `SO_KEEPALIVE`.
    public var name: Int32
    private var label: String?

    /// An integer-valued option at `level` named `name`, as `setsockopt(2)` takes them.
    public init(level: Int32, name: Int32) {
        self.level = level
        self.name = name
    }

    init(level: Int32, name: Int32, label: String) {
        self.init(level: level, name: name)
        self.label = label
    }

    /// The option's C name, such as `"TCP_NODELAY"`, or `"level L option N"`.
    public var description: String { label ?? "level \(level) option \(name)" }
}

/// A value a ``SocketOption`` can carry: stored as a C `int`.
public protocol SocketOptionValue: Sendable, Hashable {
    /// The `int` passed to `setsockopt`.
    var socketOptionInt: Int32 { get }
    /// The value for the `int` returned by `getsockopt`.
    init(socketOptionInt: Int32)
}

extension Bool: SocketOptionValue {
    /// `1` or `0`.
    public var socketOptionInt: Int32 { self ? 1 : 0 }
    /// `true` for any non-zero value.
    public init(socketOptionInt: Int32) { self = socketOptionInt != 0 }
}

extension Int: SocketOptionValue {
    /// The value as a C `int` (clamped).
    public var socketOptionInt: Int32 { Int32(clamping: self) }
    /// The C `int` as an `Int`.
    public init(socketOptionInt: Int32) { self = Int(socketOptionInt) }
}

extension SocketOption where Value == Bool {
    /// `TCP_NODELAY`: send small writes at once instead of coalescing them (Nagle's algorithm off).
    /// On by default for TCP sockets this library creates.
    public static var tcpNoDelay: SocketOption { .init(level: Int32(IPPROTO_TCP), name: TCP_NODELAY, label: "TCP_NODELAY") }
    /// `SO_KEEPALIVE`: probe idle connections.
    public static var keepAlive: SocketOption { .init(level: SOL_SOCKET, name: SO_KEEPALIVE, label: "SO_KEEPALIVE") }
    /// `SO_REUSEADDR`.
    public static var reuseAddress: SocketOption { .init(level: SOL_SOCKET, name: SO_REUSEADDR, label: "SO_REUSEADDR") }
    /// `SO_REUSEPORT`.
    public static var reusePort: SocketOption { .init(level: SOL_SOCKET, name: SO_REUSEPORT, label: "SO_REUSEPORT") }
}

extension SocketOption where Value == Int {
    /// `SO_RCVBUF`, in bytes (Linux doubles what is set and reports the doubled value).
    public static var receiveBufferSize: SocketOption { .init(level: SOL_SOCKET, name: SO_RCVBUF, label: "SO_RCVBUF") }
    /// `SO_SNDBUF`, in bytes (Linux doubles what is set and reports the doubled value).
    public static var sendBufferSize: SocketOption { .init(level: SOL_SOCKET, name: SO_SNDBUF, label: "SO_SNDBUF") }
}

extension AsyncSocket {
    /// Sets a socket option (`setsockopt(2)`).
    /// - Throws: ``SocketError`` naming the option (`ENOPROTOOPT`, `EINVAL`, `EBADF` after ``close()``).
    public func setOption<Value>(_ option: SocketOption<Value>, _ value: Value) throws {
        var raw = value.socketOptionInt
        try withUnsafeBytes(of: &raw) { try setRawOption(level: option.level, name: option.name, bytes: $0, label: option.description) }
    }

    /// Reads a socket option (`getsockopt(2)`).
    /// - Throws: ``SocketError`` naming the option.
    public func option<Value>(_ option: SocketOption<Value>) throws -> Value {
        let bytes = try rawOption(level: option.level, name: option.name, capacity: MemoryLayout<Int32>.size, label: option.description)
        var raw: Int32 = 0
        withUnsafeMutableBytes(of: &raw) { $0.copyBytes(from: bytes.prefix(4)) }
        return Value(socketOptionInt: raw)
    }

    /// Sets any socket option from raw bytes: the escape hatch for options without a typed name
    /// (for example `SO_LINGER` with a `linger` struct).
    /// - Throws: ``SocketError`` naming the option (`EINVAL` for more than ``largestRawOption`` bytes).
    public func setRawOption(level: Int32, name: Int32, bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try setRawOption(level: level, name: name, bytes: $0, label: "level \(level) option \(name)") }
    }

    /// Reads any socket option as raw bytes (at most `capacity` bytes).
    ///
    /// `capacity` is an upper bound, not a size to allocate: at most ``largestRawOption`` bytes are
    /// allocated and returned, however large it is.
    /// - Throws: ``SocketError`` naming the option (`EINVAL` when `capacity` is not positive).
    public func rawOption(level: Int32, name: Int32, capacity: Int) throws -> [UInt8] {
        try rawOption(level: level, name: name, capacity: capacity, label: "level \(level) option \(name)")
    }

    /// The most bytes ``rawOption(level:name:capacity:)`` allocates and ``setRawOption(level:name:bytes:)``
    /// passes on (1 MiB: far more than any socket option's value; `socklen_t` could not carry 4 GiB).
    public static let largestRawOption = 1 << 20

    private func setRawOption(level: Int32, name: Int32, bytes: UnsafeRawBufferPointer, label: String) throws {
        guard !isClosed else { throw SocketError.closed("setsockopt", address: peer) }
        guard bytes.count <= Self.largestRawOption else {
            throw SocketError.invalidArgument("setsockopt", "\(label): \(bytes.count) bytes is more than \(Self.largestRawOption)")
        }
        let fd = descriptor
        _ = try Syscall.call("setsockopt", address: peer, detail: label) {
            setsockopt(fd, level, name, bytes.baseAddress, socklen_t(bytes.count))
        }
    }

    private func rawOption(level: Int32, name: Int32, capacity: Int, label: String) throws -> [UInt8] {
        guard !isClosed else { throw SocketError.closed("getsockopt", address: peer) }
        guard capacity > 0 else { throw SocketError.invalidArgument("getsockopt", "capacity must be positive, got \(capacity)") }
        // A bound, not a size to allocate (`capacity: Int.max` must not try to allocate it).
        let capacity = min(capacity, Self.largestRawOption)
        var bytes = [UInt8](repeating: 0, count: capacity)
        var length = socklen_t(capacity)
        let fd = descriptor
        _ = try Syscall.call("getsockopt", address: peer, detail: label) {
            bytes.withUnsafeMutableBytes { getsockopt(fd, level, name, $0.baseAddress, &length) }
        }
        return Array(bytes.prefix(Int(length)))
    }
}
