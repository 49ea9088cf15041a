#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension SocketOption where Value == Bool {
    /// `SO_BROADCAST`: allow sending to broadcast addresses (a datagram socket without it gets `EACCES`).
    public static var broadcast: SocketOption { .init(level: SOL_SOCKET, name: SO_BROADCAST, label: "SO_BROADCAST") }
    /// `IPV6_V6ONLY`: an IPv6 socket that handles IPv6 only (off: IPv4 too, as `::ffff:a.b.c.d`).
    public static var ipv6Only: SocketOption { .init(level: Int32(IPPROTO_IPV6), name: IPV6_V6ONLY, label: "IPV6_V6ONLY") }
}

extension DatagramSocket {
    /// Sets a socket option (`setsockopt(2)`), such as ``SocketOption/broadcast`` or
    /// ``SocketOption/receiveBufferSize``.
    /// - Throws: ``SocketError`` naming the option (`ENOPROTOOPT`, `EINVAL`, `EBADF` after ``close()``).
    public func setOption<Value>(_ option: SocketOption<Value>, _ value: Value) throws {
        let fd = try openDescriptor("setsockopt")
        var raw = value.socketOptionInt
        _ = try Syscall.call("setsockopt", address: peer, detail: option.description) {
            setsockopt(fd, option.level, option.name, &raw, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    /// Reads a socket option (`getsockopt(2)`).
    /// - Throws: ``SocketError`` naming the option.
    public func option<Value>(_ option: SocketOption<Value>) throws -> Value {
        let fd = try openDescriptor("getsockopt")
        var raw: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        _ = try Syscall.call("getsockopt", address: peer, detail: option.description) {
            getsockopt(fd, option.level, option.name, &raw, &length)
        }
        return Value(socketOptionInt: raw)
    }
}
