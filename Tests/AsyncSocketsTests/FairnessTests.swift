import Foundation
import Testing
@_spi(Statistics) @testable import AsyncSockets

/// The fairness rule (issue 11, item 1): a read or write that keeps finding data or room hands the loop back after
/// a bounded amount of work, so one streaming connection cannot starve the others on its loop, and a busy call
/// notices cancellation.
///
/// The peers that always have data queued or always have room are plain OS threads doing blocking I/O
/// (`BlockingPeer`): they keep going whatever the loop does, and stop by themselves after a few seconds, so that
/// a loop that never gets free again fails these tests instead of hanging the run.
@Suite struct FairnessTests {
    /// A `serve` handler that picks its behaviour by the client's first byte: `S` reads in small pieces until
    /// end of stream (a sink that is slower than a feeding thread, so data is always queued), `W` writes small
    /// chunks until the peer goes (a source whose draining thread is faster, so there is always room), anything
    /// else echoes (the probe).
    @Sendable static func roles(_ client: isolated AsyncSocket) async throws {
        let first = try await client.read(exactly: 1)
        switch first[0] {
        case UInt8(ascii: "S"):
            while try await !client.read(upTo: 512).isEmpty {}
        case UInt8(ascii: "W"):
            let chunk = [UInt8](repeating: 0x57, count: 512)
            while true { try await client.write(chunk) }
        default:
            try await client.write(first)
            while true {
                let bytes = try await client.read(upTo: 65_536)
                if bytes.isEmpty { return }
                try await client.write(bytes)
            }
        }
    }

    /// A fresh client's 64-byte echo through `roles`: nil if it takes longer than `limit`.
    static func probe(_ port: UInt16, within limit: Duration = .seconds(5)) async throws -> Bool {
        let payload = CoreFixtures.pattern(count: 63, seed: 3)
        let echoed = try await CoreFixtures.firstWithin(limit) {
            let client = try await ServerTesting.connect(port)
            try await client.write([UInt8(ascii: "E")] + payload)
            let back = try await client.read(exactly: 64)
            await client.close()
            return back
        }
        guard let echoed else { return false }
        #expect(echoed == [UInt8(ascii: "E")] + payload)
        return true
    }

    /// Another connection's echo, a timer on the loop and `server.close()` all get through while one handler
    /// reads a connection that always has data queued. (Before the fix none of them did until the feeder
    /// stopped: the handler's reads never suspended.)
    @Test func aReaderThatAlwaysFindsDataDoesNotHoldUpTheLoop() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let port = server.localAddress.port!
        let serving = Task { try await server.serve(handler: Self.roles) }
        let feeder = try BlockingPeer(port: port, greeting: "S", mode: .feed)
        defer { feeder.stop() }
        try await CoreFixtures.waitUntil("the feeder streams") { feeder.bytesMoved > 4 << 20 }

