#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension SocketAddress {
    /// The address `fd` is bound to (`getsockname(2)`); nil for a family this library does not represent.
    /// - Throws: ``SocketError`` naming `getsockname` and `address` (the address the caller knows the socket by).
    static func local(of fd: Int32, address: SocketAddress? = nil) throws(SocketError) -> SocketAddress? {
        try name("getsockname", address: address) { getsockname(fd, $0, $1) }
    }

    /// The address of `fd`'s peer (`getpeername(2)`); nil for a family this library does not represent.
    /// - Throws: ``SocketError`` naming `getpeername` and `address` (`ENOTCONN` when not connected).
    static func remote(of fd: Int32, address: SocketAddress? = nil) throws(SocketError) -> SocketAddress? {
        try name("getpeername", address: address) { getpeername(fd, $0, $1) }
    }

    private static func name(_ operation: String, address: SocketAddress?,
                             _ call: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32)
        throws(SocketError) -> SocketAddress? {
        var failure: Errno.Code?
        let result = read { pointer, length in
            switch Syscall.attempt({ call(pointer, length) }) {
            case .success: return 0
            case .failure(let code): failure = code; return -1
            }
        }
        if let failure { throw SocketError(code: failure.rawValue, operation: operation, address: address) }
        return result ?? nil
    }
}
