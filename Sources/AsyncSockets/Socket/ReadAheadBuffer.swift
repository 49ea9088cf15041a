/// Bytes a socket has received but no read has returned yet: what ``AsyncSocket/read(until:maxLength:)``
/// and ``AsyncSocket/lines`` read past the end of a record.
///
/// One per socket, touched only by the read that holds the socket's read lock. Every read method takes its
/// bytes from here first, so no byte read ahead is lost or reordered. A socket that never reads by delimiter
/// never fills it: its reads pay one `isEmpty` check (two integer loads) and nothing else.
///
/// The bytes are `storage[start...]`; consuming from the front moves `start`, and the consumed prefix is
/// dropped when it is at least half of the storage (so each byte is moved at most a few times).
struct ReadAheadBuffer {
    private var storage: [UInt8] = []
    private var start = 0

    /// Whether no bytes are buffered.
    @inline(__always)
    var isEmpty: Bool { start == storage.count }

    /// How many bytes are buffered.
    var count: Int { storage.count - start }

    /// A buffer that grew larger than this while reading ahead gives its storage back once emptied, so an
    /// idle connection does not keep a long record's memory.
    static let retainedCapacity = 16 * 1024

    /// Appends bytes just received.
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if start > 0 && start >= storage.count / 2 { compact() }
        storage.append(contentsOf: bytes)
    }

    /// The offset (from the first buffered byte) just past the first occurrence of `delimiter` that ends
    /// within the first `limit` buffered bytes, searching from `from`; nil when there is none.
    func endOfFirst(_ delimiter: [UInt8], from: Int, limit: Int) -> Int? {
        let end = start + min(limit, count)
        let first = delimiter[0]
        var index = start + from
        return storage.withUnsafeBufferPointer { bytes in
            delimiter.withUnsafeBufferPointer { pattern in
                while index + pattern.count <= end {
                    if bytes[index] == first {
                        var matched = 1
                        while matched < pattern.count && bytes[index + matched] == pattern[matched] { matched += 1 }
                        if matched == pattern.count { return index + pattern.count - start }
                    }
                    index += 1
                }
                return nil
            }
        }
    }

    /// Removes and returns the first `count` buffered bytes (at most ``count``).
    mutating func take(_ count: Int) -> [UInt8] {
        let taken = min(count, self.count)
        let bytes = Array(storage[start..<(start + taken)])
        consume(taken)
        return bytes
    }

    /// Removes the first `count` buffered bytes (at most ``count``) and appends them to `buffer`. Like
    /// ``AsyncSocket/read(into:upTo:)``'s direct receive, a buffer with room for a large read (4 KiB or what is
    /// buffered) gets at most what fits in its spare capacity, so a reused buffer is never reallocated.
    mutating func take(_ count: Int, appendingTo buffer: inout [UInt8]) -> Int {
        var taken = min(count, self.count)
        let spare = buffer.capacity - buffer.count
        if spare >= min(taken, AsyncSocket.directReadMinimum) { taken = min(taken, spare) }
        buffer.append(contentsOf: storage[start..<(start + taken)])
        consume(taken)
        return taken
    }

    /// Removes the first `count` buffered bytes (at most ``count``) and returns them as a line of text:
    /// without its final `\n` or `\r\n` when `newline` (they end the line), as they are otherwise.
    mutating func takeLine(_ count: Int, newline: Bool) -> String {
        let taken = min(count, self.count)
        var end = start + taken
        if newline, end > start, storage[end - 1] == UInt8(ascii: "\n") {
            end -= 1
            if end > start, storage[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        }
        let line = String(decoding: storage[start..<end], as: UTF8.self)
        consume(taken)
        return line
    }

    /// Removes and returns every buffered byte.
    mutating func takeAll() -> [UInt8] { take(count) }

    private mutating func consume(_ taken: Int) {
        start += taken
        if start == storage.count {
            storage.removeAll(keepingCapacity: storage.capacity <= Self.retainedCapacity)
            start = 0
        }
    }

    private mutating func compact() {
        storage.removeSubrange(..<start)
        start = 0
    }
}