        #expect(try await Self.probe(port), "a second connection's echo did not get through")
        let woke = try await CoreFixtures.firstWithin(.seconds(5)) {
            try await EventLoop.shared.run { try await Task.sleep(for: .milliseconds(10)) }
            return true
        }
        #expect(woke == true, "a task sleeping on the loop did not wake")
        #expect(feeder.isRunning, "the feeder stopped early: the checks above did not run against a stream")
        let closed = try await CoreFixtures.firstWithin(.seconds(5)) {
            server.close()
            try await serving.value
            return true
        }
        #expect(closed == true, "serve did not end after server.close() (its streaming handler kept going)")
        feeder.stop()
        try await CoreFixtures.waitUntil("the feeder ends") { !feeder.isRunning }
        try await serving.value
    } }

    /// The same for a handler that writes to a client that always has room (a thread draining it).
    @Test func aWriterThatAlwaysFindsRoomDoesNotHoldUpTheLoop() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let port = server.localAddress.port!
        let serving = Task { try await server.serve(handler: Self.roles) }
        let drainer = try BlockingPeer(port: port, greeting: "W", mode: .drain)
        defer { drainer.stop() }
        try await CoreFixtures.waitUntil("the writer streams") { drainer.bytesMoved > 4 << 20 }

        #expect(try await Self.probe(port), "a second connection's echo did not get through")
        #expect(drainer.isRunning, "the drainer stopped early: the check above did not run against a stream")
        let closed = try await CoreFixtures.firstWithin(.seconds(5)) {
            server.close()
            try await serving.value
            return true
        }
        #expect(closed == true, "serve did not end after server.close() (its streaming handler kept going)")
        drainer.stop()
        try await CoreFixtures.waitUntil("the drainer ends") { !drainer.isRunning }
        try await serving.value
    } }

    /// One accepted connection and the blocking peer on its other end.
    static func acceptedStream(_ mode: BlockingPeer.Mode) async throws -> (AsyncSocket, BlockingPeer) {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        defer { server.close() }
        let peer = try BlockingPeer(port: server.localAddress.port!, greeting: nil, mode: mode)
        guard let accepted = try await server.accept() else {
            peer.stop()
            throw CoreFixtures.Failure("accept returned nil on an open server")
        }
        return (accepted, peer)
    }

    /// Cancelling a task that reads a connection that always has data makes it throw `CancellationError`
    /// promptly, from a plain task and from a task on the loop. (Before the fix the read never looked.)
    @Test(arguments: [false, true])
    func cancellingAReaderThatAlwaysFindsData(onLoop: Bool) async throws { try await withDescriptorCheck {
        let (socket, feeder) = try await Self.acceptedStream(.feed)
        defer { feeder.stop() }
        let started = Mutex(0)
        let readLoop: @Sendable () async throws -> Void = {
            while true {
                if try await socket.read(upTo: 512).isEmpty { return }
                started.withLock { $0 += 1 }
            }
        }
        let reader = Task { onLoop ? try await EventLoop.shared.run { try await readLoop() } : try await readLoop() }
        try await CoreFixtures.waitUntil("the reader reads") { started.withLock { $0 } > 1_000 }
        reader.cancel()
        await #expect(throws: CancellationError.self) { try await CoreFixtures.value(of: reader, within: .seconds(4)) }
        #expect(feeder.isRunning, "the feeder stopped early: the reader was not cancelled while data kept coming")
        feeder.stop()
        try await CoreFixtures.waitUntil("the feeder ends") { !feeder.isRunning }
        await socket.close()
    } }

    /// The same for a task that writes to a connection that always has room.
    @Test(arguments: [false, true])
    func cancellingAWriterThatAlwaysFindsRoom(onLoop: Bool) async throws { try await withDescriptorCheck {
        let (socket, drainer) = try await Self.acceptedStream(.drain)
        defer { drainer.stop() }
        let writeLoop: @Sendable () async throws -> Void = {
            let chunk = [UInt8](repeating: 0x42, count: 512)
            while true { try await socket.write(chunk) }
        }
        let writer = Task { onLoop ? try await EventLoop.shared.run { try await writeLoop() } : try await writeLoop() }
        try await CoreFixtures.waitUntil("the writer writes") { drainer.bytesMoved > 1 << 20 }
        writer.cancel()
        await #expect(throws: CancellationError.self) { try await CoreFixtures.value(of: writer, within: .seconds(4)) }
        drainer.stop()
        try await CoreFixtures.waitUntil("the drainer ends") { !drainer.isRunning }
        await socket.close()
    } }

    // MARK: The hand-back itself (deterministic: no other thread involved)

    /// How the socket reads in `readsHandTheLoopBack`.
    enum ReadKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case upTo, exactly, into
        var testDescription: String { rawValue }
    }

    /// 250 messages already queued, read one by one from code isolated to the socket (no hops between calls):
    /// every read finds data, so before the fix the loop never polled in between. Now the reader hands the loop
    /// back after every 16 reads at most, and still gets every byte in order.
    @Test(arguments: ReadKind.allCases)
    func readsHandTheLoopBack(_ kind: ReadKind) async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        let sent = CoreFixtures.pattern(count: 250 * 100, seed: 11)
        try await a.write(sent)  // fits in a socketpair's buffer (about 270 such messages)
        let (received, polls) = try await Self.countingPolls(on: b) { socket in
            var received: [UInt8] = []
            received.reserveCapacity(sent.count)
            for _ in 0..<250 {
                switch kind {
                case .upTo: received += try await socket.read(upTo: 100)
                case .exactly: received += try await socket.read(exactly: 100)
                case .into: _ = try await socket.read(into: &received, upTo: 100)
                }
            }
            return received
        }
        #expect(CoreFixtures.sameBytes(received, sent))
        #expect(polls >= 250 / IOBudget.maxOperations - 1, "the loop polled only \(polls) times during 250 reads")
        await a.close()
        await b.close()
    } }

    /// 200 small writes that all find room (a socketpair holds about 270 of them) hand the loop back too.
    @Test func smallWritesHandTheLoopBack() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        let sent = CoreFixtures.pattern(count: 200 * 100, seed: 12)
        let (_, polls) = try await Self.countingPolls(on: a) { socket in
            for index in 0..<200 { try await socket.write(sent[index * 100 ..< (index + 1) * 100]) }
        }
        #expect(polls >= 200 / IOBudget.maxOperations - 1, "the loop polled only \(polls) times during 200 writes")
        #expect(CoreFixtures.sameBytes(try await b.read(exactly: sent.count), sent))
        await a.close()
        await b.close()
    } }

    /// One 1 MiB write into a fresh loopback TCP connection, which takes it without pushing back (nobody reads
    /// meanwhile): before the fix a single `send` took it all while the loop waited; now it goes out in chunks
    /// of at most 256 KiB with the loop handed back in between.
    @Test func aLargeWriteHandsTheLoopBackBetweenChunks() async throws { try await withDescriptorCheck {
        let (a, b) = try await CoreFixtures.tcpPair()
        let sent = CoreFixtures.pattern(count: 1 << 20, seed: 13)
        let (_, polls) = try await Self.countingPolls(on: a) { socket in try await socket.write(sent) }
        #expect(polls >= (1 << 20) / IOBudget.maxBytes - 1, "the loop polled only \(polls) times during the write")
        #expect(CoreFixtures.sameBytes(try await b.read(exactly: sent.count), sent))
        await a.close()
        await b.close()
    } }

    /// Runs `body` isolated to `socket` (its calls on the socket need no hop and never suspend unless the socket
    /// makes them) and counts the polls of the socket's loop meanwhile.
    static func countingPolls<T: Sendable>(on socket: AsyncSocket,
                                           _ body: @Sendable (isolated AsyncSocket) async throws -> T) async throws -> (T, Int) {
        try await Self.isolatedCount(socket, body)
    }

    private static func isolatedCount<T: Sendable>(_ socket: isolated AsyncSocket,
                                                   _ body: @Sendable (isolated AsyncSocket) async throws -> T) async throws -> (T, Int) {
        let before = socket.eventLoop.statistics.polls
        let value = try await body(socket)
        return (value, socket.eventLoop.statistics.polls - before)
    }
}

