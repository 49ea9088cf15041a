// Shared harness for the client-side ping-pong benchmarks: options, message pattern, latency
// statistics and the result line. The per-connection loops live in each client executable so that
// every library is driven by straight-line code written against its own API.
//
// Every client has the load generator's CLI and output:
//   PingX --port P [--conns N] [--size S] [--seconds D] [--warmup W] [--scenario pingpong]
// and prints one JSON line with the same keys as loadgen (value = round trips/s).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public struct PingOptions: Sendable {
    public var port: UInt16 = 0
    public var conns = 1
    public var size = 64
    public var seconds = 5.0
    public var warmup = 0.5
    public var flags: Set<String> = []

    public init(arguments: [String] = CommandLine.arguments) {
        var i = 1
        while i < arguments.count {
            let a = arguments[i]
            if a.hasPrefix("--"), i + 1 < arguments.count, !arguments[i + 1].hasPrefix("--") {
                let v = arguments[i + 1]
                switch a {
                case "--port": port = UInt16(v) ?? 0
                case "--conns": conns = Int(v) ?? 1
                case "--size": size = Int(v) ?? 64
                case "--seconds": seconds = Double(v) ?? 5
                case "--warmup": warmup = Double(v) ?? 0.5
                case "--scenario", "--host": break  // pingpong on 127.0.0.1 only
                default: fail("unknown option \(a)")
                }
                i += 2
            } else {
                flags.insert(a)
                i += 1
            }
        }
        if port == 0 && !flags.contains("--in-process") { fail("--port is required") }
    }
}

/// Monotonic nanoseconds.
@inline(__always)
public func nowNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Pseudo-random bytes; connection `c`'s message in round `r` is `bytes[offset(c, r) ..< offset + size]`.
public struct Pattern: Sendable {
    public let bytes: [UInt8]
    public let size: Int

    public init(size: Int) {
        self.size = size
        var x: UInt32 = 12345
        bytes = (0..<(size + 1024)).map { _ in
            x ^= x << 13; x ^= x >> 17; x ^= x << 5
            return UInt8(truncatingIfNeeded: x >> 11)
        }
    }

    @inline(__always)
    public func message(connection: Int, round: Int) -> ArraySlice<UInt8> {
        let offset = (connection &* 13 &+ round &* 7) % 1024
        return bytes[offset ..< offset + size]
    }
}

/// Whether `received[from..<from+count]` equals `expected[from..<from+count]` (memcmp, no allocation).
@inline(__always)
public func bytesEqual(_ received: UnsafeRawBufferPointer, _ expected: ArraySlice<UInt8>, at offset: Int) -> Bool {
    expected.withUnsafeBytes { e in
        memcmp(received.baseAddress!, e.baseAddress! + offset, received.count) == 0
    }
}

/// The measurement window, shared by all connections.
public struct Window: Sendable {
    public let start: UInt64
    public let end: UInt64
    public init(_ options: PingOptions) {
        let now = nowNanoseconds()
        start = now + UInt64(options.warmup * 1e9)
        end = start + UInt64(options.seconds * 1e9)
    }
}

/// One connection's latencies (ns) inside the window.
public struct Samples: Sendable {
    public var latencies: [UInt64] = []
    public init() { latencies.reserveCapacity(1 << 16) }
}

public func fail(_ message: String) -> Never {
    let clean = message.replacingAll("\"", with: "'")
    print("{\"error\":\"\(clean)\",\"scenario\":\"pingpong\"}")
    fflush(nil)
    exit(1)
}

extension String {
    fileprivate func replacingAll(_ a: Character, with b: String) -> String {
        var s = ""
        for c in self { if c == a { s += b } else { s.append(c) } }
        return s
    }
}

