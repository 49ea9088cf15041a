import Foundation
import Testing
@testable import AsyncSockets

private typealias T = ServerTesting

/// Issue 11 item 6: internationalised host names are IDNA-encoded as Python's `socket` module does.
@Suite struct IDNATests {
    /// RFC 3492 section 7.1's sample strings (A, B, C, L, P, S) and two more, both ways.
    @Test func punycodeVectors() {
        let vectors: [(String, String)] = [
            ("\u{644}\u{64A}\u{647}\u{645}\u{627}\u{628}\u{62A}\u{643}\u{644}\u{645}\u{648}\u{634}\u{639}\u{631}\u{628}\u{64A}\u{61F}",
             "egbpdaj6bu4bxfgehfvwxn"),
            ("\u{4ED6}\u{4EEC}\u{4E3A}\u{4EC0}\u{4E48}\u{4E0D}\u{8BF4}\u{4E2D}\u{6587}", "ihqwcrb4cv8a8dqg056pqjye"),
            ("\u{4ED6}\u{5011}\u{7232}\u{4EC0}\u{9EBD}\u{4E0D}\u{8AAA}\u{4E2D}\u{6587}", "ihqwctvzc91f659drss3x8bo0yb"),
            ("3\u{5E74}B\u{7D44}\u{91D1}\u{516B}\u{5148}\u{751F}", "3B-ww4c5e180e575a65lsy2b"),
            ("Maji\u{3067}Koi\u{3059}\u{308B}5\u{79D2}\u{524D}", "MajiKoi5-783gue6qz075azm5e"),
            ("-> $1.00 <-", "-> $1.00 <--"),
            ("bücher", "bcher-kva"),
            ("München-Ost", "Mnchen-Ost-9db"),
        ]
        for (unicode, encoded) in vectors {
            #expect(Punycode.encode(Array(unicode.unicodeScalars)) == encoded, "\(unicode)")
            #expect(Punycode.decode(encoded).map { String(String.UnicodeScalarView($0)) } == unicode, "\(encoded)")
        }
        #expect(Punycode.decode("bcher-kv!") == nil)
        #expect(Punycode.decode("99999999999999") == nil, "overflow")
    }

    @Test func hostEncoding() throws {
        #expect(try IDNA.encode("bücher.example") == "xn--bcher-kva.example")
        #expect(try IDNA.encode("BÜCHER.Example") == "xn--bcher-kva.Example")  // ASCII labels keep their case
        #expect(try IDNA.encode("Bu\u{308}cher.example") == "xn--bcher-kva.example")  // composed first
        #expect(try IDNA.encode("straße.de") == "strasse.de")
        #expect(try IDNA.encode("exa\u{AD}mple.com") == "example.com")
        #expect(try IDNA.encode("bücher。example") == "xn--bcher-kva.example")
        #expect(try IDNA.encode("bücher.example.") == "xn--bcher-kva.example.")
        #expect(try IDNA.encode("example.com") == "example.com")
        #expect(try IDNA.encode("") == "")
        #expect(throws: IDNA.Failure.self) { try IDNA.encode("bücher..example") }
        #expect(throws: IDNA.Failure.self) { try IDNA.encode(String(repeating: "ü", count: 64) + ".example") }
    }

    /// The same encoding as Python's `idna` codec, for names of several scripts.
    @Test func sameAsPython() async throws {
        let names = ["bücher.example", "BÜCHER.Example", "Bu\u{308}cher.example", "straße.de", "exa\u{AD}mple.com",
                     "пример.испытание", "例え.テスト", "παράδειγμα.δοκιμή", "ÄÖÜ.äöü.de", "ΣΊΣΥΦΟΣ.gr", "café.fr"]
        let script = """
            import sys
            for name in sys.argv[1:]:
                print(name.encode("idna").decode("ascii"))
            """
        let result = try await T.run("python3", ["-c", script] + names, limit: .seconds(30))
        #expect(result.status == 0, "python3: \(result.stderr)")
        let python = result.stdout.split(separator: "\n").map(String.init)
        #expect(python.count == names.count)
        for (name, expected) in zip(names, python) {
            #expect(try IDNA.encode(name) == expected, "\(name)")
        }
    }

    /// A failed lookup names the host as given, and its encoding.
    @Test func errorsNameTheOriginalHost() async throws {
        let error = await caught { _ = try await SystemResolver().resolve(Endpoint(host: "bücher.invalid", port: 80)) }
        #expect((error as? SocketError)?.operation == "resolve")
        #expect(error.map { "\($0)" }?.contains("bücher.invalid:80 (xn--bcher-kva.invalid)") == true, "\(String(describing: error))")
        let bad = await caught { _ = try await AsyncSocket.connect(to: Endpoint(host: "bücher..example", port: 80)) }
        expectSocketError(bad, [EINVAL])
        #expect(bad.map { "\($0)" }?.contains("bücher..example") == true, "\(String(describing: bad))")
    }

    /// End to end: in a private mount namespace whose /etc/hosts maps `xn--bcher-kva.example` to 127.0.0.1,
    /// the EchoClient example connects to `bücher.example` (it failed with ENOENT: getaddrinfo got UTF-8).
    @Test(.enabled(if: getuid() == 0, "needs root for unshare --mount"))
    func internationalNameThroughHostsFile() async throws {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let serving = Task { try await server.serve { client in try await T.echo(client) } }
        let hosts = "/tmp/as-idna-hosts-\(getpid())"
        try "127.0.0.1 localhost\n127.0.0.1 xn--bcher-kva.example\n".write(toFile: hosts, atomically: true, encoding: .utf8)
        defer { unlink(hosts) }
        let client = try ExampleProcess.path("EchoClient")
        let result = try await T.run("unshare", ["--mount", "sh", "-c", "mount --bind \"$1\" /etc/hosts && exec \"$2\" --host \"$3\" --port \"$4\" grüß dich",
                                                 "sh", hosts, client, "bücher.example", String(server.localAddress.port!)], limit: .seconds(30))
        #expect(result.status == 0, "EchoClient: \(result.stderr)")
        #expect(result.stdout == "grüß dich\n", "stdout: \(result.stdout) stderr: \(result.stderr)")
        server.close()
        try await CoreFixtures.value(of: serving, within: .seconds(10))
    }
}
