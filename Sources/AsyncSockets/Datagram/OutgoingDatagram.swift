/// A datagram to send with ``DatagramSocket/send(batch:)``: its bytes and where to (or `nil` for the
/// connected peer).
public struct OutgoingDatagram: Sendable, Hashable {
    /// The bytes to send, as one datagram.
    public var bytes: [UInt8]
    /// The destination; `nil` sends to the peer of a connected socket (see ``DatagramSocket/connect(to:)``).
    public var address: SocketAddress?

    /// A datagram of `bytes` for `address` (`nil`: the connected peer).
    public init(_ bytes: [UInt8], to address: SocketAddress?) {
        self.bytes = bytes
        self.address = address
    }
}
