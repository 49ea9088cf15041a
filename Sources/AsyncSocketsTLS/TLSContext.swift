import AsyncSockets
internal import CTLSShim

/// A loaded ``TLSConfiguration``: OpenSSL's `SSL_CTX` with its certificates, keys and trust roots read once.
/// Make one per configuration and share it: every connection made with it reuses what it loaded.
public final class TLSContext: @unchecked Sendable {
    // @unchecked Sendable: `pointer` is configured completely in `init` and never changed afterwards; OpenSSL
    // allows an SSL_CTX to be shared by threads once configured (connections take their own reference in C).

    /// What this context was made from.
    public let configuration: TLSConfiguration
    let pointer: OpaquePointer

    /// Loads `configuration`: reads its PEM files and bytes and the system trust store if asked for.
    ///
    /// - Throws: ``TLSError`` of kind ``TLSError/Kind/configuration`` naming what could not be loaded and why.
    public init(_ configuration: TLSConfiguration) throws {
        self.configuration = configuration
        pointer = try Self.make(configuration)
        for entry in configuration.serverNames {
            var sub = configuration
            sub.serverNames = []
            sub.certificateChain = entry.certificateChain
            sub.privateKey = entry.privateKey
            let certificates = try Self.make(sub)
            defer { ats_context_free(certificates) }
            guard ats_context_add_server_name(pointer, entry.name, certificates) != 0 else {
                ats_context_free(pointer)
                throw TLSError(kind: .configuration, operation: "configuration", reason: "out of memory")
            }
        }
    }

    deinit {
        ats_context_free(pointer)
    }

    /// Whether connections made with this context are the server side.
    public var isServer: Bool { configuration.role == .server }

    /// Contexts alive in the process (for leak checks).
    package static var liveCount: Int { ats_live_contexts() }

    private static func make(_ configuration: TLSConfiguration) throws -> OpaquePointer {
        var error = [CChar](repeating: 0, count: 512)
        guard let context = ats_context_new(configuration.role == .server ? 1 : 0, &error, error.count) else {
            throw TLSError(kind: .configuration, operation: "configuration", reason: String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        do {
            try configure(context, configuration)
            return context
        } catch {
            ats_context_free(context)
            throw error
        }
    }

    private static func configure(_ context: OpaquePointer, _ configuration: TLSConfiguration) throws {
        func check(_ ok: Int32) throws {
            if ok == 0 {
                throw TLSError(kind: .configuration, operation: "configuration",
                               reason: String(cString: ats_context_error(context)))
            }
        }
        func fail(_ reason: String) throws -> Never {
            throw TLSError(kind: .configuration, operation: "configuration", reason: reason)
        }
        if let maximum = configuration.maximumVersion, maximum < configuration.minimumVersion {
            try fail("the maximum version \(maximum) is below the minimum \(configuration.minimumVersion)")
        }
        try check(ats_context_set_versions(context, configuration.minimumVersion.wireValue,
                                           configuration.maximumVersion?.wireValue ?? 0))
        let mode: Int32
        switch configuration.certificateVerification {
        case .none: mode = Int32(ATS_VERIFY_NONE)
        case .optional: mode = Int32(ATS_VERIFY_PEER)
        case .required: mode = configuration.role == .server ? Int32(ATS_VERIFY_REQUIRE_PEER) : Int32(ATS_VERIFY_PEER)
        }
        try check(ats_context_set_verify(context, mode))
        if configuration.certificateVerification != .none {
            for root in configuration.trustRoots {
                switch root {
                case .system: try check(ats_context_load_system_roots(context))
                case .pem(.file(let path)): try check(ats_context_load_roots_file(context, path))
                case .pem(.bytes(let bytes)): try check(ats_context_load_roots_pem(context, bytes, bytes.count))
                }
            }
        }
        switch (configuration.certificateChain, configuration.privateKey) {
        case (nil, nil):
            if configuration.role == .server { try fail("a server needs a certificate chain and a private key") }
        case (let chain?, let key?):
            switch chain {
            case .file(let path): try check(ats_context_use_chain_file(context, path))
            case .bytes(let bytes): try check(ats_context_use_chain_pem(context, bytes, bytes.count))
            }
            switch key {
            case .file(let path): try check(ats_context_use_key_file(context, path))
            case .bytes(let bytes): try check(ats_context_use_key_pem(context, bytes, bytes.count))
            }
            try check(ats_context_check_key(context))
        default:
            try fail("a certificate chain needs its private key and a key its chain")
        }
        if !configuration.alpnProtocols.isEmpty {
            var wire: [UInt8] = []
            for name in configuration.alpnProtocols {
                let bytes = Array(name.utf8)
                guard (1...255).contains(bytes.count) else { try fail("ALPN protocol names are 1 to 255 bytes long, got \"\(name)\"") }
                wire.append(UInt8(bytes.count))
                wire += bytes
            }
            try check(ats_context_set_alpn(context, wire, wire.count))
        }
        ats_context_set_ignore_unexpected_eof(context, configuration.allowsTruncation ? 1 : 0)
    }
}
