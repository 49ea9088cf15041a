@testable import AsyncSockets
@testable import AsyncSocketsTLS
import Foundation
import Synchronization
import Testing

private typealias F = TLSFixtures

/// The fairness rule for TLS (as `FairnessTests` for plain sockets): a TLS read or write that keeps finding
/// data or room hands the loop back after a bounded amount of work, across calls, so one streaming TLS
/// connection cannot starve the other connections, the accepts and the timers of its loop.
///
/// The server runs alone on a loop of its own (`GroupFixtures.fairness`); the streaming peers are TLS clients on the shared
/// group's loops, and they stop by themselves after `streamFor`, so that a loop that never gets free again fails
/// these tests instead of hanging the run.
@Suite struct TLSFairnessTests {
    /// How long a streaming peer goes on at most.
    static let streamFor: Duration = .seconds(15)

    /// A handler that picks its behaviour by the client's first byte: `S` reads 64 bytes at a time until end of
    /// stream (far slower than the client's 64 KiB writes, so data is always there), `W` writes small records until
    /// the peer goes (slower than the client's large reads, so there is always room), anything else echoes.
    /// Each handler adds its TLS socket's hand-back count to `ended` when it ends.
    static func roles(_ ended: Mutex<Ended>) -> @Sendable (isolated TLSSocket) async throws -> Void {
        { tls in
            defer { ended.withLock { $0.handlers += 1; $0.handBacks += tls.handBacks } }
            let first = try await tls.read(exactly: 1)
            switch first[0] {
            case UInt8(ascii: "S"):
                while try await !tls.read(upTo: 64).isEmpty {}
            case UInt8(ascii: "W"):
                let chunk = [UInt8](repeating: 0x57, count: 512)
                while true { try await tls.write(chunk) }
            default:
                try await tls.write(first)
                while true {
                    let bytes = try await tls.read(upTo: 65_536)
                    if bytes.isEmpty { return }
                    try await tls.write(bytes)
                }
            }
        }
    }

    /// The handlers that ended, and their TLS sockets' hand-backs in all.
    struct Ended { var handlers = 0, handBacks = 0 }

    /// A streaming client: sends `greeting`, then writes 64 KiB at a time (`feed`) or reads 64 KiB at a time
    /// (`drain`) until `streamFor` has passed or the server goes; counts the bytes it moved.
    static func stream(_ port: UInt16, greeting: String, feed: Bool, moved: Mutex<Int>) -> Task<Void, Never> {
        Task {
            do {
                let tls = try await TLSSocket.connect(to: Endpoint(host: "127.0.0.1", port: port),
                                                      context: try await F.clientContext(), serverName: "localhost")
                defer { Task { await tls.close() } }
                try await tls.write(greeting)
                let end = ContinuousClock.now + streamFor
                let chunk = [UInt8](repeating: 0x53, count: 65_536)
                while ContinuousClock.now < end {
                    if feed {
                        try await tls.write(chunk)
                        moved.withLock { $0 += chunk.count }
                    } else {
                        let n = try await tls.read(upTo: 65_536).count
                        if n == 0 { return }
                        moved.withLock { $0 += n }
                    }
                }
            } catch {}
        }
    }

    /// A fresh TLS client's 64-byte echo through `roles`: false if it takes longer than `limit`.
    static func probe(_ port: UInt16, within limit: Duration = .seconds(5)) async throws -> Bool {
        let payload = CoreFixtures.pattern(count: 63, seed: 5)
        let context = try await F.clientContext()
        let echoed = try await CoreFixtures.firstWithin(limit) {
            let tls = try await TLSSocket.connect(to: Endpoint(host: "127.0.0.1", port: port), context: context,
                                                  serverName: "localhost")
            try await tls.write([UInt8(ascii: "E")] + payload)
            let back = try await tls.read(exactly: 64)
            await tls.close()
            return back
        }
        guard let echoed else { return false }
        #expect(echoed == [UInt8(ascii: "E")] + payload)
        return true
    }

    /// While one handler reads a TLS stream that always has data (and another writes to a client that always
    /// has room), a second connection's handshake and echo, and a timer on the loop, all get through, and the
    /// busy handlers hand the loop back. (Before the fix none of them got through until the streams stopped:
    /// the TLS reads and writes never suspended.)
    @Test(arguments: [true, false])
    func aStreamingConnectionDoesNotHoldUpTheLoop(reading: Bool) async throws {
        try await withDescriptorCheck {
            let ended = Mutex(Ended())
            let (server, serving) = try F.startServer(try await F.serverContext(), group: GroupFixtures.fairness, Self.roles(ended))
            let port = F.port(server)
            let moved = Mutex(0)
            let streaming = Self.stream(port, greeting: reading ? "S" : "W", feed: reading, moved: moved)
            try await CoreFixtures.waitUntil("the stream flows") { moved.withLock { $0 } > 4 << 20 }

            #expect(try await Self.probe(port), "a second connection's echo did not get through")
            let woke = try await CoreFixtures.firstWithin(.seconds(5)) {
                try await GroupFixtures.fairness.loops[0].run { try await Task.sleep(for: .milliseconds(10)) }
                return true
            }
            #expect(woke == true, "a task sleeping on the server's loop did not wake")
            let before = moved.withLock { $0 }
            try await CoreFixtures.waitUntil("the stream still flows") { moved.withLock { $0 } > before + (1 << 20) }

            server.close()
            streaming.cancel()
            await streaming.value
            try await serving.value
            try await CoreFixtures.waitUntil("both handlers end") { ended.withLock { $0.handlers } == 2 }
            let handBacks = ended.withLock { $0.handBacks }
            #expect(handBacks > 0, "the streaming handler never handed the loop back")
        }
    }
}
