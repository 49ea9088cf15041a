// EchoClient's TLS mode: `--tls [--ca-file PEM] [--server-name NAME]` connects with TLS (Happy Eyeballs, then
// the handshake, verifying the server's certificate and host name), sends, half-closes with close_notify and
// prints the echo. A failed handshake or verification exits 1 with the reason, for example
// `TLS handshake with 127.0.0.1:8443 failed: certificate verify failed: unable to get local issuer certificate`.
//
//   swift run EchoClient --tls --ca-file ca.pem --server-name localhost --port 8443 hello

import AsyncSockets
import AsyncSocketsTLS

/// The value after `flag` on the command line, if present.
func tlsArgument(_ flag: String) -> String? {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: flag), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}

/// Whether `--tls` was given.
var tlsRequested: Bool { CommandLine.arguments.contains("--tls") }

/// The echo exchange over TLS, in the scoped form: the body runs on the connection's event loop, isolated to it,
/// and the connection is closed (close_notify) when the body ends, however it ends.
func runTLS(_ endpoint: Endpoint, _ words: [String]) async throws {
    var configuration = TLSConfiguration.client()
    if let caFile = tlsArgument("--ca-file") { configuration.trustRoots = [.pem(.file(caFile))] }
    try await TLSSocket.withConnection(to: endpoint, context: try TLSContext(configuration),
                                       serverName: tlsArgument("--server-name"), timeout: .seconds(10)) { socket in
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                while true {
                    let bytes = try await socket.read(upTo: 64 * 1024)
                    if bytes.isEmpty { return }
                    writeStdout(bytes)
                }
            }
            if words.isEmpty {
                // Off the loop: `read(2)` on standard input blocks its thread (see forEachStdinChunk).
                try await withTaskExecutorPreference(globalConcurrentExecutor) {
                    try await forEachStdinChunk { chunk in try await socket.write(chunk) }
                }
            } else {
                try await socket.write(words.joined(separator: " ") + "\n")
            }
            try await socket.shutdown(.write)
            try await group.waitForAll()
        }
    }                                               // close_notify (once) and close
}
