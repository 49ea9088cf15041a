#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CLibeventShim

/// Who is at the other end of a unix-domain socket: the peer's process, user and group ids as the kernel
/// recorded them when the connection was made (or the pair created).
public struct PeerCredentials: Sendable, Hashable, CustomStringConvertible {
    /// The peer's process id.
    public var pid: Int32
    /// The peer's effective user id.
    public var uid: UInt32
    /// The peer's effective group id.
    public var gid: UInt32

    /// Creates credentials.
    public init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    /// `"pid 123, uid 1000, gid 1000"`.
    public var description: String { "pid \(pid), uid \(uid), gid \(gid)" }
}

extension AsyncSocket {
    /// The credentials of this unix-domain socket's peer: `SO_PEERCRED` on Linux, `getpeereid` and
    /// `LOCAL_PEERPID` on Darwin.
    ///
    /// - Throws: ``SocketError`` `EOPNOTSUPP` for a socket that is not unix-domain (TCP has no such thing),
    ///   `ENOTSUP` on a system without either call, `EBADF` after ``close()``.
    public var peerCredentials: PeerCredentials {
        get throws {
            let operation = "peerCredentials"
            try requireUnixDomain(operation)
            let fd = core.fd
            var pid: Int32 = 0
            var uid: UInt32 = 0
            var gid: UInt32 = 0
            _ = try Syscall.call(operation, address: peer, detail: "SO_PEERCRED") {
                as_peer_credentials(fd, &pid, &uid, &gid)
            }
            return PeerCredentials(pid: pid, uid: uid, gid: gid)
        }
    }
}
