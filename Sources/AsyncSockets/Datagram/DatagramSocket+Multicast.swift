#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CLibeventShim

extension DatagramSocket {
    /// Joins the multicast group `group` (a numeric IPv4 or IPv6 multicast address, such as `"239.1.2.3"` or
    /// `"ff02::fb"`) on `interface` (a name such as `"eth0"`; `nil` lets the system choose by route): datagrams
    /// sent to the group and to this socket's port are then received. Python's `IP_ADD_MEMBERSHIP` /
    /// `IPV6_JOIN_GROUP`, through RFC 3678's `MCAST_JOIN_GROUP`.
    ///
    /// An IPv6 socket joins IPv6 groups; an IPv4 socket IPv4 groups.
    /// - Throws: ``SocketError`` naming the group: `EINVAL` for an address that is not numeric or not multicast
    ///   or an unknown interface, `EADDRINUSE` when already joined, `ENODEV` for an interface that cannot,
    ///   `EBADF` after ``close()``.
    public func joinMulticastGroup(_ group: String, interface: String? = nil) throws {
        try changeMembership(group, interface: interface, join: true)
    }

    /// Leaves a group joined with ``joinMulticastGroup(_:interface:)`` (the same `interface`).
    /// - Throws: ``SocketError`` naming the group (`EADDRNOTAVAIL` when not joined).
    public func leaveMulticastGroup(_ group: String, interface: String? = nil) throws {
        try changeMembership(group, interface: interface, join: false)
    }

    /// Whether this socket's own multicast datagrams are looped back to the host's members, itself included
    /// (`IP_MULTICAST_LOOP` / `IPV6_MULTICAST_LOOP`; on by default).
    public func setMulticastLoopback(_ enabled: Bool) throws {
        let fd = try openDescriptor("setsockopt")
        let family = try ipFamily("setMulticastLoopback(_:)")
        _ = try Syscall.call("setsockopt", detail: family == AF_INET ? "IP_MULTICAST_LOOP" : "IPV6_MULTICAST_LOOP") {
            as_set_multicast_loop(fd, family, enabled ? 1 : 0)
        }
    }

    /// How many hops this socket's multicast datagrams travel (`IP_MULTICAST_TTL` / `IPV6_MULTICAST_HOPS`; 1
    /// by default: the local network only). 0 keeps them on this host.
    /// - Throws: ``SocketError`` with `EINVAL` outside 0...255.
    public func setMulticastHops(_ hops: Int) throws {
        guard (0...255).contains(hops) else {
            throw SocketError.invalidArgument("setMulticastHops(_:)", "hops must be in 0...255, got \(hops)")
        }
        let fd = try openDescriptor("setsockopt")
        let family = try ipFamily("setMulticastHops(_:)")
        _ = try Syscall.call("setsockopt", detail: family == AF_INET ? "IP_MULTICAST_TTL" : "IPV6_MULTICAST_HOPS") {
            as_set_multicast_hops(fd, family, Int32(hops))
        }
    }

    /// The interface this socket sends multicast datagrams from (`IP_MULTICAST_IF` / `IPV6_MULTICAST_IF`);
    /// `nil` goes back to choosing by route.
    /// - Throws: ``SocketError`` with `EINVAL` for an unknown interface.
    public func setMulticastInterface(_ interface: String?) throws {
        let fd = try openDescriptor("setsockopt")
        let family = try ipFamily("setMulticastInterface(_:)")
        let index = try Self.interfaceIndex(interface, "setMulticastInterface(_:)")
        _ = try Syscall.call("setsockopt", detail: family == AF_INET ? "IP_MULTICAST_IF \(interface ?? "any")" : "IPV6_MULTICAST_IF \(interface ?? "any")") {
            as_set_multicast_interface(fd, family, index)
        }
    }

    private func changeMembership(_ group: String, interface: String?, join: Bool) throws {
        let operation = join ? "joinMulticastGroup" : "leaveMulticastGroup"
        let fd = try openDescriptor(operation)
        let address: SocketAddress
        do {
            address = try SocketAddress(numericHost: group, port: 0)
        } catch {
            throw SocketError.invalidArgument(operation, "\(group.debugDescription) is not a numeric IPv4 or IPv6 address")
        }
        let index = try Self.interfaceIndex(interface, operation)
        let detail = "group \(group)" + (interface.map { " on \($0)" } ?? "")
        var bytes: [UInt8]
        switch address.storage {
        case .ipv4(let raw, _):
            guard UInt32(bigEndian: raw) >> 28 == 0xE else {
                throw SocketError.invalidArgument(operation, "\(group) is not an IPv4 multicast address (224.0.0.0/4)")
            }
            bytes = withUnsafeBytes(of: raw) { Array($0) }
        case .ipv6(let high, let low, _, _):
            bytes = withUnsafeBytes(of: high) { Array($0) } + withUnsafeBytes(of: low) { Array($0) }
            guard bytes[0] == 0xFF else {
                throw SocketError.invalidArgument(operation, "\(group) is not an IPv6 multicast address (ff00::/8)")
            }
        case .unix:
            throw SocketError.invalidArgument(operation, "\(group) is not an IP address")
        }
        guard address.family == family else {
            throw SocketError(code: EAFNOSUPPORT, operation: operation, detail: "\(detail): an \(address.family) group on an \(family) socket")
        }
        let family = address.family.rawValue
        _ = try Syscall.call(operation, detail: detail) {
            bytes.withUnsafeBytes { as_multicast_membership(fd, family, join ? 1 : 0, $0.baseAddress, index) }
        }
    }

    private func ipFamily(_ operation: String) throws -> Int32 {
        guard family != .unix else {
            throw SocketError(code: EOPNOTSUPP, operation: operation, detail: "multicast needs a UDP socket")
        }
        return family.rawValue
    }

    private static func interfaceIndex(_ interface: String?, _ operation: String) throws -> UInt32 {
        guard let interface else { return 0 }
        if interface.utf8.contains(0) {
            throw SocketError.invalidArgument(operation, "the interface name contains a NUL byte: \(interface.debugDescription)")
        }
        let index = if_nametoindex(interface)
        guard index != 0 else {
            throw SocketError.invalidArgument(operation, "unknown interface \(interface.debugDescription)")
        }
        return index
    }
}
