#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
@testable import AsyncSockets

/// The leak check that every socket test relies on must be able to fail.
@Suite("Descriptor check") struct DescriptorCheckTests {
    @Test("withDescriptorCheck reports a descriptor left open")
    func detectsALeak() async throws {
        var fds: [Int32] = [-1, -1]
        try await withKnownIssue("the pipe is deliberately left open inside the check") {
            try await withDescriptorCheck {
                #expect(pipe(&fds) == 0)
            }
        } matching: { issue in
            issue.comments.contains { $0.rawValue.contains("descriptors left open") }
        }
        #expect(fds.allSatisfy { $0 >= 0 })
        for fd in fds where fd >= 0 { close(fd) }
    }
}
