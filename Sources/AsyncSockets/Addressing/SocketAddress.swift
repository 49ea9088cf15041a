#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A resolved, numeric socket address: an IPv4 or IPv6 address and port, or a unix-domain path.
///
/// Unlike ``Endpoint`` it needs no lookup. The initializers validate their input and throw a
/// ``SocketError`` with `EINVAL` naming the bad value.
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    enum Storage: Hashable {
        /// Address bytes in network order, port in host order.
        case ipv4(UInt32, port: UInt16)
        /// The 16 address bytes as two big-endian halves, port in host order, scope id.
        case ipv6(UInt64, UInt64, port: UInt16, scopeID: UInt32)
        case unix(String)
    }

    let storage: Storage

    init(storage: Storage) { self.storage = storage }

    /// Parses a numeric IPv4 address such as `"127.0.0.1"`.
    public init(ipv4: String, port: UInt16) throws {
        try Self.checkNoNUL(ipv4, "SocketAddress(ipv4:)")
        var address = in_addr()
        guard inet_pton(AF_INET, ipv4, &address) == 1 else {
            throw SocketError.invalidArgument("SocketAddress(ipv4:)", "\"\(ipv4)\" is not a numeric IPv4 address")
        }
        storage = .ipv4(address.s_addr, port: port)
    }

    /// Parses a numeric IPv6 address such as `"::1"`, `"::ffff:127.0.0.1"` or `"fe80::1%eth0"`
    /// (a scope may be an interface name or index).
    public init(ipv6: String, port: UInt16) throws {
        try Self.checkNoNUL(ipv6, "SocketAddress(ipv6:)")
        var text = Substring(ipv6)
        if text.hasPrefix("["), text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        var scopeID: UInt32 = 0
        if let percent = text.firstIndex(of: "%") {
            let scope = String(text[text.index(after: percent)...])
            text = text[..<percent]
            if let index = UInt32(scope) {
                scopeID = index
            } else {
                scopeID = if_nametoindex(scope)
                if scopeID == 0 {
                    throw SocketError.invalidArgument("SocketAddress(ipv6:)", "unknown interface \"\(scope)\" in \"\(ipv6)\"")
                }
            }
        }
        var address = in6_addr()
        guard inet_pton(AF_INET6, String(text), &address) == 1 else {
            throw SocketError.invalidArgument("SocketAddress(ipv6:)", "\"\(ipv6)\" is not a numeric IPv6 address")
        }
        let (high, low) = withUnsafeBytes(of: &address) { raw in
            (raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self), raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        }
        storage = .ipv6(high, low, port: port, scopeID: scopeID)
    }

    /// A unix-domain socket path. Throws when the path is empty, contains a NUL byte, or does not fit
    /// in `sun_path` (107 bytes on Linux, 103 on Darwin).
    public init(unixPath: String) throws {
        try Self.checkNoNUL(unixPath, "SocketAddress(unixPath:)")
        guard !unixPath.isEmpty else {
            throw SocketError.invalidArgument("SocketAddress(unixPath:)", "the path is empty")
        }
        let capacity = MemoryLayout.size(ofValue: sockaddr_un().sun_path)
        guard unixPath.utf8.count < capacity else {
            throw SocketError(code: ENAMETOOLONG, operation: "SocketAddress(unixPath:)", address: nil,
                              detail: "the path is \(unixPath.utf8.count) bytes long, the limit is \(capacity - 1): \"\(unixPath)\"")
        }
        storage = .unix(unixPath)
    }

    /// Parses a numeric IPv4 or IPv6 address (no lookup). Throws when `host` is neither.
    public init(numericHost host: String, port: UInt16) throws {
        if host.contains(":") {
            try self.init(ipv6: host, port: port)
        } else {
            try self.init(ipv4: host, port: port)
        }
    }

    /// The family: ``SocketFamily/ipv4``, ``SocketFamily/ipv6`` or ``SocketFamily/unix``.
    public var family: SocketFamily {
        switch storage {
        case .ipv4: return .ipv4
        case .ipv6: return .ipv6
        case .unix: return .unix
        }
    }

    /// The numeric host: `"127.0.0.1"`, `"::ffff:127.0.0.3"`; `nil` for a unix address.
    public var host: String? {
        switch storage {
        case .ipv4(let raw, _):
            var address = in_addr(s_addr: raw)
            return Self.ntop(AF_INET, &address)
        case .ipv6(let high, let low, _, let scopeID):
            var address = in6_addr()
            withUnsafeMutableBytes(of: &address) { raw in
                raw.storeBytes(of: high, toByteOffset: 0, as: UInt64.self)
                raw.storeBytes(of: low, toByteOffset: 8, as: UInt64.self)
            }
            let text = Self.ntop(AF_INET6, &address)
            return scopeID == 0 ? text : "\(text)%\(scopeID)"
        case .unix:
            return nil
        }
    }

    /// The port; `nil` for a unix address.
    public var port: UInt16? {
        switch storage {
        case .ipv4(_, let port), .ipv6(_, _, let port, _): return port
        case .unix: return nil
        }
    }

    /// The path of a unix address; `nil` for IP addresses.
    public var unixPath: String? {
        if case .unix(let path) = storage { return path }
        return nil
    }

    /// Whether this is an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`).
    public var isIPv4Mapped: Bool {
        if case .ipv6(let high, let low, _, _) = storage {
            return high == 0 && UInt64(bigEndian: low) >> 32 == 0xffff
        }
        return false
    }

    /// `127.0.0.1:80`, `[::1]:80` or `unix:/path`.
    public var description: String {
        switch storage {
        case .ipv4(_, let port): return "\(host!):\(port)"
        case .ipv6(_, _, let port, _): return "[\(host!)]:\(port)"
        case .unix(let path): return "unix:\(path)"
        }
    }

    private static func checkNoNUL(_ text: String, _ operation: String) throws {
        if text.utf8.contains(0) {
            throw SocketError.invalidArgument(operation, "the string contains a NUL byte: \(text.debugDescription)")
        }
    }

    private static func ntop(_ family: Int32, _ address: UnsafeRawPointer) -> String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { buffer in
            guard inet_ntop(family, address, buffer.baseAddress!, 64) != nil else { return "?" }
            return String(cString: buffer.baseAddress!)
        }
    }
}

