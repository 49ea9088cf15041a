/// A host (a name such as `"example.com"` or a numeric address such as `"127.0.0.1"` or `"::1"`) and a port:
/// what ``AsyncSocket/connect(to:timeout:sourceAddress:allErrors:happyEyeballsDelay:resolver:multipath:)`` resolves.
///
/// Python's `(host, port)` address tuple.
public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
    /// A host name or a numeric IPv4 or IPv6 address. `""` means "any address" where that makes sense
    /// (a source address, a server's bind address).
    public var host: String
    /// The TCP port.
    public var port: UInt16

    /// Creates an endpoint from a host name or numeric address and a port.
    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// `host:port`, or `[host]:port` when the host contains a colon (an IPv6 address).
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
