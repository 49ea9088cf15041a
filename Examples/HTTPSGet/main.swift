// HTTPSGet: fetches an https:// URL with HTTP/1.1 and prints the status line and headers.
//
// What it shows:
// - `TLSSocket.withConnection(to:context:)`: Happy Eyeballs, then the TLS handshake, verifying the server's certificate
//   against the system trust store and its host name (sent as SNI; an IP address is verified as an address),
//   then the exchange on the connection's event loop, and close_notify on the way out;
// - ALPN (`http/1.1`), the negotiated version, the server's certificate subject;
// - errors in words: `TLS handshake with 93.184.215.14:443 failed: certificate verify failed: ...`.
//
// Run it:
//   swift run HTTPSGet https://example.com/
//   openssl s_server -accept 8443 -www -cert server.pem -key server.key &   (see README)
//   swift run HTTPSGet --ca-file ca.pem https://localhost:8443/
// Exit status: 0 after printing the headers, 1 on an error, 2 on bad arguments.

import AsyncSockets
import AsyncSocketsTLS
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

func fail(_ message: String, status: Int32) -> Never {
    let bytes = Array("HTTPSGet: \(message)\n".utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(status)
}

/// `https://host[:port][/path]` split into its parts (IPv6 hosts in brackets).
func parse(_ url: String) -> (host: String, port: UInt16, path: String)? {
    guard url.hasPrefix("https://") else { return nil }
    let rest = url.dropFirst("https://".count)
    let authority = rest.prefix { $0 != "/" }
    let path = rest.dropFirst(authority.count)
    var host = Substring(authority)
    var port: UInt16 = 443
    if host.hasPrefix("[") {
        guard let close = host.firstIndex(of: "]") else { return nil }
        let after = host[host.index(after: close)...]
        if after.hasPrefix(":") { guard let number = UInt16(after.dropFirst()) else { return nil }; port = number }
        host = host[host.index(after: host.startIndex)..<close]
    } else if let colon = host.lastIndex(of: ":") {
        guard let number = UInt16(host[host.index(after: colon)...]) else { return nil }
        port = number
        host = host[..<colon]
    }
    guard !host.isEmpty else { return nil }
    return (String(host), port, path.isEmpty ? "/" : String(path))
}

func main() async -> Int32 {
    var arguments = Array(CommandLine.arguments.dropFirst())
    var configuration = TLSConfiguration.client(alpnProtocols: ["http/1.1"])
    if let index = arguments.firstIndex(of: "--ca-file") {
        guard index + 1 < arguments.count else { fail("--ca-file needs a value", status: 2) }
        configuration.trustRoots = [.system, .pem(.file(arguments[index + 1]))]
        arguments.removeSubrange(index...(index + 1))
    }
    guard arguments.count == 1, let (host, port, path) = parse(arguments[0]) else {
        fail("usage: HTTPSGet [--ca-file PEM] https://host[:port][/path]", status: 2)
    }
    do {
        let hostHeader = host.contains(":") ? "[\(host)]" : host
        // The scoped form: connect, handshake, run the closure on the connection's event loop (every call in it is
        // a plain call, no thread hop), then close (close_notify) on every way out.
        try await TLSSocket.withConnection(to: Endpoint(host: host, port: port),
                                           context: try TLSContext(configuration), timeout: .seconds(15)) { socket in
            try await socket.write("GET \(path) HTTP/1.1\r\nHost: \(hostHeader)\r\nConnection: close\r\nUser-Agent: HTTPSGet\r\n\r\n")
            // Read until the end of the headers (an empty line).
            var received: [UInt8] = []
            let end = Array("\r\n\r\n".utf8)
            while received.firstRange(of: end) == nil {
                let bytes = try await socket.read(upTo: 16 * 1024)
                if bytes.isEmpty { break }
                received += bytes
                if received.count > 1 << 20 { fail("the headers are larger than 1 MiB", status: 1) }
            }
            let headers = received.firstRange(of: end).map { received[..<$0.lowerBound] } ?? received[...]
            print("# \(socket.protocolVersion), ALPN \(socket.alpnProtocol ?? "none"), certificate \(socket.peerCertificate?.subject ?? "none")")
            print(String(decoding: headers, as: UTF8.self).replacingCRLF())
        }
        return 0
    } catch {
        fail("\(error)", status: 1)
    }
}

extension String {
    /// Lines separated by `\n` instead of `\r\n`.
    func replacingCRLF() -> String {
        split(separator: "\r\n", omittingEmptySubsequences: false).joined(separator: "\n")
    }
}

exit(await main())
