import Foundation
import Testing
@testable import AsyncSockets

// The README's API tour, compiled and run.
//
// Every region between `// snippet: NAME` and `// end snippet` is the code of the README block that follows
// `<!-- snippet: NAME -->`, line for line (after removing the region's indentation, and dropping lines that
// end in `// test-only`). `readmeSnippetsMatch` fails when the two drift apart: edit both together.

@Suite struct ReadmeExampleTests {
    @Test func connectAndReadWrite() async throws { try await withDescriptorCheck {
        try await withReadmeEchoServer { port in
            var connected = false
            // snippet: connect
            try await AsyncSocket.withConnection(to: Endpoint(host: "localhost", port: port)) { socket in
                print("connected to", try socket.remoteAddress)
                #expect(try socket.remoteAddress.port == port) // test-only
                #expect(socket.eventLoop.inLoop) // test-only
                connected = true // test-only
            }                                                   // closed here, also after an error or a cancellation
            // end snippet
            #expect(connected)

            var echoed: [[UInt8]] = []
            // snippet: read-write
            try await AsyncSocket.withConnection(to: Endpoint(host: "localhost", port: port)) { socket in
                try await socket.write("hello\n")                // all of it, like sendall
                let line = try await socket.read(exactly: 6)    // waits for exactly 6 bytes
                try socket.shutdown(.write)                     // half-close: the server reads end of stream
                let rest = try await socket.read(upTo: 65536)   // [] means the peer closed its side
                echoed = [line, rest] // test-only
            }
            // end snippet
            #expect(echoed == [Array("hello\n".utf8), []])
        }
    } }

