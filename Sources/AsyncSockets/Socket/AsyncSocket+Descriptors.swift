#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CLibeventShim

extension AsyncSocket {
    /// The most descriptors one ``write(_:descriptors:)`` passes (Linux's `SCM_MAX_FD`).
    public static let maximumPassedDescriptors = Int(AS_MAX_PASSED_DESCRIPTORS)

    /// Writes `bytes` and passes `descriptors` along with them to the peer of this unix-domain socket (an
    /// `SCM_RIGHTS` control message; Python's `socket.send_fds`). The peer receives its own duplicates with
    /// ``read(upTo:maxDescriptors:)``; this process's descriptors stay open (close them when you no longer
    /// need them).
    ///
    /// The descriptors travel with the first part of `bytes` the kernel accepts; the rest follows as a plain
    /// write, all under the socket's write side (no other write comes in between).
    ///
    /// - Throws: ``SocketError``: `EOPNOTSUPP` on a socket that is not unix-domain; `EINVAL` when `bytes` is
    ///   empty but `descriptors` is not (a stream needs at least one byte to carry them), for more than
    ///   ``maximumPassedDescriptors``, or (`EBADF`) for a descriptor that is not open; otherwise as
    ///   ``write(_:)-([UInt8])``.
    public func write(_ bytes: [UInt8], descriptors: [Int32]) async throws {
        let operation = "write(_:descriptors:)"
        if descriptors.isEmpty { return try await write(bytes) }
        guard !bytes.isEmpty else {
            throw SocketError.invalidArgument(operation, "passing descriptors needs at least one byte to carry them", address: peer)
        }
        guard descriptors.count <= Self.maximumPassedDescriptors else {
            throw SocketError.invalidArgument(operation, "at most \(Self.maximumPassedDescriptors) descriptors per write, got \(descriptors.count)", address: peer)
        }
        try requireUnixDomain(operation)
        try await lockForCall(.write, operation)
        defer { core.release(.write) }
        var deadline: Deadline?
        while true {
            let fd = core.fd
            guard fd >= 0 else { throw SocketError.closed(operation, address: peer) }
            let result = try Syscall.nonBlocking(operation, address: peer) {
                bytes.withUnsafeBytes { raw in
                    descriptors.withUnsafeBufferPointer { fds in
                        as_send_descriptors(fd, raw.baseAddress, UInt(raw.count), fds.baseAddress, Int32(fds.count))
                    }
                }
            }
            switch result {
            case .processed(let n):
                // The descriptors went with these bytes; the rest is a plain write.
                if n < bytes.count { try await sendAll(operation, bytes[n...]) }
                return
            case .wouldBlock:
                core.markDrained(.write)
                deadline = try await waitForReadiness(.write, operation, deadline: deadline)
            }
        }
    }

    /// Reads at least one and at most `maxBytes` bytes and the descriptors the peer passed with them (Python's
    /// `socket.recv_fds`), on a unix-domain socket.
    ///
    /// Received descriptors are new descriptors of this process, close-on-exec (`MSG_CMSG_CLOEXEC`); the caller
    /// owns them and must close them. A message may carry more than `maxDescriptors`: the ones beyond it are
    /// closed at once (never leaked) and the call throws ``TruncatedDescriptorsError``, which carries the bytes
    /// and the descriptors that were kept.
    ///
    /// Bytes already buffered by ``read(until:maxLength:)`` or ``lines`` are returned first, with no
    /// descriptors: descriptors arrive only through this call (a buffered read that met some closed them, as a
    /// plain `recv` does).
    ///
    /// - Returns: the bytes (empty only at end of stream) and the descriptors received with them.
    /// - Throws: ``TruncatedDescriptorsError``; ``SocketError`` `EOPNOTSUPP` on a socket that is not
    ///   unix-domain, `EINVAL` when `maxBytes` is not positive or `maxDescriptors` is negative; otherwise as
    ///   ``read(upTo:)``.
    public func read(upTo maxBytes: Int, maxDescriptors: Int) async throws -> (bytes: [UInt8], descriptors: [Int32]) {
        let operation = "read(upTo:maxDescriptors:)"
        guard maxBytes > 0 else {
            throw SocketError.invalidArgument(operation, "maxBytes must be positive, got \(maxBytes)", address: peer)
        }
        guard maxDescriptors >= 0 else {
            throw SocketError.invalidArgument(operation, "maxDescriptors must not be negative, got \(maxDescriptors)", address: peer)
        }
        try requireUnixDomain(operation)
        try await lockForCall(.read, operation)
        defer { core.release(.read) }
        if !readAhead.isEmpty { return (readAhead.take(maxBytes), []) }
        let scratch = core.loop.scratch
        let limit = min(maxBytes, scratch.count)
        let room = min(maxDescriptors, Self.maximumPassedDescriptors)
        var descriptors = [Int32](repeating: -1, count: room)
        var received: Int32 = 0
        var dropped: Int32 = 0
        var truncated: Int32 = 0
        var bytes: [UInt8] = []
        var deadline: Deadline?
        while try receiveStep(operation, upTo: limit, { fd in
            let n = descriptors.withUnsafeMutableBufferPointer { fds in
                as_recv_descriptors(fd, scratch.baseAddress, UInt(limit), fds.baseAddress, Int32(room),
                                    &received, &dropped, &truncated)
            }
            if n > 0 { bytes = Array(UnsafeRawBufferPointer(rebasing: scratch[..<n])) }
            return n
        }) == nil {
            deadline = try await waitForReadiness(.read, operation, deadline: deadline)
        }
        descriptors.removeLast(room - Int(received))
        if dropped > 0 || truncated != 0 {
            throw TruncatedDescriptorsError(bytes: bytes, descriptors: descriptors, closed: Int(dropped),
                                            kernelDiscarded: truncated != 0, maxDescriptors: maxDescriptors)
        }
        return (bytes, descriptors)
    }
}

/// The peer passed more descriptors than ``AsyncSocket/read(upTo:maxDescriptors:)`` had room for: the extra
/// ones were closed (none leaked). The read itself succeeded: its bytes and kept descriptors are here.
public struct TruncatedDescriptorsError: Error, Sendable, CustomStringConvertible {
    /// The bytes read.
    public var bytes: [UInt8]
    /// The descriptors kept (at most `maxDescriptors`), close-on-exec, owned by the caller.
    public var descriptors: [Int32]
    /// How many received descriptors beyond `maxDescriptors` this library closed.
    public var closed: Int
    /// Whether the kernel reported `MSG_CTRUNC`: descriptors that did not fit its control buffer, which it
    /// discarded (their number is unknown).
    public var kernelDiscarded: Bool
    /// The `maxDescriptors` of the read.
    public var maxDescriptors: Int

    /// Creates the error.
    public init(bytes: [UInt8], descriptors: [Int32], closed: Int, kernelDiscarded: Bool, maxDescriptors: Int) {
        self.bytes = bytes
        self.descriptors = descriptors
        self.closed = closed
        self.kernelDiscarded = kernelDiscarded
        self.maxDescriptors = maxDescriptors
    }

    /// Says how many descriptors were kept and what happened to the others.
    public var description: String {
        var text = "read(upTo:maxDescriptors: \(maxDescriptors)) received more descriptors than asked for: kept \(descriptors.count)"
        if closed > 0 { text += ", closed \(closed)" }
        if kernelDiscarded { text += ", the kernel discarded more (MSG_CTRUNC)" }
        return text + "; \(bytes.count) bytes read"
    }
}
