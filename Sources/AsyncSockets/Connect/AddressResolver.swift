/// Turns an ``Endpoint`` into the addresses to try, in the order to try them.
///
/// ``SystemResolver`` asks the operating system. Inject your own to pin addresses, to use a DNS client, or
/// to make tests deterministic.
public protocol AddressResolver: Sendable {
    /// The addresses of `endpoint`, in preference order. An empty array means "no such host".
    ///
    /// Return promptly (throwing `CancellationError`) when the calling task is cancelled: `connect` waits
    /// for this method to return before it can report the cancellation.
    ///
    /// Inside `AsyncSocket.withConnection` (and `EventLoop.run`) this is called on the event loop thread:
    /// never block in it; await slow work that runs elsewhere, as ``SystemResolver`` does.
    func resolve(_ endpoint: Endpoint) async throws -> [SocketAddress]
}
