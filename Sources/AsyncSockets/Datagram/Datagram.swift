/// One datagram received by a ``DatagramSocket``: its bytes, who sent it, and whether it was cut short.
///
/// A zero-length datagram is a datagram like any other (``bytes`` is empty): datagram sockets have no end of
/// stream.
public struct Datagram: Sendable, Hashable, CustomStringConvertible {
    /// The datagram's bytes: all of them, or the first `maxSize` when ``isTruncated``.
    public var bytes: [UInt8]
    /// The sender's address; `nil` when the sender has none (an unbound unix datagram socket, or one end of
    /// ``DatagramSocket/pair(on:)``).
    public var sender: SocketAddress?
    /// Whether the datagram was longer than the `maxSize` it was received with: only the first `maxSize`
    /// bytes are in ``bytes``, the rest is lost (the kernel's `MSG_TRUNC`). Never silent.
    public var isTruncated: Bool

    /// Creates a datagram value (for tests and for forwarding).
    public init(bytes: [UInt8], sender: SocketAddress?, isTruncated: Bool = false) {
        self.bytes = bytes
        self.sender = sender
        self.isTruncated = isTruncated
    }

    /// `"12 bytes from 127.0.0.1:5353"`, with `" (truncated)"` when cut short.
    public var description: String {
        var text = "\(bytes.count) bytes"
        if let sender { text += " from \(sender)" }
        if isTruncated { text += " (truncated)" }
        return text
    }
}