/// Large read sizes cost memory in proportion to what arrived, not to what was asked for (issue 11, item 3).
@Suite(.serialized) struct LargeReadMemoryTests {
    /// `read(upTo:)` with a bound far above what is queued returns an array sized to what arrived.
    @Test(arguments: [1 << 20, 16 << 20, Int.max])
    func largeBoundsReturnWhatArrived(_ maxBytes: Int) async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        try await a.write([1])
        let one = try await b.read(upTo: maxBytes)
        #expect(one == [1])
        #expect(one.capacity < 1024, "1 byte read with upTo: \(maxBytes) carries \(one.capacity) bytes of capacity")
        let sent = CoreFixtures.pattern(count: 100, seed: 1)
        try await a.write(sent)
        let hundred = try await b.read(upTo: maxBytes)
        #expect(hundred == sent)
        #expect(hundred.capacity < 1024, "100 bytes read with upTo: \(maxBytes) carry \(hundred.capacity) bytes of capacity")
        await a.close()
        await b.close()
    } }

    /// More than 64 KiB queued: one read takes more than the scratch buffer holds, in an array whose capacity
    /// stays close to its count, and a stream read this way arrives intact.
    @Test func readsAboveTheScratchSizeGrowWithWhatArrives() async throws { try await withDescriptorCheck {
        let (a, b) = try await CoreFixtures.tcpPair()
        let sent = CoreFixtures.pattern(count: 200_000, seed: 2)
        try await a.write(sent)  // a fresh loopback connection takes it without a reader
        var received: [UInt8] = []
        var largest = 0
        while received.count < sent.count {
            let bytes = try await b.read(upTo: 1 << 20)
            #expect(!bytes.isEmpty)
            #expect(bytes.capacity <= 2 * bytes.count + 4096,
                    "\(bytes.count) bytes carry \(bytes.capacity) bytes of capacity")
            largest = max(largest, bytes.count)
            received += bytes
        }
        #expect(CoreFixtures.sameBytes(received, sent))
        #expect(largest > EventLoop.scratchSize, "no read went past the scratch buffer (largest \(largest))")
        let exact = Task { try await b.read(exactly: 300_000) }
        let more = CoreFixtures.pattern(count: 300_000, seed: 4)
        try await a.write(more)
        let got = try await CoreFixtures.value(of: exact)
        #expect(CoreFixtures.sameBytes(got, more))
        #expect(got.capacity <= 2 * got.count, "read(exactly:) returned \(got.capacity) bytes of capacity for \(got.count)")
        await a.close()
        await b.close()
    } }

    /// Readers waiting in `read(exactly: 8 MiB)` after a 1-byte "length prefix" hold about what arrived: before,
    /// each allocated (and zero-filled) all 8 MiB up front.
    @Test func aWaitingLargeExactReadHoldsLittleMemory() async throws { try await withDescriptorCheck {
        let readers = 8
        let pairs = try (0..<readers).map { _ in try AsyncSocket.pair() }
        let before = Self.residentBytes()
        let tasks = pairs.map { pair in Task { try await pair.1.read(exactly: 8 << 20) } }
        for (a, _) in pairs { try await a.write([7]) }
        // Each reader has read its byte (nothing is left queued) and waits for the rest.
        try await CoreFixtures.waitUntil("every reader has its byte and waits") {
            for (_, b) in pairs {
                guard await b.coreTestWaitState().reading else { return false }
                let fd = await b.descriptor
                var queued: Int32 = 0
                guard ioctl(fd, UInt(FIONREAD), &queued) == 0, queued == 0 else { return false }
            }
            return true
        }
        let grown = Self.residentBytes() - before
        #expect(grown < 16 << 20, "\(readers) waiting read(exactly: 8 MiB) calls grew the process by \(grown >> 20) MiB")
        for (a, _) in pairs { await a.close() }
        for task in tasks {
            await #expect(throws: IncompleteReadError.self) { try await CoreFixtures.value(of: task) }
        }
        for (_, b) in pairs { await b.close() }
    } }

    /// The process's resident memory (`/proc/self/statm`).
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