/// Prints the result line (same keys as loadgen's pingpong result).
public func report(_ options: PingOptions, samples: [Samples], startedAt: UInt64, extra: String = "") {
    var all = samples.flatMap(\.latencies)
    all.sort()
    func percentile(_ q: Double) -> Double {
        guard !all.isEmpty else { return 0 }
        let i = min(all.count - 1, Int(q * Double(all.count)))
        return Double(all[i]) / 1000
    }
    let mean = all.isEmpty ? 0 : Double(all.reduce(0, &+)) / Double(all.count) / 1000
    var ru = rusage()
    getrusage(RUSAGE_SELF.rawValue, &ru)
    let user = Double(ru.ru_utime.tv_sec) + Double(ru.ru_utime.tv_usec) * 1e-6
    let sys = Double(ru.ru_stime.tv_sec) + Double(ru.ru_stime.tv_usec) * 1e-6
    let wall = Double(nowNanoseconds() - startedAt) * 1e-9
    func f(_ v: Double, _ digits: Int = 1) -> String {
        let scale = [1, 10, 100, 1000][digits]
        let n = Int((v * Double(scale)).rounded())
        let fraction = String(abs(n % scale))
        return "\(n < 0 ? "-" : "")\(abs(n) / scale)" + (digits == 0 ? "" : "." + String(repeating: "0", count: digits - fraction.count) + fraction)
    }
    let ops = all.count
    print("{\"scenario\":\"pingpong\",\"conns\":\(options.conns),\"size\":\(options.size),\"seconds\":\(f(options.seconds, 3)),"
          + "\"value\":\(f(Double(ops) / options.seconds)),\"unit\":\"rt/s\",\"ops\":\(ops),"
          + "\"p50_us\":\(f(percentile(0.5))),\"p99_us\":\(f(percentile(0.99))),\"mean_us\":\(f(mean)),\(extra)"
          + "\"errors\":0,\"cpu_user_s\":\(f(user, 3)),\"cpu_sys_s\":\(f(sys, 3)),\"wall_s\":\(f(wall, 3)),"
          + "\"cpu_pct\":\(f(wall > 0 ? 100 * (user + sys) / wall : 0))}")
    fflush(nil)
}

/// This process's allocation-call count when it runs with `LD_PRELOAD=malloccount.so` and
/// `MALLOC_COUNT_FILE` set (see Benchmarks/malloccount); nil otherwise.
public func ownMallocCount() -> UInt64? {
    guard let path = getenv("MALLOC_COUNT_FILE") else { return nil }
    let fd = open(path, O_RDONLY)
    if fd < 0 { return nil }
    defer { close(fd) }
    var value: UInt64 = 0
    let n = withUnsafeMutableBytes(of: &value) { pread(fd, $0.baseAddress, 8, 0) }
    return n == 8 ? value : nil
}

/// Runs an in-process ping-pong: `roundTrip(round)` performs one verified round trip. The window and the
/// malloc count are taken by this loop, so it reports round trips/s and allocation calls per round trip.
public func runInProcessPingPong(_ options: PingOptions, startedAt: UInt64,
                                 isolation: isolated (any Actor)? = #isolation,
                                 roundTrip: (Int) async throws -> Void) async throws {
    let window = Window(options)
    var samples = Samples()
    var round = 0
    var mallocs0: UInt64?
    var inWindow = false
    while true {
        let t0 = nowNanoseconds()
        try await roundTrip(round)
        let t1 = nowNanoseconds()
        if t1 >= window.end { break }
        if t1 >= window.start {
            if !inWindow {
                inWindow = true
                mallocs0 = ownMallocCount()
            } else {
                samples.latencies.append(t1 - t0)
            }
        }
        round += 1
    }
    var extra = ""
    if let m0 = mallocs0, let m1 = ownMallocCount(), !samples.latencies.isEmpty {
        let perRT = Double(m1 - m0) / Double(samples.latencies.count)
        extra = "\"mallocs_per_rt\":\(Double(Int(perRT * 1000)) / 1000),"
    }
    report(options, samples: [samples], startedAt: startedAt, extra: extra)
}