// MARK: - sockaddr conversion: the only place that builds or reads raw socket addresses.

extension SocketAddress {
    /// Calls `body` with a `sockaddr` for this address and its length.
    func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) rethrows -> R {
        switch storage {
        case .ipv4(let raw, let port):
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr = in_addr(s_addr: raw)
            return try withUnsafePointer(to: &address) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try body($0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        case .ipv6(let high, let low, let port, let scopeID):
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            address.sin6_scope_id = scopeID
            withUnsafeMutableBytes(of: &address.sin6_addr) { raw in
                raw.storeBytes(of: high, toByteOffset: 0, as: UInt64.self)
                raw.storeBytes(of: low, toByteOffset: 8, as: UInt64.self)
            }
            return try withUnsafePointer(to: &address) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try body($0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        case .unix(let path):
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let length = withUnsafeMutableBytes(of: &address.sun_path) { raw -> Int in
                let bytes = Array(path.utf8)
                raw.copyBytes(from: bytes)
                raw[bytes.count] = 0
                return bytes.count
            }
            let size = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)! + length + 1
            return try withUnsafePointer(to: &address) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try body($0, socklen_t(size))
                }
            }
        }
    }

    /// Reads an address that the kernel wrote into `storage`. `nil` for an unknown family.
    init?(sockaddr storage: UnsafeRawPointer, length: socklen_t) {
        let family = Int32(storage.load(as: sockaddr.self).sa_family)
        switch family {
        case AF_INET:
            let address = storage.loadUnaligned(as: sockaddr_in.self)
            self.storage = .ipv4(address.sin_addr.s_addr, port: UInt16(bigEndian: address.sin_port))
        case AF_INET6:
            var address = storage.loadUnaligned(as: sockaddr_in6.self)
            let (high, low) = withUnsafeBytes(of: &address.sin6_addr) { raw in
                (raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self), raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            }
            self.storage = .ipv6(high, low, port: UInt16(bigEndian: address.sin6_port), scopeID: address.sin6_scope_id)
        case AF_UNIX:
            let offset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
            let count = max(0, Int(length) - offset)
            let bytes = UnsafeRawBufferPointer(start: storage + offset, count: count)
            let path = bytes.prefix { $0 != 0 }
            self.storage = .unix(String(decoding: path, as: UTF8.self))
        default:
            return nil
        }
    }

    /// Calls `getsockname`/`getpeername`-style `fill` with a `sockaddr_storage` and reads the result.
    static func read(_ fill: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32) -> SocketAddress?? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { fill($0, &length) }
        }
        if rc != 0 { return .none }
        return .some(withUnsafeBytes(of: &storage) { SocketAddress(sockaddr: $0.baseAddress!, length: length) })
    }
}
