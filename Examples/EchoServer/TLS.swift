// EchoServer's TLS mode: `--tls-certificate PEM --tls-key PEM` serves the same echo over TLS
// (AsyncSocketsTLS; each client's handshake runs in its own child task, bounded by a timeout).
//
//   swift run EchoServer --port 8443 --tls-certificate server.pem --tls-key server.key
//   openssl s_client -connect 127.0.0.1:8443 -quiet        (or: swift run EchoClient --tls ...)

import AsyncSockets
import AsyncSocketsTLS
import ExampleSupport

/// The value after `flag` on the command line, if present.
func tlsArgument(_ flag: String) -> String? {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: flag), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}

/// The server context when `--tls-certificate` and `--tls-key` are given, else nil (plain TCP).
func tlsContext() -> TLSContext? {
    let certificate = tlsArgument("--tls-certificate")
    let key = tlsArgument("--tls-key")
    guard certificate != nil || key != nil else { return nil }
    guard let certificate, let key else { fail("--tls-certificate and --tls-key go together") }
    do {
        return try TLSContext(.server(certificateChain: .file(certificate), privateKey: .file(key)))
    } catch {
        fail("\(error)")
    }
}

/// Failed handshakes and connections, one line each on stdout: queued, never written on the event loop.
let handshakeLog = Logger(descriptor: 1)

/// Serves the echo over TLS until the server is closed.
func serveTLS(_ server: AsyncServer, _ context: TLSContext) async throws {
    try await server.serveTLS(context: context, onError: { error, _ in handshakeLog.log("client: \(error)") }) { client in
        var buffer: [UInt8] = []
        buffer.reserveCapacity(64 * 1024)
        while true {
            buffer.removeAll(keepingCapacity: true)
            let count = try await client.read(into: &buffer, upTo: 64 * 1024)
            if count == 0 { return }
            try await client.write(buffer)
        }
    }
    await handshakeLog.finish()
}
