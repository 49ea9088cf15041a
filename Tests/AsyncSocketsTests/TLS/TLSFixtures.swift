@testable import AsyncSockets
import AsyncSocketsTLS
import Foundation
import Testing

/// Certificates made once per test run with the `openssl` command in a temporary directory: a CA, a server
/// certificate for `localhost` (+ IP SANs 127.0.0.1 and ::1), a client certificate, an expired one, a
/// wrong-host one, one for SNI (`other.test`) and a self-signed one from no known CA.
struct TLSCertificates: Sendable {
    let directory: String

    func path(_ name: String) -> String { "\(directory)/\(name)" }
    var ca: String { path("ca.pem") }

    /// The chain and key of a certificate made by ``TLSFixtures/certificates()``.
    func identity(_ name: String) -> (chain: TLSPEM, key: TLSPEM) {
        (.file(path("\(name).pem")), .file(path("\(name).key")))
    }
}

enum TLSFixtures {
    private static let made = Task<TLSCertificates, any Error> { try await make() }

    static func certificates() async throws -> TLSCertificates { try await made.value }

    private static func openssl(_ arguments: [String]) async throws {
        let result = try await ServerTesting.run("openssl", arguments, limit: .seconds(30))
        if result.status != 0 {
            throw CoreFixtures.Failure("openssl \(arguments.joined(separator: " ")) failed: \(result.stderr)")
        }
    }

    private static func make() async throws -> TLSCertificates {
        // Directories left by earlier runs (their process is gone) are removed: nothing cleans up at exit.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory())) ?? []
        where name.hasPrefix("asyncsockets-tls-") {
            if let pid = Int32(name.dropFirst("asyncsockets-tls-".count)), kill(pid, 0) != 0, errno == ESRCH {
                try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + name)
            }
        }
        let directory = NSTemporaryDirectory() + "asyncsockets-tls-\(getpid())"
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let certificates = TLSCertificates(directory: directory)
        let p = certificates.path
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try await openssl(["req", "-x509"] + ec + ["-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "2",
                                                   "-subj", "/CN=AsyncSockets Test CA"])
        try await openssl(["req", "-x509"] + ec + ["-keyout", p("rogue.key"), "-out", p("rogue.pem"), "-days", "2",
                                                   "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        func leaf(_ name: String, _ subject: String, _ san: String?, days: String = "2") async throws {
            try await openssl(["req"] + ec + ["-keyout", p("\(name).key"), "-out", p("\(name).csr"), "-subj", subject])
            var extensions = "basicConstraints=CA:FALSE\n"
            if let san { extensions += "subjectAltName=\(san)\n" }
            try extensions.write(toFile: p("\(name).ext"), atomically: true, encoding: .utf8)
            try await openssl(["x509", "-req", "-in", p("\(name).csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
                               "-CAcreateserial", "-out", p("\(name).pem"), "-days", days, "-extfile", p("\(name).ext")])
        }
        try await leaf("server", "/CN=localhost", "DNS:localhost,IP:127.0.0.1,IP:::1")
        try await leaf("client", "/CN=test client", nil)
        try await leaf("expired", "/CN=localhost", "DNS:localhost,IP:127.0.0.1", days: "-1")
        try await leaf("wronghost", "/CN=wrong.example", "DNS:wrong.example")
        try await leaf("other", "/CN=other.test", "DNS:other.test")
        return certificates
    }

    /// A server context presenting certificate `name` (default `server`).
    static func serverContext(_ name: String = "server", _ adjust: (inout TLSConfiguration) -> Void = { _ in })
        async throws -> TLSContext {
        let certificates = try await certificates()
        let (chain, key) = certificates.identity(name)
        var configuration = TLSConfiguration.server(certificateChain: chain, privateKey: key)
        adjust(&configuration)
        return try TLSContext(configuration)
    }

    /// A client context trusting the test CA only.
    static func clientContext(_ adjust: (inout TLSConfiguration) -> Void = { _ in }) async throws -> TLSContext {
        let certificates = try await certificates()
        var configuration = TLSConfiguration.client(trustRoots: [.pem(.file(certificates.ca))])
        adjust(&configuration)
        return try TLSContext(configuration)
    }

    /// A TLS server on 127.0.0.1 running `handler` for each client; stop it with `server.close()` then
    /// `try await task.value`.
    static func startServer(_ context: TLSContext, host: String = "127.0.0.1", handshakeTimeout: Duration? = .seconds(10),
                            onError: (@Sendable (any Error, AsyncSocket) -> Void)? = nil, group: EventLoopGroup = .shared,
                            _ handler: @escaping @Sendable (isolated TLSSocket) async throws -> Void) throws
        -> (server: AsyncServer, task: Task<Void, any Error>) {
        let server = try AsyncServer(host: host, port: 0, family: host.contains(":") ? .ipv6 : .ipv4, group: group)
        let task = Task {
            try await server.serveTLS(context: context, handshakeTimeout: handshakeTimeout, onError: onError, handler: handler)
        }
        return (server, task)
    }

    /// Echoes until the end of the stream.
    @Sendable static func echo(_ tls: isolated TLSSocket) async throws {
        while true {
            let bytes = try await tls.read(upTo: 65536)
            if bytes.isEmpty { return }
            try await tls.write(bytes)
        }
    }

    static func port(_ server: AsyncServer) -> UInt16 { server.localAddress.port! }

    /// The error `body` throws (fails the test if it throws none).
    static func error(_ body: () async throws -> Void) async -> (any Error)? {
        do {
            try await body()
            Issue.record("expected an error")
            return nil
        } catch {
            return error
        }
    }
}
