/// PEM data: a file to read, or the bytes themselves.
public enum TLSPEM: Sendable, Hashable {
    /// A PEM file on disk, read when the ``TLSContext`` is made.
    case file(String)
    /// PEM text in memory.
    case bytes([UInt8])
}

/// Where certificates that a peer's chain must lead to come from.
public enum TLSTrustRoot: Sendable, Hashable {
    /// The system trust store: OpenSSL's default verify paths, and Debian's
    /// `/etc/ssl/certs/ca-certificates.crt` bundle when it exists (minimal images often have only that).
    case system
    /// Every certificate of a PEM file or PEM bytes.
    case pem(TLSPEM)
}

/// A TLS protocol version.
public enum TLSVersion: Sendable, Hashable, Comparable {
    /// TLS 1.2.
    case tls12
    /// TLS 1.3.
    case tls13

    var wireValue: Int32 {
        switch self {
        case .tls12: return 0x0303
        case .tls13: return 0x0304
        }
    }
}

/// Whether and how the peer's certificate is checked.
public enum TLSVerification: Sendable, Hashable {
    /// No check (servers: no client certificate is asked for). Clients: encryption without authentication.
    case none
    /// Servers: ask for a client certificate and verify it when the client sends one; a client without one
    /// is accepted (``TLSSocket/peerCertificate`` is nil).
    case optional
    /// Verify the peer's certificate against the trust roots; a peer without one fails the handshake.
    case required
}

/// A certificate a server presents to clients that ask for a given name (SNI).
public struct TLSServerName: Sendable, Hashable {
    /// The name, matched case-insensitively; `"*.example.com"` matches any one label in front of
    /// `.example.com`.
    public var name: String
    /// The certificate chain, leaf first.
    public var certificateChain: TLSPEM
    /// The leaf's private key.
    public var privateKey: TLSPEM

    /// Creates the entry.
    public init(_ name: String, certificateChain: TLSPEM, privateKey: TLSPEM) {
        self.name = name
        self.certificateChain = certificateChain
        self.privateKey = privateKey
    }
}

/// What a ``TLSContext`` is made of: the role, versions, verification, trust roots, own certificate,
/// ALPN and shutdown behaviour. Start from ``client(trustRoots:certificateChain:privateKey:alpnProtocols:)``
/// or ``server(certificateChain:privateKey:clientVerification:trustRoots:alpnProtocols:)`` and adjust fields.
public struct TLSConfiguration: Sendable, Hashable {
    /// Which side of the handshake a context plays.
    public enum Role: Sendable, Hashable {
        /// Connects and verifies the server (by default).
        case client
        /// Accepts and presents a certificate.
        case server
    }

    /// Client or server.
    public var role: Role
    /// The lowest version accepted: TLS 1.2 unless changed.
    public var minimumVersion: TLSVersion = .tls12
    /// The highest version offered; nil: the highest OpenSSL supports (TLS 1.3).
    public var maximumVersion: TLSVersion?
    /// How the peer's certificate is checked: ``TLSVerification/required`` for clients by default,
    /// ``TLSVerification/none`` for servers.
    public var certificateVerification: TLSVerification
    /// Clients: also check that the server's certificate is for the name (or IP address) connected to.
    /// On by default; it needs ``TLSVerification/required``.
    public var verifiesHostName = true
    /// The certificates a peer's chain must lead to.
    public var trustRoots: [TLSTrustRoot]
    /// The certificate chain this side presents (leaf first): required for servers, optional for clients
    /// (mutual TLS).
    public var certificateChain: TLSPEM?
    /// The private key of ``certificateChain``'s leaf.
    public var privateKey: TLSPEM?
    /// Application protocols (ALPN), most preferred first, such as `["h2", "http/1.1"]`. Servers pick the
    /// first of theirs the client offers; with no overlap the handshake goes on without ALPN.
    public var alpnProtocols: [String]
    /// Servers: other certificates, chosen by the name a client asks for (SNI); clients asking for another
    /// name, or none, get ``certificateChain``.
    public var serverNames: [TLSServerName] = []
    /// Accept the end of the stream without the peer's `close_notify` as a clean end. Off by default:
    /// such a read throws ``TLSError/Kind/truncated``, since an attacker can cut a connection short.
    /// Turn it on for protocols that frame their own messages (HTTP with Content-Length, for example).
    public var allowsTruncation = false
    /// How long ``TLSSocket/close()`` waits to send `close_notify` before closing anyway.
    public var closeTimeout: Duration = .seconds(1)

    /// A client configuration: verifies the server's certificate and host name against `trustRoots`.
    ///
    /// - Parameters:
    ///   - trustRoots: where the server's chain must lead; the system trust store by default.
    ///   - certificateChain: a client certificate for mutual TLS (with `privateKey`).
    ///   - privateKey: the key of `certificateChain`'s leaf.
    ///   - alpnProtocols: application protocols to offer.
    public static func client(trustRoots: [TLSTrustRoot] = [.system], certificateChain: TLSPEM? = nil,
                              privateKey: TLSPEM? = nil, alpnProtocols: [String] = []) -> TLSConfiguration {
        TLSConfiguration(role: .client, certificateVerification: .required, trustRoots: trustRoots,
                         certificateChain: certificateChain, privateKey: privateKey, alpnProtocols: alpnProtocols)
    }

    /// A server configuration presenting `certificateChain`.
    ///
    /// - Parameters:
    ///   - certificateChain: the server's chain, leaf first.
    ///   - privateKey: the leaf's private key.
    ///   - clientVerification: whether to ask clients for certificates (``TLSVerification/none`` by default).
    ///   - trustRoots: where client chains must lead, when verified.
    ///   - alpnProtocols: application protocols the server speaks, most preferred first.
    public static func server(certificateChain: TLSPEM, privateKey: TLSPEM,
                              clientVerification: TLSVerification = .none, trustRoots: [TLSTrustRoot] = [],
                              alpnProtocols: [String] = []) -> TLSConfiguration {
        TLSConfiguration(role: .server, certificateVerification: clientVerification, trustRoots: trustRoots,
                         certificateChain: certificateChain, privateKey: privateKey, alpnProtocols: alpnProtocols)
    }

    init(role: Role, certificateVerification: TLSVerification, trustRoots: [TLSTrustRoot],
         certificateChain: TLSPEM?, privateKey: TLSPEM?, alpnProtocols: [String]) {
        self.role = role
        self.certificateVerification = certificateVerification
        self.trustRoots = trustRoots
        self.certificateChain = certificateChain
        self.privateKey = privateKey
        self.alpnProtocols = alpnProtocols
    }
}
