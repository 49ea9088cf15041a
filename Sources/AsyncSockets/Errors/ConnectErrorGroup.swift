/// Every attempt of ``AsyncSocket/connect(to:timeout:sourceAddress:allErrors:happyEyeballsDelay:resolver:multipath:)``
/// failed, and `allErrors` was true: one error per attempted address, in attempt order.
///
/// Python's `ExceptionGroup` from `socket.create_connection(..., all_errors=True)`. Each element is usually a
/// ``SocketError`` whose ``SocketError/address`` names the address that attempt targeted.
public struct ConnectErrorGroup: Error, Sendable, CustomStringConvertible {
    /// The attempts' errors, in the order the attempts started.
    public var errors: [any Error]
    /// The endpoint that was being connected to, when known.
    public var endpoint: Endpoint?

    /// Creates a group from the attempts' errors, in attempt order.
    public init(errors: [any Error], endpoint: Endpoint? = nil) {
        self.errors = errors
        self.endpoint = endpoint
    }

    /// A header line, then one indented line per attempt.
    public var description: String {
        var text = "all \(errors.count) connection attempt\(errors.count == 1 ? "" : "s")"
        if let endpoint { text += " to \(endpoint)" }
        text += " failed:"
        for (index, error) in errors.enumerated() {
            text += "\n  \(index + 1). \(error)"
        }
        return text
    }
}
