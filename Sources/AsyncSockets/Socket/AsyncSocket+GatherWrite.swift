#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CLibeventShim

extension AsyncSocket {
    /// Writes every byte of `chunks`, in order, as one write: a gather write (`sendmsg` with an iovec of as many
    /// chunks as `IOV_MAX` allows per call), so a message built from pieces (a header, a body) goes out without
    /// being copied into one array first.
    ///
    /// Like ``write(_:)-([UInt8])``, it holds the socket's write side until the last byte is sent: another
    /// task's writes never come between the chunks. Empty chunks are skipped.
    ///
    /// - Throws: as ``write(_:)-([UInt8])``; when it throws, an unknown prefix of the bytes may have been sent.
    public func write(contentsOf chunks: [[UInt8]]) async throws {
        let operation = "write(contentsOf:)"
        try await lockForCall(.write, operation)
        defer { core.release(.write) }
        var cursor = GatherCursor(chunks: chunks)
        if cursor.isDone { return try requireOpen(operation) }
        var vectors: [iovec] = []
        vectors.reserveCapacity(min(chunks.count, Self.iovMax))
        try gatherStep(&cursor, &vectors, operation)
        var deadline: Deadline?
        while !cursor.isDone {
            deadline = try await waitForReadiness(.write, operation, deadline: deadline)
            let before = cursor.position
            try gatherStep(&cursor, &vectors, operation)
            if cursor.position != before { deadline = nil }  // progress: the timeout counts from here again
        }
    }

    /// The most iovec entries one `sendmsg` takes (`IOV_MAX`, 1024 on Linux).
    static let iovMax = Int(as_iov_max())

    /// Sends from the cursor until every chunk is sent or the socket is full. Synchronous: the iovec's
    /// pointers are taken and used in this one step.
    private func gatherStep(_ cursor: inout GatherCursor, _ vectors: inout [iovec], _ operation: String) throws {
        while !cursor.isDone {
            let fd = core.fd
            guard fd >= 0 else { throw SocketError.closed(operation, address: peer) }
            cursor.fill(&vectors, limit: Self.iovMax)
            let result = try Syscall.nonBlocking(operation, address: peer) {
                vectors.withUnsafeBufferPointer { as_sendmsg_iov(fd, $0.baseAddress, Int32($0.count)) }
            }
            guard case .processed(let n) = result else {
                core.markDrained(.write)
                return
            }
            cursor.advance(by: n)
        }
    }
}

/// Where a gather write stands: the chunk and the offset in it of the next byte to send.
struct GatherCursor {
    let chunks: [[UInt8]]
    private(set) var chunk = 0
    private(set) var offset = 0
    /// Bytes sent so far (for progress checks).
    private(set) var position = 0

    init(chunks: [[UInt8]]) {
        self.chunks = chunks
        skipEmpty()
    }

    var isDone: Bool { chunk == chunks.count }

    /// Replaces `vectors` with the iovecs of the next (at most `limit`) unsent chunks.
    ///
    /// The pointers outlive the `withUnsafeBytes` calls that produced them, which is sound here: `chunks` is an
    /// immutable `let` that keeps every array's storage alive and unchanged, and a `[UInt8]` is always native
    /// contiguous storage (never bridged), so `withUnsafeBytes` hands out the address of that storage itself,
    /// not of a temporary copy. The iovecs are used by the `sendmsg` of the same synchronous step, then replaced.
    func fill(_ vectors: inout [iovec], limit: Int) {
        vectors.removeAll(keepingCapacity: true)
        var index = chunk
        var skip = offset
        while index < chunks.count && vectors.count < limit {
            let bytes = chunks[index]
            if bytes.count > skip {
                bytes.withUnsafeBytes { raw in
                    vectors.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: raw.baseAddress! + skip),
                                         iov_len: raw.count - skip))
                }
            }
            skip = 0
            index += 1
        }
    }

    /// Moves past `count` sent bytes.
    mutating func advance(by count: Int) {
        position += count
        var remaining = count
        while remaining > 0 && chunk < chunks.count {
            let left = chunks[chunk].count - offset
            if remaining < left {
                offset += remaining
                return
            }
            remaining -= left
            chunk += 1
            offset = 0
        }
        skipEmpty()
    }

    private mutating func skipEmpty() {
        while chunk < chunks.count && chunks[chunk].count == offset {
            chunk += 1
            offset = 0
        }
    }
}