/// The other end of a loopback TCP connection, served by a plain OS thread with blocking I/O as fast as it
/// goes: `.feed` writes 64 KiB chunks (the server always has data queued), `.drain` reads 1 MiB at a time (the
/// server always has room). It stops when told, when the connection fails, or after `limit`, and then closes its
/// descriptor.
final class BlockingPeer: Sendable {
    enum Mode: Sendable { case feed, drain }

    private let state = Mutex((stop: false, running: true, bytes: 0))

    /// Connects to 127.0.0.1:`port`, sends `greeting` (if any), and starts the thread.
    init(port: UInt16, greeting: Character?, mode: Mode, limit: Duration = .seconds(9)) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError.fromErrno("socket") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let error = SocketError.fromErrno("connect")
            close(fd)
            throw error
        }
        // Blocking calls give up after 50 ms, so that the thread sees `stop` even when the other side stalls.
        var slice = timeval(tv_sec: 0, tv_usec: 50_000)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &slice, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &slice, socklen_t(MemoryLayout<timeval>.size))
        if let greeting, let byte = greeting.asciiValue {
            var value = byte
            _ = send(fd, &value, 1, Int32(MSG_NOSIGNAL))
        }
        let state = self.state
        let end = ContinuousClock.now + limit
        let thread = Thread {
            var buffer = [UInt8](repeating: 0x46, count: mode == .feed ? 64 << 10 : 1 << 20)
            while !state.withLock({ $0.stop }) && ContinuousClock.now < end {
                let n = buffer.withUnsafeMutableBytes { raw in
                    mode == .feed ? send(fd, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL))
                                  : recv(fd, raw.baseAddress, raw.count, 0)
                }
                if n > 0 {
                    state.withLock { $0.bytes += n }
                } else if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                    break
                }
            }
            close(fd)
            state.withLock { $0.running = false }
        }
        thread.start()
    }

    /// Bytes written (`.feed`) or read (`.drain`) so far.
    var bytesMoved: Int { state.withLock { $0.bytes } }
    /// Whether the thread still runs (its descriptor is open).
    var isRunning: Bool { state.withLock { $0.running } }
    /// Tells the thread to stop (it closes its descriptor within about 50 ms).
    func stop() { state.withLock { $0.stop = true } }
}
