#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a socket that listens or receives binds to, shared by ``AsyncServer`` and ``DatagramSocket``.
enum BindAddress {
    /// The address to bind for `host` (numeric, a name resolved with `getaddrinfo`, blocking, or `""` for every
    /// interface of `family`) and `port`. `operation` names the caller in an invalid-argument error, `owner`
    /// ("server", "socket") the thing whose family a numeric host does not match.
    static func resolve(host: String, port: UInt16, family: SocketFamily, operation: String,
                        owner: String) throws -> SocketAddress {
        if host.utf8.contains(0) {
            throw SocketError.invalidArgument(operation, "the host contains a NUL byte: \(host.debugDescription)")
        }
        if host.isEmpty {
            return family == .ipv4 ? try SocketAddress(ipv4: "0.0.0.0", port: port) : try SocketAddress(ipv6: "::", port: port)
        }
        if let numeric = try? SocketAddress(numericHost: host, port: port) {
            guard numeric.family == family else {
                throw SocketError(code: EAFNOSUPPORT, operation: "bind", address: numeric,
                                  detail: "\(host) is an \(numeric.family) address but the \(owner)'s family is \(family)")
            }
            return numeric
        }
        switch SystemResolver.lookup(Endpoint(host: host, port: port)) {
        case .success(let addresses):
            guard let address = addresses.first(where: { $0.family == family }) else {
                throw SocketError(code: EAFNOSUPPORT, operation: "resolve", detail: "\(host) has no \(family) address")
            }
            return address
        case .failure(let error):
            throw error
        }
    }

    /// Sets the boolean socket option `level`/`name` (`label` is its C name, for the error) on `fd` before bind.
    static func setFlag(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Bool, _ label: String,
                        _ address: SocketAddress?) throws {
        var raw: Int32 = value ? 1 : 0
        _ = try Syscall.call("setsockopt", address: address, detail: label) {
            setsockopt(fd, level, name, &raw, socklen_t(MemoryLayout<Int32>.size))
        }
    }
}