    @Test func serve() async throws { try await withDescriptorCheck {
        let (servers, announce) = AsyncStream.makeStream(of: AsyncServer.self)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                // snippet: serve
                let server = try AsyncServer(host: "127.0.0.1", port: 0)
                print("listening on", server.localAddress)
                announce.yield(server) // test-only
                try await server.serve { client in                  // a child task per client
                    var buffer: [UInt8] = []
                    while try await client.read(into: &buffer, upTo: 65536) > 0 {
                        try await client.write(buffer)
                        buffer.removeAll(keepingCapacity: true)
                    }
                }                                                   // returns after server.close()
                // end snippet
            }
            for await server in servers {
                let client = try await AsyncSocket.connect(to: server.localAddress, timeout: .seconds(30))
                try await client.write("echo me")
                #expect(try await client.read(exactly: 7) == Array("echo me".utf8))
                await client.close()
                server.close()
                break
            }
            try await group.waitForAll()
        }
    } }

    @Test func pair() async throws { try await withDescriptorCheck {
        // snippet: pair
        let (left, right) = try AsyncSocket.pair()        // socketpair(AF_UNIX, SOCK_STREAM)
        try await left.write("ping")
        let ping = try await right.read(exactly: 4)
        await left.close()
        let end = try await right.read(upTo: 100)          // []: end of stream
        // end snippet
        #expect(ping == Array("ping".utf8))
        #expect(end == [])
        await right.close()
    } }

    @Test func datagrams() async throws { try await withDescriptorCheck {
        // snippet: datagrams
        let server = try DatagramSocket.bind(host: "127.0.0.1", port: 0)      // UDP
        let client = try DatagramSocket.unbound()
        try await client.send(Array("ping".utf8), to: try await server.localAddress)
        let datagram = try await server.receive()          // bytes, sender, isTruncated
        try await server.send(datagram.bytes, to: datagram.sender!)
        let reply = try await client.receive(maxSize: 1500)
        await client.close()
        // end snippet
        #expect(reply.bytes == Array("ping".utf8))
        #expect(!reply.isTruncated)
        await server.close()
    } }

    @Test func errors() async throws { try await withDescriptorCheck {
        let closedPort = try readmeClosedPort()
        var messages: [String] = []
        // snippet: errors
        do {
            _ = try await AsyncSocket.connect(to: Endpoint(host: "127.0.0.1", port: closedPort))
        } catch let error as SocketError {
            print(error)      // connect to 127.0.0.1:PORT failed: Connection refused (ECONNREFUSED)
            print(error.codeName, error.operation, error.address!)   // ECONNREFUSED connect 127.0.0.1:PORT
            messages.append("\(error)") // test-only
            #expect(error.codeName == "ECONNREFUSED") // test-only
        }
        do {
            _ = try await AsyncSocket.connect(to: Endpoint(host: "localhost", port: closedPort), allErrors: true)
        } catch let group as ConnectErrorGroup {
            for error in group.errors { print(error) }     // one error per address tried
            #expect(!group.errors.isEmpty) // test-only
        }
        // end snippet
        #expect(messages == ["connect to 127.0.0.1:\(closedPort) failed: Connection refused (ECONNREFUSED)"])
    } }

    @Test func timeouts() async throws { try await withDescriptorCheck {
        try await withReadmeEchoServer { port in
            var timedOut = false
            // snippet: timeouts
            try await AsyncSocket.withConnection(to: Endpoint(host: "127.0.0.1", port: port),
                                                 timeout: .seconds(5)) { socket in  // bounds the connect, then each read and write
                #expect(socket.timeout == .seconds(5)) // test-only
                socket.timeout = .milliseconds(200)     // change it at any time; nil waits forever
                do {
                    _ = try await socket.read(upTo: 1024)       // nothing arrives
                } catch let error as SocketError where error.isTimeout {
                    print(error)    // read from 127.0.0.1:PORT failed: Connection timed out (ETIMEDOUT): no progress within 0.2 seconds
                    timedOut = true // test-only
                }
            }
            // end snippet
            #expect(timedOut)
        }
    } }

    @Test func cancellation() async throws { try await withDescriptorCheck {
        let (socket, peer) = try AsyncSocket.pair()
        var cancelled = false
        // snippet: cancellation
        let reader = Task { try await socket.read(upTo: 1024) }
        reader.cancel()                                    // the waiting read throws CancellationError at once
        do {
            _ = try await reader.value
        } catch is CancellationError {
            print("cancelled; the socket is still usable")
            cancelled = true // test-only
        }
        // end snippet
        #expect(cancelled)
        try await peer.write("still usable")
        #expect(try await socket.read(exactly: 12) == Array("still usable".utf8))
        await socket.close()
        await peer.close()
    } }

    @Test func linesAndRecords() async throws { try await withDescriptorCheck {
        // snippet: lines
        let (client, peer) = try AsyncSocket.pair()
        try await client.write("GET / HTTP/1.0\r\nHost: example\r\n\r\nbody")
        let head = try await peer.read(until: Array("\r\n\r\n".utf8))   // through the blank line
        let body = try await peer.read(upTo: 100)                         // "body": buffered bytes first
        try await client.write("one\r\ntwo\nthree")
        try await client.shutdown(.write)
        for try await line in peer.lines { print(line) }                  // one, two, three
        // end snippet
        #expect(head == Array("GET / HTTP/1.0\r\nHost: example\r\n\r\n".utf8))
        #expect(body == Array("body".utf8))
        await client.close()
        await peer.close()
    } }

    /// The README's snippets are the code above, line for line.
    @Test func readmeSnippetsMatch() throws {
        let testsFile = URL(fileURLWithPath: #filePath)
        let root = testsFile.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let source = try String(contentsOf: testsFile, encoding: .utf8)
        let snippets = testSnippets(in: source)
        #expect(snippets.count == 9)
        for (name, lines) in snippets {
            let block = readmeBlock(named: name, in: readme)
            #expect(block != nil, "README.md has no ```swift block after <!-- snippet: \(name) -->")
            if let block { #expect(block == lines, "README snippet \(name) differs from ReadmeExampleTests") }
        }
    }
}

// MARK: - Helpers

/// Runs `body` with the port of an echo server on 127.0.0.1, then closes the server and waits for `serve`.
private func withReadmeEchoServer(_ body: (UInt16) async throws -> Void) async throws {
    let server = try AsyncServer(host: "127.0.0.1", port: 0)
    async let served: Void = server.serve { client in
        var buffer: [UInt8] = []
        while try await client.read(into: &buffer, upTo: 65536) > 0 {
            try await client.write(buffer)
            buffer.removeAll(keepingCapacity: true)
        }
    }
    do {
        try await body(server.localAddress.port!)
    } catch {
        server.close()
        try? await served
        throw error
    }
    server.close()
    try await served
}

/// A port on 127.0.0.1 that nothing listens on (bound a moment ago, then closed).
private func readmeClosedPort() throws -> UInt16 {
    let server = try AsyncServer(host: "127.0.0.1", port: 0)
    defer { server.close() }
    return server.localAddress.port!
}

/// The snippet regions of this file: name and lines, de-indented, `// test-only` lines dropped.
private func testSnippets(in source: String) -> [(String, [String])] {
    var result: [(String, [String])] = []
    var current: (name: String, lines: [String])?
    for line in source.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("// snippet: ") {
            current = (String(trimmed.dropFirst("// snippet: ".count)), [])
        } else if trimmed == "// end snippet", let finished = current {
            result.append((finished.name, dedent(finished.lines)))
            current = nil
        } else if current != nil, !trimmed.hasSuffix("// test-only") {
            current!.lines.append(line)
        }
    }
    return result
}

/// The lines of the ```swift block that follows `<!-- snippet: NAME -->` in the README.
private func readmeBlock(named name: String, in readme: String) -> [String]? {
    let lines = readme.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    guard let marker = lines.firstIndex(of: "<!-- snippet: \(name) -->"),
          marker + 1 < lines.count, lines[marker + 1] == "```swift",
          let close = lines[(marker + 2)...].firstIndex(of: "```") else { return nil }
    return dedent(Array(lines[(marker + 2)..<close]))
}

/// Removes the common leading spaces and trailing blank lines.
private func dedent(_ lines: [String]) -> [String] {
    let indents = lines.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.map { $0.prefix { $0 == " " }.count }
    let indent = indents.min() ?? 0
    var result = lines.map { $0.count >= indent ? String($0.dropFirst(indent)) : "" }
    while result.last?.isEmpty == true { result.removeLast() }
    return result
}
