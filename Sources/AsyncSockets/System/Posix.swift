#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The C library's socket calls under their own names, in one place: the only file of the module that names
/// `Glibc.` or `Darwin.` (Swift's own methods `close()`, `bind`, `connect`, `listen` and `shutdown` shadow the
/// C functions inside types, so calls must be qualified somewhere). Calls that differ between platforms
/// (`accept4`, `eventfd`, `MSG_NOSIGNAL` vs `SO_NOSIGPIPE`) live in the C shim (`CLibeventShim`).
///
/// Every call here is raw: it returns what the C function returns and leaves `errno` set. Go through
/// ``Syscall`` to retry `EINTR` and to turn failures into ``SocketError``s.
enum Posix {
    /// The calling thread's `errno`.
    @inline(__always)
    static var errno: Int32 {
        #if canImport(Glibc)
        Glibc.errno
        #else
        Darwin.errno
        #endif
    }

    /// `close(2)`. Never retried on `EINTR`: on Linux the descriptor is released even then, and a retry could
    /// close a descriptor another thread has just been given.
    @inline(__always)
    static func close(_ fd: Int32) -> Int32 {
        #if canImport(Glibc)
        Glibc.close(fd)
        #else
        Darwin.close(fd)
        #endif
    }

    /// `bind(2)`.
    @inline(__always)
    static func bind(_ fd: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> Int32 {
        #if canImport(Glibc)
        Glibc.bind(fd, address, length)
        #else
        Darwin.bind(fd, address, length)
        #endif
    }

    /// `connect(2)`.
    @inline(__always)
    static func connect(_ fd: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> Int32 {
        #if canImport(Glibc)
        Glibc.connect(fd, address, length)
        #else
        Darwin.connect(fd, address, length)
        #endif
    }

    /// `listen(2)`.
    @inline(__always)
    static func listen(_ fd: Int32, _ backlog: Int32) -> Int32 {
        #if canImport(Glibc)
        Glibc.listen(fd, backlog)
        #else
        Darwin.listen(fd, backlog)
        #endif
    }

    /// `shutdown(2)`.
    @inline(__always)
    static func shutdown(_ fd: Int32, _ how: Int32) -> Int32 {
        #if canImport(Glibc)
        Glibc.shutdown(fd, how)
        #else
        Darwin.shutdown(fd, how)
        #endif
    }
}
