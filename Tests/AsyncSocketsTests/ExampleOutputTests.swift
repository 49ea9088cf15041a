import Foundation
import Testing
@testable import AsyncSockets

private typealias T = ServerTesting

/// Issue 11 item 2: the examples must never block their event loop on log output. Each runs with stdout
/// and stderr going to a 4 KiB pipe that the test stops reading after the first line; the old examples
/// wrote their log lines from the loop thread and stopped serving once the pipe was full (ChatServer after
/// some 50 joins, PortForwarder after some 55 connections). Also their `--idle-timeout`.
@Suite(.serialized) struct ExampleOutputTests {
    /// 150 clients join and leave while nobody reads the server's output: each one's join and leave still
    /// reach a member who stays, and a message still goes round at the end.
    @Test func chatServerKeepsServingWhileItsOutputIsBlocked() async throws {
        let chat = try ExampleProcess(try ExampleProcess.path("ChatServer"), ["--host", "127.0.0.1", "--port", "0"])
        defer { chat.stop() }
        let line = try await chat.readLine()
        let port = try #require(ExampleProcess.port(inListeningLine: line), "first line: \(line)")
        try await CoreFixtures.within(.seconds(60), "150 joins with the output blocked") {
            let member = try await T.connect(port)
            var seen = ""
            func awaitText(_ count: Int, of text: String) async throws {
                while seen.components(separatedBy: text).count - 1 < count {
                    let bytes = try await member.read(upTo: 4096)
                    if bytes.isEmpty { throw CoreFixtures.Failure("the server closed; saw \(seen.suffix(200))") }
                    seen += String(decoding: bytes, as: UTF8.self)
                }
            }
            // Joined before any guest: with several event loops, clients' handlers may join in any order.
            try await awaitText(1, of: "* welcome, ")
            for n in 1...150 {
                let guest = try await T.connect(port)
                try await awaitText(n, of: " joined (2 here)")
                await guest.close()
                try await awaitText(n, of: " left\n")
            }
            let last = try await T.connect(port)
            try await awaitText(151, of: " joined (2 here)")
            try await last.write("still here\n")
            try await awaitText(1, of: "] still here\n")
            await last.close()
            await member.close()
        }
    }

    /// 200 connections through the forwarder while nobody reads its stderr (one line per connection).
    @Test func portForwarderKeepsForwardingWhileItsOutputIsBlocked() async throws { 
        let echo = try AsyncServer(host: "127.0.0.1", port: 0)
        let serving = Task { try await echo.serve { client in try await T.echo(client) } }
        let forwarder = try ExampleProcess(try ExampleProcess.path("PortForwarder"),
                                           ["--listen", "0", "--to", "127.0.0.1:\(echo.localAddress.port!)"])
        defer { forwarder.stop() }
        let line = try await forwarder.readLine()
        let port = try #require(ExampleProcess.port(inListeningLine: line), "first line: \(line)")
        try await CoreFixtures.within(.seconds(60), "200 connections with the output blocked") {
            for n in 0..<200 {
                let client = try await T.connect(port)
                try await client.write("ping \(n % 10)\n")
                #expect(try await client.read(exactly: 7) == Array("ping \(n % 10)\n".utf8))
                try await client.shutdown(.write)
                #expect(try await client.read(upTo: 16) == [])
                await client.close()
            }
        }
        echo.close()
        try await CoreFixtures.value(of: serving, within: .seconds(10))
    }

    /// `--idle-timeout`: a client that connects and sends nothing is disconnected; one that keeps talking
    /// is not.
    @Test func idleTimeouts() async throws {
        let echo = try AsyncServer(host: "127.0.0.1", port: 0)
        let serving = Task { try await echo.serve { client in try await T.echo(client) } }
        let chat = try ExampleProcess(try ExampleProcess.path("ChatServer"),
                                      ["--host", "127.0.0.1", "--port", "0", "--idle-timeout", "0.3"])
        defer { chat.stop() }
        let forwarder = try ExampleProcess(try ExampleProcess.path("PortForwarder"),
                                           ["--listen", "0", "--to", "127.0.0.1:\(echo.localAddress.port!)", "--idle-timeout", "0.3"])
        defer { forwarder.stop() }
        let chatPort = try #require(ExampleProcess.port(inListeningLine: try await chat.readLine()))
        let forwarderPort = try #require(ExampleProcess.port(inListeningLine: try await forwarder.readLine()))
        try await CoreFixtures.within(.seconds(30), "idle connections closed") {
            for port in [chatPort, forwarderPort] {
                let started = ContinuousClock.now
                let idle = try await T.connect(port)
                while try await !idle.read(upTo: 4096).isEmpty {}  // ends when the server closes it
                #expect(ContinuousClock.now - started >= .milliseconds(250), "port \(port)")
                await idle.close()
            }
            // Through the forwarder: a client that talks every 100 ms stays (0.6 s in all).
            let busy = try await T.connect(forwarderPort)
            for n in 0..<6 {
                try await Task.sleep(for: .milliseconds(100))
                try await busy.write("\(n)")
                #expect(try await busy.read(exactly: 1) == Array("\(n)".utf8))
            }
            await busy.close()
        }
        echo.close()
        try await CoreFixtures.value(of: serving, within: .seconds(10))
    }
}
