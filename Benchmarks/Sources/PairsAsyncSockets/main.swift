// In-process multi-loop benchmark: N socket pairs (default 64) each ping-pong 64 bytes, both ends of a pair
// on one loop, pairs spread round-robin over a group of L loops; each side runs inside `loop.run { … }`.
// Prints one JSON line: total round trips/s over the measured window.
//   PairsAsyncSockets [--pairs 64] [--loops L] [--size 64] [--seconds D] [--warmup W]
import AsyncSockets
import BenchSupport
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// This process's CPU time (user + system), in seconds.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

var options = (pairs: 64, loops: 1, size: 64, seconds: 2.0, warmup: 0.5)
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    guard let value = arguments.popFirst() else { fail("\(argument) needs a value") }
    switch argument {
    case "--pairs": options.pairs = Int(value) ?? options.pairs
    case "--loops": options.loops = Int(value) ?? options.loops
    case "--size": options.size = Int(value) ?? options.size
    case "--seconds": options.seconds = Double(value) ?? options.seconds
    case "--warmup": options.warmup = Double(value) ?? options.warmup
    default: fail("unknown argument \(argument)")
    }
}
let (pairs, loops, size, seconds, warmup) = options

let group = EventLoopGroup(loopCount: loops)
let counted = Atomic<Int>(0)
let measuring = Atomic<Bool>(false)
let stopping = Atomic<Bool>(false)
let message = [UInt8](repeating: 7, count: size)

try await withThrowingTaskGroup(of: Void.self) { tasks in
    for index in 0..<pairs {
        let loop = group.loops[index % loops]
        let (a, b) = try AsyncSocket.pair(on: loop)
        tasks.addTask(executorPreference: loop) {
            var buffer: [UInt8] = []
            buffer.reserveCapacity(65536)
            while true {
                buffer.removeAll(keepingCapacity: true)
                if try await b.read(into: &buffer, upTo: 65536) == 0 { break }
                try await b.write(buffer)
            }
            await b.close()
        }
        tasks.addTask(executorPreference: loop) {
            var buffer: [UInt8] = []
            buffer.reserveCapacity(size)
            var local = 0
            while !stopping.load(ordering: .relaxed) {
                try await a.write(message)
                buffer.removeAll(keepingCapacity: true)
                while buffer.count < size {
                    if try await a.read(into: &buffer, upTo: size - buffer.count) == 0 { fail("echo side closed") }
                }
                if measuring.load(ordering: .relaxed) { local += 1 }
                if local == 256 { counted.add(local, ordering: .relaxed); local = 0 }
            }
            counted.add(local, ordering: .relaxed)
            try await a.shutdown(.write)
        }
    }
    try await Task.sleep(for: .milliseconds(Int(warmup * 1000)))
    measuring.store(true, ordering: .relaxed)
    let cpuStart = processCPUSeconds()
    let start = nowNanoseconds()
    try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
    let done = counted.load(ordering: .relaxed)
    let elapsed = Double(nowNanoseconds() - start) / 1e9
    let cpu = processCPUSeconds() - cpuStart
    stopping.store(true, ordering: .relaxed)
    try await tasks.waitForAll()
    print("{\"scenario\":\"pairs\",\"pairs\":\(pairs),\"loops\":\(loops),\"size\":\(size),\"seconds\":\(elapsed),\"value\":\(Double(done) / elapsed),\"unit\":\"rt/s\",\"cpu_s\":\(cpu),\"cpu_us_per_rt\":\(cpu / Double(done) * 1e6)}")
}
