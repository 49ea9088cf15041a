#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Resolution bounded by the deadline of a whole `connect` call.
extension AddressResolver {
    /// `resolve(endpoint)`, but throwing ``SocketError`` `ETIMEDOUT` (operation `"resolve"`) once `deadline`
    /// passes: the lookup is cancelled then. (``SystemResolver`` returns at once on cancellation; a resolver
    /// that ignores cancellation delays the error until it returns.) `nil`: no bound.
    func resolve(_ endpoint: Endpoint, before deadline: Deadline?, timeout: Duration?) async throws -> [SocketAddress] {
        guard let deadline else { return try await resolve(endpoint) }
        let micros = deadline.remainingMicroseconds
        // A zero or negative timeout: the connect would have to wait, so it fails at once, as reads do.
        if micros == 0 { throw SocketError.timedOut("connect", after: timeout, endpoint: endpoint) }
        // A numeric host needs no lookup: nothing to race (and no task group to pay for).
        if self is SystemResolver, let address = try? SocketAddress(numericHost: endpoint.host, port: endpoint.port) {
            return [address]
        }
        return try await withThrowingTaskGroup(of: [SocketAddress]?.self) { group in
            group.addTask { try await self.resolve(endpoint) }
            group.addTask {
                // At most about 136 years: `Task.sleep(for:)` traps on durations its clock cannot hold.
                try await Task.sleep(for: .microseconds(min(micros, Int64(1) << 52)))
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let addresses = first else {
                throw SocketError.timedOut("resolve", after: timeout, endpoint: endpoint)
            }
            return addresses
        }
    }
}

extension SocketError {
    /// The ``SocketError`` of a `connect` whose `timeout` passed while `endpoint` was being resolved.
    static func timedOut(_ operation: String, after timeout: Duration?, endpoint: Endpoint) -> SocketError {
        SocketError(code: ETIMEDOUT, operation: operation,
                    detail: "\(endpoint): no answer within \(timeout.map(String.init(describing:)) ?? "the timeout")")
    }
}
