#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension AsyncSocket {
    /// Python's `socket.create_connection`, made concurrent: resolves `endpoint` and races connection attempts
    /// to its addresses Happy Eyeballs style (RFC 8305); the first to connect wins.
    ///
    /// 1. `resolver` returns the candidate addresses (``SystemResolver``: IPv4 and IPv6 from
    ///    `getaddrinfo`; a numeric host needs no lookup).
    /// 2. They are ordered as RFC 8305 section 4 asks: the resolver's first address first, then the families
    ///    alternate (IPv6, IPv4, IPv6, … or the reverse when the first address is IPv4).
    /// 3. The first attempt starts; the next starts when `happyEyeballsDelay` passes or as soon as the
    ///    running attempt fails, whichever is first, so attempts overlap. The first attempt to connect wins;
    ///    every other attempt is cancelled and its descriptor closed before this returns. Attempts are child
    ///    tasks of a task group: nothing outlives the call.
    ///
    /// - Parameters:
    ///   - endpoint: host name or numeric address, and port.
    ///   - timeout: bounds the whole call, resolution included: a lookup still running then fails with
    ///     ``SocketError`` `ETIMEDOUT` (operation `"resolve"`), an attempt still connecting with `ETIMEDOUT`
    ///     (operation `"connect"`). It becomes the returned socket's ``timeout`` for later reads and writes.
    ///     `nil`: wait as long as the system does. (A custom `resolver` must return promptly when cancelled
    ///     for the bound to hold; ``SystemResolver`` does.)
    ///   - sourceAddress: binds each attempt's socket to this numeric address first; host `""` means any
    ///     address, port 0 an ephemeral port. An attempt whose family it cannot serve fails with `EAFNOSUPPORT`
    ///     while the others go on. A host that is neither `""` nor a numeric address throws `EINVAL` before
    ///     any lookup. (A fixed port with several attempts of one family makes the later ones fail with
    ///     `EADDRINUSE` while an earlier one still holds it: use port 0 unless you need a given port.)
    ///   - allErrors: when every attempt fails, throw a ``ConnectErrorGroup`` with one error per attempted
    ///     address (in attempt order) instead of the last address's error. Every attempt's error is a
    ///     ``SocketError`` whose ``SocketError/address`` is the address that attempt connected to (a failure
    ///     to bind the source address is reported as a `connect` error to that address, naming the source).
    ///   - happyEyeballsDelay: how long an attempt runs before the next one starts alongside it
    ///     (RFC 8305's Connection Attempt Delay; 250 ms by default).
    ///   - resolver: where addresses come from.
    ///   - multipath: create each attempt's socket with `IPPROTO_MPTCP` (Multipath TCP). Where the kernel
    ///     refuses it, the attempt uses plain TCP silently, as Go does; so does the connection when the server
    ///     does not speak MPTCP. ``isMultipath`` tells which it became.
    /// - Throws: the resolver's error; ``SocketError`` `ENOENT` (operation `"resolve"`) when it finds no
    ///   address; the ``SocketError`` of the last address in attempt order (not necessarily the last to fail)
    ///   or a ``ConnectErrorGroup``; `CancellationError`.
    public static func connect(to endpoint: Endpoint, timeout: Duration? = nil, sourceAddress: Endpoint? = nil,
                               allErrors: Bool = false, happyEyeballsDelay: Duration = .milliseconds(250),
                               resolver: any AddressResolver = SystemResolver(),
                               multipath: Bool = false) async throws -> AsyncSocket {
        try await HappyEyeballs(endpoint: endpoint, timeout: timeout, sourceAddress: sourceAddress, allErrors: allErrors,
                                delay: happyEyeballsDelay, resolver: resolver, observer: nil, multipath: multipath).run()
    }

    /// ``connect(to:timeout:sourceAddress:allErrors:happyEyeballsDelay:resolver:multipath:)``, reporting every step of
    /// the race to `observer` (called on the connecting task, in order): resolution, each attempt's start,
    /// failure, win or cancellation, with the time since the call began.
    public static func connect(to endpoint: Endpoint, timeout: Duration? = nil, sourceAddress: Endpoint? = nil,
                               allErrors: Bool = false, happyEyeballsDelay: Duration = .milliseconds(250),
                               resolver: any AddressResolver = SystemResolver(), multipath: Bool = false,
                               observer: @escaping @Sendable (ConnectionRaceEvent) -> Void) async throws -> AsyncSocket {
        try await HappyEyeballs(endpoint: endpoint, timeout: timeout, sourceAddress: sourceAddress, allErrors: allErrors,
                                delay: happyEyeballsDelay, resolver: resolver, observer: observer, multipath: multipath).run()
    }
}

