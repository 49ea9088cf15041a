/// Turns an ``Endpoint`` into the addresses to try, in the order to try them.
///
/// ``SystemResolver`` asks the operating system. Inject your own to pin addresses, to use a DNS client, or
/// to make tests deterministic.
public protocol AddressResolver: Sendable {
    /// The addresses of `endpoint`, in preference order. An empty array means "no such host".
    func resolve(_ endpoint: Endpoint) async throws -> [SocketAddress]
}
