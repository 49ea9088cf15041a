#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CLibeventShim

/// Creating stream sockets that may run Multipath TCP (RFC 8684).
enum StreamSocket {
    /// A new non-blocking, close-on-exec stream socket of `family`: with `IPPROTO_MPTCP` when `multipath` is
    /// set and the family is IPv4 or IPv6, unless the kernel refuses it (`ENOPROTOOPT`, `EPROTONOSUPPORT`,
    /// `EINVAL`: MPTCP disabled with `net.mptcp.enabled=0` or not built in), in which case a plain TCP socket,
    /// silently, as Go's `net` package does. `-1` with `errno` set when no socket could be created.
    static func open(family: SocketFamily, multipath: Bool) -> Int32 {
        let type = Int32(SOCK_STREAM.rawValue)
        let mptcp = as_ipproto_mptcp()
        if multipath, family != .unix, mptcp >= 0 {
            switch Syscall.attempt({ as_socket(family.rawValue, type, mptcp) }) {
            case .success(let fd): return fd
            case .failure(let code) where fallbackErrors.contains(code.rawValue): break
            case .failure: return -1
            }
        }
        return as_socket(family.rawValue, type, 0)
    }

    /// The errors with which `socket(2)` says MPTCP is not available.
    static let fallbackErrors: Set<Int32> = [ENOPROTOOPT, EPROTONOSUPPORT, EINVAL]
}

extension AsyncSocket {
    /// Whether this connection really runs Multipath TCP: it was made with `multipath: true` (or accepted by
    /// a multipath ``AsyncServer``), the kernel allowed MPTCP and the peer spoke it too. False for plain TCP,
    /// for an MPTCP socket that fell back to TCP (a peer without MPTCP), for unix-domain sockets and once
    /// closed. Linux's `getsockopt(SOL_MPTCP, MPTCP_INFO)` succeeds exactly then.
    public var isMultipath: Bool {
        let fd = core.fd
        return fd >= 0 && as_is_multipath(fd) != 0
    }
}
