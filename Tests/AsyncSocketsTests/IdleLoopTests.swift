import Foundation
import Testing
@testable import AsyncSockets

/// "No busy polling anywhere; an idle process uses 0% CPU": with many calls waiting (reads with and without a
/// timeout, a pending accept) the event loop thread sleeps in `epoll_wait` and uses no CPU to speak of.
@Suite(.serialized) struct IdleLoopTests {
    @Test func waitingSocketsLeaveTheLoopIdle() async throws { try await withDescriptorCheck {
        let loops = EventLoopGroup.shared.loops  // the sockets and the server are spread over all of them
        let pairs = try (0..<100).map { _ in try AsyncSocket.pair() }
        for (index, (_, b)) in pairs.enumerated() where index % 2 == 0 {
            await b.setTimeout(.seconds(600))  // half of them with a long timer armed
        }
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let readers = pairs.map { pair in Task { try await pair.1.read(upTo: 16) } }
        let acceptor = Task { try await server.accept() }
        // Wait until every read really waits (a real signal, not a sleep).
        let waiting = await ServerTesting.eventually {
            var count = 0
            for (_, b) in pairs where await b.coreTestWaitState().reading { count += 1 }
            return count == pairs.count
        }
        #expect(waiting)

        // Idle on purpose: the quantity measured is CPU time over wall time while nothing happens.
        let (used, wall) = try await ServerTesting.loopCPUTime(of: loops, over: .seconds(1))
        // A spinning loop would use about `wall`; an idle one a few wake-ups' worth. 5% is generous for a
        // loaded machine and still tells the two apart.
        #expect(used < wall * 0.05, "the busiest loop thread used \(used) of CPU in \(wall) with every call waiting")

        for (a, _) in pairs { try await a.write([1]) }
        for reader in readers { #expect(try await reader.value == [1]) }
        server.close()
        #expect(try await acceptor.value == nil)
        for (a, b) in pairs {
            await a.close()
            await b.close()
        }
    } }
}
