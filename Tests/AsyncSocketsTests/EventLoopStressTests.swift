import Foundation
import Testing
@testable import AsyncSockets

/// The event loop thread keeps running whatever its users do: handlers that throw, and floods of work and
/// registrations handed to it from many threads at once.
@Suite struct EventLoopStressTests {
    @Test func loopSurvivesHandlersThatThrow() async throws { try await withDescriptorCheck {
        try await withDeadline(60, "throwing handlers") {
            struct HandlerFailure: Error {}
            let server = try AsyncServer(host: "127.0.0.1", port: 0)
            let errors = Mutex(0)
            let serving = Task {
                try await server.serve(onError: { error, _ in
                    if error is HandlerFailure { errors.withLock { $0 += 1 } }
                }) { client in
                    let request = try await client.read(exactly: 1)
                    if request[0] == 0 { throw HandlerFailure() }  // a failing handler, on the loop
                    try await client.write(request)
                }
            }
            // 50 clients whose handler throws, then 50 that get an echo: the loop and the server go on.
            for _ in 0..<50 {
                let client = try await AsyncSocket.connect(to: server.localAddress)
                try await client.write([0])
                #expect(try await client.read(upTo: 1) == [])  // the handler threw, its client was closed
                await client.close()
            }
            for index in 1...50 {
                let client = try await AsyncSocket.connect(to: server.localAddress)
                try await client.write([UInt8(index)])
                #expect(try await client.read(exactly: 1) == [UInt8(index)])
                await client.close()
            }
            #expect(errors.withLock { $0 } == 50)
            server.close()
            try await serving.value
            // The loop itself still runs work.
            let ran = Mutex(false)
            EventLoop.shared.executeAndWait { ran.withLock { $0 = true } }
            #expect(ran.withLock { $0 })
        }
    } }

    @Test func floodOfWorkFromManyThreads() async throws {
        // 16 plain threads each hand 10,000 closures to the loop as fast as they can: every one runs, once,
        // on the loop thread, in per-thread order.
        let threads = 16
        let perThread = 10_000
        let loop = EventLoop.shared
        let seen = Mutex([Int](repeating: 0, count: threads))
        let wrongThread = Mutex(0)
        let outOfOrder = Mutex(0)
        let done = DispatchGroup()
        for thread in 0..<threads {
            done.enter()
            Thread {
                for index in 0..<perThread {
                    loop.execute {
                        if !loop.inLoop { wrongThread.withLock { $0 += 1 } }
                        seen.withLock {
                            if $0[thread] != index { outOfOrder.withLock { $0 += 1 } }
                            $0[thread] = index + 1
                        }
                    }
                }
                done.leave()
            }.start()
        }
        #expect(done.wait(timeout: .now() + 120) == .success)
        // Everything submitted is queued: one more round trip through the loop flushes it.
        let flushed = DispatchSemaphore(value: 0)
        loop.execute { flushed.signal() }
        #expect(flushed.wait(timeout: .now() + 60) == .success)
        #expect(seen.withLock { $0 } == [Int](repeating: perThread, count: threads))
        #expect(wrongThread.withLock { $0 } == 0)
        #expect(outOfOrder.withLock { $0 } == 0)
    }

    @Test func floodOfRegistrationsFromThePool() async throws { try await withDescriptorCheck {
        try await withDeadline(120, "registration flood") {
            // 2,000 tasks on the global pool (no loop preference) each create a pair, wait in a read (a
            // registration handed to the loop) and are answered by a sibling task: all complete, correctly.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<2000 {
                    group.addTask {
                        let (a, b) = try AsyncSocket.pair()
                        let token = [UInt8(truncatingIfNeeded: index), UInt8(truncatingIfNeeded: index >> 8)]
                        async let answer: Void = {
                            await Task.yield()
                            try await b.write(token)
                        }()
                        let got = try await a.read(exactly: 2)
                        try await answer
                        #expect(got == token)
                        await a.close()
                        await b.close()
                    }
                }
                try await group.waitForAll()
            }
            // And the same with tasks that prefer the loop as their executor.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<2000 {
                    group.addTask(executorPreference: EventLoop.shared) {
                        let (a, b) = try AsyncSocket.pair()
                        let reader = Task { try await a.read(exactly: 1) }
                        try await b.write([UInt8(truncatingIfNeeded: index)])
                        #expect(try await reader.value == [UInt8(truncatingIfNeeded: index)])
                        await a.close()
                        await b.close()
                    }
                }
                try await group.waitForAll()
            }
        }
    } }
}
