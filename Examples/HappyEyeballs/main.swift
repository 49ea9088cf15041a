// HappyEyeballs: watch `AsyncSocket.withConnection(to:)` race its connection attempts (RFC 8305, "Happy Eyeballs").
//
//     swift run HappyEyeballs HOST PORT [--delay MS] [--timeout MS] [--all-errors]
//
// It resolves HOST with the system resolver (IPv4 and IPv6), orders the addresses (first address first,
// then the families alternate), and races connection attempts: the next attempt starts when the previous one
// fails or after --delay milliseconds (default 250), whichever comes first; the first to connect wins and
// the others are cancelled. Every step is printed as it happens, in milliseconds since the call began:
//
//        0.4 ms  resolved: [2001:db8::1]:443, 192.0.2.1:443
//        0.4 ms  #1 [2001:db8::1]:443  started
//      250.9 ms  #2 192.0.2.1:443  started
//      262.3 ms  #2 192.0.2.1:443  won
//      262.5 ms  #1 [2001:db8::1]:443  cancelled
//     connected to 192.0.2.1:443 from 192.0.2.7:50112 in 262.6 ms
//
// --timeout MS bounds each attempt (it then fails with ETIMEDOUT, which also starts the next attempt at once).
// When every attempt fails, the error of the last address is printed; with --all-errors, every attempt's error.
//
// Try it against anything listening, for example:
//     python3 -m http.server --bind 127.0.0.1 8000 &  swift run HappyEyeballs localhost 8000
//     swift run HappyEyeballs localhost 9 --all-errors          (nothing listens on port 9: every attempt refused)
//     swift run HappyEyeballs example.com 443 --delay 100       (a dual-stack host, when this machine has a network)
//
// The timeline comes from the `observer:` overload of `withConnection` (and of `connect`), which reports each
// ConnectionRaceEvent; the winner's addresses are read in the body, on the event loop, before the socket is
// closed.

import AsyncSockets

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

let usage = "usage: HappyEyeballs HOST PORT [--delay MS] [--timeout MS] [--all-errors]"

/// Prints `message` and the usage line to standard error, and exits with status 2.
func fail(_ message: String) -> Never {
    var standardError = StandardError()
    print("HappyEyeballs: \(message)\n\(usage)", to: &standardError)
    exit(2)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        var bytes = Array(string.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
            if written <= 0 { return }
            bytes = bytes.dropFirst(written)
        }
    }
}

/// The command line: HOST PORT and the options, parsed by hand.
struct Options {
    var host = ""
    var port: UInt16 = 0
    var delay: Duration = .milliseconds(250)
    var timeout: Duration?
    var allErrors = false

    init(_ arguments: [String]) {
        var positional: [String] = []
        var rest = arguments[...]
        func milliseconds(_ option: String) -> Duration {
            guard let text = rest.popFirst() else { fail("\(option) needs a number of milliseconds") }
            guard let value = Int(text), value >= 0 else { fail("\(option): \"\(text)\" is not a number of milliseconds") }
            return .milliseconds(value)
        }
        while let argument = rest.popFirst() {
            switch argument {
            case "--delay": delay = milliseconds(argument)
            case "--timeout": timeout = milliseconds(argument)
            case "--all-errors": allErrors = true
            case "-h", "--help":
                print(usage)
                exit(0)
            default:
                if argument.hasPrefix("--") { fail("unknown option \(argument)") }
                positional.append(argument)
            }
        }
        guard positional.count == 2 else { fail("expected HOST and PORT") }
        host = positional[0]
        guard let port = UInt16(positional[1]) else { fail("\"\(positional[1])\" is not a port (0-65535)") }
        self.port = port
    }
}

/// `12.3 ms`.
func milliseconds(_ duration: Duration) -> String {
    let tenths = (Double(duration.components.seconds) * 10_000 + Double(duration.components.attoseconds) / 1e14).rounded()
    return "\(Int(tenths) / 10).\(Int(tenths) % 10) ms"
}

let options = Options(Array(CommandLine.arguments.dropFirst()))
let start = ContinuousClock.now
do {
    let summary = try await AsyncSocket.withConnection(
        to: Endpoint(host: options.host, port: options.port), timeout: options.timeout,
        allErrors: options.allErrors, happyEyeballsDelay: options.delay, observer: { event in print(event) }
    ) { socket in
        let elapsed = ContinuousClock.now - start
        let remote = (try? socket.remoteAddress).map(\.description) ?? "?"
        let local = (try? socket.localAddress).map(\.description) ?? "?"
        return "connected to \(remote) from \(local) in \(milliseconds(elapsed))"
    }
    print(summary)
} catch let group as ConnectErrorGroup {
    print(group)
    exit(1)
} catch {
    print("failed after \(milliseconds(ContinuousClock.now - start)): \(error)")
    exit(1)
}
