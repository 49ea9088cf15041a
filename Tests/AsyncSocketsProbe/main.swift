// AsyncSocketsProbe: scenarios the tests run in a child process, typically inside namespaces of their own
// (`unshare --net --mount`), where the test process itself cannot go. Not an example: test support.
//
//   AsyncSocketsProbe stalled-dns COUNT
//     Binds UDP 127.0.0.1:53 and never answers (point /etc/resolv.conf at 127.0.0.1 first), starts COUNT
//     connects to names that need DNS and cancels them after 200 ms, then connects to `localhost` (timeout
//     1 s) and to another DNS name (timeout 500 ms). Prints one line per step: `localhost ok MS`, then
//     `stuck ETIMEDOUT MS` (or the error), with the milliseconds each took.

import AsyncSockets
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

func line(_ text: String) {
    let bytes = Array((text + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
}

func milliseconds(since start: ContinuousClock.Instant) -> Int {
    let elapsed = ContinuousClock.now - start
    return Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
}

/// A UDP socket on 127.0.0.1:53 that never reads: queries to it get no answer (and no ICMP refusal).
func silentDNS() -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(53).bigEndian
    address.sin_addr.s_addr = in_addr_t(0x7f00_0001).bigEndian
    let rc = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    if fd < 0 || rc != 0 {
        line("cannot bind UDP 127.0.0.1:53: errno \(errno)")
        exit(1)
    }
    return fd
}

func stalledDNS(count: Int) async -> Int32 {
    let dns = silentDNS()
    defer { close(dns) }
    let server: AsyncServer
    do { server = try AsyncServer(host: "127.0.0.1", port: 0) } catch {
        line("server: \(error)")
        return 1
    }
    let port = server.localAddress.port!
    let stuck = (0..<count).map { n in
        Task { try await AsyncSocket.connect(to: Endpoint(host: "stuck-\(n).example", port: 80)) }
    }
    try? await Task.sleep(for: .milliseconds(200))
    for task in stuck { task.cancel() }
    for task in stuck { _ = try? await task.value }

    var start = ContinuousClock.now
    do {
        let socket = try await AsyncSocket.connect(to: Endpoint(host: "localhost", port: port), timeout: .seconds(1))
        line("localhost ok \(milliseconds(since: start))")
        await socket.close()
    } catch {
        line("localhost failed \(milliseconds(since: start)): \(error)")
    }
    start = ContinuousClock.now
    do {
        let socket = try await AsyncSocket.connect(to: Endpoint(host: "stuck-late.example", port: 80), timeout: .milliseconds(500))
        line("stuck connected \(milliseconds(since: start))")
        await socket.close()
    } catch let error as SocketError where error.isTimeout {
        line("stuck ETIMEDOUT \(milliseconds(since: start))")
    } catch {
        line("stuck failed \(milliseconds(since: start)): \(error)")
    }
    server.close()
    return 0
}

let arguments = CommandLine.arguments
if arguments.count == 3, arguments[1] == "stalled-dns", let count = Int(arguments[2]) {
    exit(await stalledDNS(count: count))
}
line("usage: AsyncSocketsProbe stalled-dns COUNT")
exit(2)
