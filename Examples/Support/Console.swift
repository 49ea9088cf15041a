// Console: the few lines of terminal plumbing every example needs (print at once, fail with a message,
// stop on Ctrl-C). Not part of the library: the examples share it so each of them shows only what it is about.

import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The program's name, as the examples prefix their error messages with it (`EchoServer: ...`).
public let programName: String = {
    let path = CommandLine.arguments.first ?? "example"
    return String(path.split(separator: "/").last ?? Substring(path))
}()

/// Prints a line and flushes stdout at once (`fflush(nil)` flushes every output stream), so a script
/// reading our output through a pipe sees the line immediately. It may block on a full pipe: servers that
/// print while they run use a ``Logger`` instead.
public func printLine(_ line: String) {
    print(line)
    fflush(nil)
}

/// Writes `programName: message` on standard error and exits with `status` (2, a usage error, by default).
public func fail(_ message: String, status: Int32 = 2) -> Never {
    writeAll(2, "\(programName): \(message)\n")
    exit(status)
}

/// Writes all of `text` to `descriptor`, blocking until it is written (or the descriptor fails).
public func writeAll(_ descriptor: Int32, _ text: String) {
    let bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        offset += n
    }
}

/// Calls `action` on SIGINT (Ctrl-C) and SIGTERM instead of their default of ending the process at once,
/// so that a server can close and let its handlers finish. Keep the returned sources alive while it
/// matters and cancel them afterwards. `action` runs on a Dispatch thread, never on an event loop:
/// `AsyncServer.close()` and `DatagramSocket.close()` are safe to call from there.
public func onTermination(_ action: @escaping @Sendable () -> Void) -> [any DispatchSourceSignal] {
    [SIGINT, SIGTERM].map { number in
        signal(number, SIG_IGN)  // delivered to the source instead
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler(handler: action)
        source.resume()
        return source
    }
}
