import Testing
@testable import AsyncSockets

@Suite struct SmokeTests {
    @Test func pairRoundTrip() async throws { try await withDescriptorCheck {
        let (a, b) = try AsyncSocket.pair()
        try await a.write(Array("hello".utf8))
        let got = try await b.read(exactly: 5)
        #expect(got == Array("hello".utf8))
        await a.close()
        #expect(try await b.read(upTo: 10) == [])
        await b.close()
    } }

    @Test func tcpEcho() async throws { try await withDescriptorCheck {
        let server = try AsyncServer(host: "127.0.0.1", port: 0)
        let port = server.localAddress.port!
        async let served: Void = server.serve { client in
            while true {
                let bytes = try await client.read(upTo: 1024)
                if bytes.isEmpty { break }
                try await client.write(bytes)
            }
        }
        let client = try await AsyncSocket.connect(to: Endpoint(host: "127.0.0.1", port: port))
        try await client.write(Array(repeating: 7, count: 100_000))
        let echoed = try await client.read(exactly: 100_000)
        #expect(echoed == Array(repeating: 7, count: 100_000))
        await client.close()
        server.close()
        try await served
    } }
}