/// RFC 8305 address ordering: keep the first address, then alternate families.
func interleaveFamilies(_ addresses: [SocketAddress]) -> [SocketAddress] {
    guard let first = addresses.first else { return [] }
    var primary: [SocketAddress] = []
    var secondary: [SocketAddress] = []
    for address in addresses {
        if address.family == first.family { primary.append(address) } else { secondary.append(address) }
    }
    var result: [SocketAddress] = []
    result.reserveCapacity(addresses.count)
    var p = primary.makeIterator()
    var s = secondary.makeIterator()
    while true {
        let a = p.next()
        let b = s.next()
        if a == nil && b == nil { break }
        if let a { result.append(a) }
        if let b { result.append(b) }
    }
    return result
}

/// One Happy Eyeballs race (trio's `open_tcp_stream`, as a task group).
struct HappyEyeballs {
    let endpoint: Endpoint
    let timeout: Duration?
    let sourceAddress: Endpoint?
    let allErrors: Bool
    let delay: Duration
    let resolver: any AddressResolver
    let observer: (@Sendable (ConnectionRaceEvent) -> Void)?
    let multipath: Bool
    private let start = ContinuousClock.now

    init(endpoint: Endpoint, timeout: Duration?, sourceAddress: Endpoint?, allErrors: Bool, delay: Duration,
         resolver: any AddressResolver, observer: (@Sendable (ConnectionRaceEvent) -> Void)?, multipath: Bool = false) {
        self.endpoint = endpoint
        self.timeout = timeout
        self.sourceAddress = sourceAddress
        self.allErrors = allErrors
        self.delay = delay
        self.resolver = resolver
        self.observer = observer
        self.multipath = multipath
    }

    private enum Outcome: Sendable {
        case connected(Int, AsyncSocket)
        case failed(Int, any Error)
        case delayElapsed(Int)
    }

    private func report(_ kind: ConnectionRaceEvent.Kind, _ attempt: Int? = nil, _ address: SocketAddress? = nil,
                        addresses: [SocketAddress] = []) {
        observer?(ConnectionRaceEvent(kind: kind, address: address, attempt: attempt, addresses: addresses,
                                      elapsed: ContinuousClock.now - start))
    }

