#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An address family: Python's `AF_INET`, `AF_INET6` and `AF_UNIX`.
public enum SocketFamily: Sendable, Hashable, CustomStringConvertible {
    /// IPv4 (`AF_INET`).
    case ipv4
    /// IPv6 (`AF_INET6`).
    case ipv6
    /// Unix-domain stream sockets (`AF_UNIX`).
    case unix

    /// `"IPv4"`, `"IPv6"` or `"unix"`.
    public var description: String {
        switch self {
        case .ipv4: return "IPv4"
        case .ipv6: return "IPv6"
        case .unix: return "unix"
        }
    }

    var rawValue: Int32 {
        switch self {
        case .ipv4: return AF_INET
        case .ipv6: return AF_INET6
        case .unix: return AF_UNIX
        }
    }
}
