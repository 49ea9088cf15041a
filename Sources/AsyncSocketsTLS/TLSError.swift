import AsyncSockets

/// A TLS failure, in words a person can act on: the operation, the peer, the expected host name and
/// OpenSSL's reason, for example
/// `TLS handshake with 127.0.0.1:8443 failed: certificate verify failed: unable to get local issuer certificate`.
///
/// Socket failures underneath (a reset, a timeout, a closed socket) are `SocketError`s, as on `AsyncSocket`.
public struct TLSError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure.
    public enum Kind: Sendable, Hashable {
        /// The handshake failed (protocol or version mismatch, the peer's alert, the peer closing it).
        case handshakeFailed
        /// The peer's certificate did not verify (see ``TLSError/verificationError``).
        case certificateVerificationFailed
        /// The stream ended without the peer's `close_notify` (see ``TLSConfiguration/allowsTruncation``).
        case truncated
        /// A TLS failure after the handshake (a bad record, the peer's alert).
        case protocolFailure
        /// The configuration could not be loaded (a missing file, a bad PEM, a key that does not match).
        case configuration
    }

    /// What kind of failure.
    public var kind: Kind
    /// The operation: `"TLS handshake"`, `"read"`, `"write"`, `"close_notify"` or `"configuration"`.
    public var operation: String
    /// The peer, when known.
    public var address: SocketAddress?
    /// The host name the peer's certificate was checked against, when one was.
    public var serverName: String?
    /// OpenSSL's reason, such as `"certificate verify failed"`.
    public var reason: String
    /// For verification failures, `X509_verify_cert_error_string`'s text, such as
    /// `"unable to get local issuer certificate"`.
    public var verificationError: String?

    /// Creates an error.
    public init(kind: Kind, operation: String, address: SocketAddress? = nil, serverName: String? = nil,
                reason: String, verificationError: String? = nil) {
        self.kind = kind
        self.operation = operation
        self.address = address
        self.serverName = serverName
        self.reason = reason
        self.verificationError = verificationError
    }

    /// `"<operation> with <address> failed: <reason>[: <verification error>][ (host name <name>)]"`.
    public var description: String {
        var text = operation
        if let address { text += " with \(address)" }
        text += " failed: \(reason)"
        if let verificationError { text += ": \(verificationError)" }
        if kind == .certificateVerificationFailed, let serverName { text += " (checking the certificate for host name \(serverName))" }
        return text
    }
}