    func run() async throws -> AsyncSocket {
        if endpoint.host.utf8.contains(0) {
            throw SocketError.invalidArgument("connect", "the host contains a NUL byte: \(endpoint.host.debugDescription)")
        }
        guard delay >= .zero else {
            throw SocketError.invalidArgument("connect", "happyEyeballsDelay must not be negative, got \(delay)")
        }
        let sources = try sourceAddresses()
        try Task.checkCancellation()
        // `timeout` bounds the whole call: resolution, then every attempt, end by this deadline.
        let deadline = timeout.map { Deadline.after($0) }
        let resolved = try await resolver.resolve(endpoint, before: deadline, timeout: timeout)
        try Task.checkCancellation()
        guard !resolved.isEmpty else {
            throw SocketError(code: ENOENT, operation: "resolve", detail: "no addresses found for \(endpoint)")
        }
        let targets = interleaveFamilies(resolved)
        report(.resolved, addresses: targets)
        let timeout = self.timeout
        // `Task.sleep(for:)` traps on a duration that does not fit its clock in nanoseconds: a longer delay
        // than this is "never" in practice (the next attempt still starts when the running one fails).
        let delay = min(self.delay, Self.longestDelay)
        let multipath = self.multipath

        return try await withThrowingTaskGroup(of: Outcome.self) { group in
            var started = 0
            var errors: [(Int, any Error)] = []
            var winner: AsyncSocket?

            func startNext() {
                let index = started
                started += 1
                let target = targets[index]
                report(.started, index, target)
                let source = sources[target.family]
                group.addTask {
                    do {
                        let socketSource: SocketAddress?
                        switch source {
                        case .none: socketSource = nil
                        case .some(.success(let address)): socketSource = address
                        case .some(.failure(let error)):
                            throw SocketError(code: error.code, operation: "connect", address: target, detail: error.detail)
                        }
                        do {
                            let socket = try await AsyncSocket.connect(to: target, timeout: timeout, sourceAddress: socketSource,
                                                                       multipath: multipath, deadline: deadline)
                            return .connected(index, socket)
                        } catch let error as SocketError where error.operation == "bind" {
                            // Name the attempt's address, as every other attempt error does.
                            throw SocketError(code: error.code, operation: "connect", address: target,
                                              detail: "binding the source address \(error.address.map(\.description) ?? "?") failed: \(error.reason)")
                        }
                    } catch {
                        return .failed(index, error)
                    }
                }
                if started < targets.count {
                    group.addTask {
                        try? await Task.sleep(for: delay)
                        return .delayElapsed(index)
                    }
                }
            }

            // Once the deadline has passed, no further attempt starts (the running ones time out with it).
            func expired() -> Bool { deadline.map { $0.remainingMicroseconds == 0 } ?? false }

            startNext()
            while winner == nil, errors.count < started || (started < targets.count && !expired()),
                  let outcome = try await group.next() {
                switch outcome {
                case .connected(let index, let socket):
                    winner = socket
                    report(.won, index, targets[index])
                case .failed(let index, let error):
                    if error is CancellationError {
                        report(.cancelled, index, targets[index])
                    } else {
                        report(.failed(error), index, targets[index])
                    }
                    errors.append((index, error))
                    // The running attempt failed: start the next one now instead of waiting for the delay.
                    if index == started - 1, started < targets.count, !Task.isCancelled, !expired() { startNext() }
                case .delayElapsed(let index):
                    if index == started - 1, started < targets.count, !Task.isCancelled, !expired() { startNext() }
                }
                if Task.isCancelled { break }
            }

            // Cancel the losers and the timers, and close any socket that connected after the winner.
            group.cancelAll()
            while let outcome = try await group.next() {
                switch outcome {
                case .connected(let index, let socket):
                    if let winner, winner === socket { continue }
                    await socket.close()
                    report(.cancelled, index, targets[index])
                case .failed(let index, let error):
                    report(error is CancellationError ? .cancelled : .failed(error), index, targets[index])
                    errors.append((index, error))
                case .delayElapsed:
                    break
                }
            }

            if let winner {
                if Task.isCancelled {
                    await winner.close()
                    throw CancellationError()
                }
                return winner
            }
            if Task.isCancelled { throw CancellationError() }
            let ordered = errors.sorted { $0.0 < $1.0 }.map(\.1)
            if allErrors {
                throw ConnectErrorGroup(errors: ordered, endpoint: endpoint)
            }
            throw ordered.last ?? SocketError(code: ECONNREFUSED, operation: "connect", detail: "\(endpoint)")
        }
    }

    /// The longest Happy Eyeballs delay actually slept (about 136 years): longer ones are clamped to it.
    static let longestDelay = Duration.seconds(Int64(1) << 32)

    /// The source address per family, or the error an attempt of that family fails with (the attempt
    /// reports it as a `connect` error to its own address). Throws `EINVAL` for a host that is neither `""`
    /// nor numeric: no attempt could use it, so the call fails before any lookup.
    private func sourceAddresses() throws -> [SocketFamily: Result<SocketAddress, SocketError>] {
        guard let sourceAddress else { return [:] }
        var result: [SocketFamily: Result<SocketAddress, SocketError>] = [:]
        if sourceAddress.host.isEmpty {
            result[.ipv4] = .success(try SocketAddress(ipv4: "0.0.0.0", port: sourceAddress.port))
            result[.ipv6] = .success(try SocketAddress(ipv6: "::", port: sourceAddress.port))
            return result
        }
        guard let address = try? SocketAddress(numericHost: sourceAddress.host, port: sourceAddress.port) else {
            throw SocketError.invalidArgument("connect", "the source address \(sourceAddress) must be a numeric IPv4 or IPv6 address, or \"\" for any")
        }
        result[address.family] = .success(address)
        let other: SocketFamily = address.family == .ipv4 ? .ipv6 : .ipv4
        result[other] = .failure(SocketError(code: EAFNOSUPPORT, operation: "bind", address: address,
                                             detail: "the source address \(address) is \(address.family) and cannot serve an \(other) attempt"))
        return result
    }
}
