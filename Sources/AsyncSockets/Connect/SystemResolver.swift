#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Resolves with the system's `getaddrinfo` (`AF_UNSPEC`, `SOCK_STREAM`): IPv4 and IPv6 addresses, in the
/// order the system prefers (RFC 6724 on glibc).
///
/// ## Why getaddrinfo on worker threads
/// `getaddrinfo` honours everything a user has configured: `/etc/hosts`, `nsswitch.conf` (mDNS, LDAP,
/// systemd-resolved), search domains and `gai.conf` address ordering. libevent's `evdns_getaddrinfo` reads
/// `resolv.conf` and `hosts` itself and skips nsswitch, and has known crashes with cancellation and concurrent
/// lookups (libevent#942, #1130, #1278). So lookups run on a pool of dedicated resolver threads, started
/// on demand: neither the event loop nor a thread of Swift's cooperative pool blocks while a lookup runs.
///
/// A numeric host (`"127.0.0.1"`, `"::1"`) is parsed without a lookup. Cancelling the waiting task returns
/// at once with `CancellationError`; the abandoned lookup finishes on its thread and is discarded.
///
/// ## Stalled lookups
/// `getaddrinfo` cannot be interrupted: a query to a DNS server that never answers keeps its thread until
/// the system's own timeout (`resolv.conf`'s `timeout` × `attempts`, 10 s by default). Such a thread no
/// longer counts once its caller has gone (cancelled, or `connect`'s `timeout` passed): later lookups get
/// new threads instead of queueing behind it. At most ``maximumThreads`` lookups whose callers still wait
/// run at once, and at most ``threadLimit`` threads exist in all (abandoned ones included); beyond that,
/// lookups queue.
public struct SystemResolver: AddressResolver {
    /// The most lookups that run at once for callers that still wait for them.
    public static let maximumThreads = 16

    /// The most resolver threads in all, including those still inside a lookup their caller abandoned.
    public static let threadLimit = 64

    /// The blocking lookup a resolver thread runs (``lookup(_:)`` unless a test injects a stand-in).
    let lookup: @Sendable (Endpoint) -> Result<[SocketAddress], any Error>
    /// The threads that run the lookups.
    let pool: ResolverPool

    /// Creates a resolver.
    public init() {
        self.init(pool: .shared, lookup: SystemResolver.lookup)
    }

    /// A resolver whose name lookups run `lookup` on `pool`'s threads (tests inject slow or failing lookups).
    init(pool: ResolverPool, lookup: @escaping @Sendable (Endpoint) -> Result<[SocketAddress], any Error>) {
        self.pool = pool
        self.lookup = lookup
    }

    /// The addresses of `endpoint`: numeric hosts at once, names through `getaddrinfo`.
    /// - Throws: ``SocketError`` with operation `"resolve"` (the `detail` carries `gai_strerror`'s text),
    ///   `EINVAL` for a host containing a NUL byte, or `CancellationError`.
    public func resolve(_ endpoint: Endpoint) async throws -> [SocketAddress] {
        if endpoint.host.utf8.contains(0) {
            throw SocketError.invalidArgument("resolve", "the host contains a NUL byte: \(endpoint.host.debugDescription)")
        }
        if let address = try? SocketAddress(numericHost: endpoint.host, port: endpoint.port) {
            return [address]
        }
        try Task.checkCancellation()
        let request = LookupRequest(endpoint: endpoint, lookup: lookup)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                request.start(continuation)
                pool.submit(request)
            }
        } onCancel: {
            request.finish(.failure(CancellationError()))
            pool.abandon(request)
        }
    }

    /// Runs `getaddrinfo` on the calling thread (blocking).
    ///
    /// No `AI_ADDRCONFIG`, as in Python's `create_connection`: with it glibc drops `::1` for `localhost` on a
    /// host whose only IPv6 address is the loopback one, so a server listening on `::1` alone became
    /// unreachable by name. An address of a family the host cannot reach fails its attempt at once
    /// (`ENETUNREACH`), which starts the next attempt without waiting for the Happy Eyeballs delay.
    ///
    /// An internationalised name is IDNA-encoded first, as Python's `socket` module does (see `IDNA`):
    /// `getaddrinfo` gets `xn--bcher-kva.example` for `bücher.example`. Errors name the host as given
    /// (and its encoding).
    static func lookup(_ endpoint: Endpoint) -> Result<[SocketAddress], any Error> {
        let encoded: String
        do {
            encoded = try IDNA.encode(endpoint.host)
        } catch {
            return .failure(SocketError.invalidArgument("resolve", "\(endpoint): \(error)"))
        }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let host = encoded.isEmpty ? nil : encoded
        let rc = getaddrinfo(host, String(endpoint.port), &hints, &list)
        guard rc == 0 else {
            let code: Int32 = rc == EAI_SYSTEM ? Syscall.lastError : (rc == EAI_NONAME ? ENOENT : EIO)
            let text = String(cString: gai_strerror(rc))
            let name = encoded == endpoint.host ? "\(endpoint)" : "\(endpoint) (\(encoded))"
            return .failure(SocketError(code: code, operation: "resolve", address: nil, detail: "\(name): \(text)"))
        }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddress] = []
        var node = list
        while let entry = node {
            if let raw = entry.pointee.ai_addr,
               let address = SocketAddress(sockaddr: raw, length: entry.pointee.ai_addrlen),
               !addresses.contains(address) {
                addresses.append(address)
            }
            node = entry.pointee.ai_next
        }
        return .success(addresses)
    }
}

/// One lookup: resumed exactly once, by the worker that finished it or by cancellation, whichever is first.
final class LookupRequest: Sendable {
    let endpoint: Endpoint
    /// The blocking lookup to run on a resolver thread.
    let lookup: @Sendable (Endpoint) -> Result<[SocketAddress], any Error>
    private let state = Locked<State>(.pending)

    enum State {
        case pending
        case waiting(CheckedContinuation<[SocketAddress], any Error>)
        case finished
    }

    init(endpoint: Endpoint, lookup: @escaping @Sendable (Endpoint) -> Result<[SocketAddress], any Error>) {
        self.endpoint = endpoint
        self.lookup = lookup
    }

    var isFinished: Bool {
        state.withLock { if case .finished = $0 { return true } else { return false } }
    }

    func start(_ continuation: CheckedContinuation<[SocketAddress], any Error>) {
        let early: Bool = state.withLock {
            if case .finished = $0 { return true }
            $0 = .waiting(continuation)
            return false
        }
        if early { continuation.resume(throwing: CancellationError()) }
    }

    func finish(_ result: Result<[SocketAddress], any Error>) {
        let continuation: CheckedContinuation<[SocketAddress], any Error>? = state.withLock { state in
            defer { state = .finished }
            if case .waiting(let continuation) = state { return continuation }
            return nil
        }
        continuation?.resume(with: result)
    }
}

/// Dedicated threads for blocking `getaddrinfo` calls; they sleep on a condition variable when idle.
///
/// A thread whose request was abandoned (its caller cancelled) while the lookup runs stops counting
/// against `maximumThreads`, so a lookup stuck in `getaddrinfo` never holds up later ones; `threadLimit`
/// bounds all threads, stuck ones included.
final class ResolverPool: Sendable {
    static let shared = ResolverPool()

    /// The most threads running lookups for callers that still wait.
    let maximumThreads: Int
    /// The most threads in all (abandoned lookups included).
    let threadLimit: Int

    /// A pool of at most `maximumThreads` working threads (and `threadLimit` in all), started on demand
    /// (tests make their own).
    init(maximumThreads: Int = SystemResolver.maximumThreads, threadLimit: Int = SystemResolver.threadLimit) {
        self.maximumThreads = max(1, maximumThreads)
        self.threadLimit = max(self.maximumThreads, threadLimit)
    }

    private struct State {
        var queue: [LookupRequest] = []
        /// Every thread of the pool, idle, working or stuck in an abandoned lookup.
        var threads = 0
        var idle = 0
        /// The requests whose lookup runs now; `true` once the caller abandoned it.
        var running: [ObjectIdentifier: Bool] = [:]
        /// Threads inside a lookup whose caller has gone: they do not count against `maximumThreads`.
        var abandoned = 0

        /// Whether a new thread should start for the queue.
        func needsThread(maximumThreads: Int, threadLimit: Int) -> Bool {
            queue.count > idle && threads - abandoned < maximumThreads && threads < threadLimit
        }
    }

    private let condition = Condition()
    private let state = Locked(State())

    /// How many threads wait for work now (for tests).
    var idleThreads: Int { state.withLock { $0.idle } }

    /// How many threads the pool has now, and how many of them are inside an abandoned lookup (for tests).
    var threadCounts: (all: Int, abandoned: Int) { state.withLock { ($0.threads, $0.abandoned) } }

    func submit(_ request: LookupRequest) {
        let startThread: Bool = condition.withLockSignalOne {
            state.withLock { state in
                state.queue.append(request)
                // Start a thread when the queue holds more requests than there are idle threads to take them.
                // (Checking `idle == 0` instead lost parallelism: an idle thread that had been signalled but
                // not yet woken still counted as idle, so a second request submitted right after the first
                // queued behind it, and waited for the whole first lookup.)
                if state.needsThread(maximumThreads: maximumThreads, threadLimit: threadLimit) {
                    state.threads += 1
                    return true
                }
                return false
            }
        }
        if startThread { start() }
    }

    /// The caller of `request` has gone (it is finished): drop it from the queue, or, when its lookup
    /// runs now, stop counting that thread, starting another for the queue if needed.
    func abandon(_ request: LookupRequest) {
        let startThread: Bool = condition.withLockSignalOne {
            state.withLock { state in
                let id = ObjectIdentifier(request)
                if let index = state.queue.firstIndex(where: { $0 === request }) {
                    state.queue.remove(at: index)
                    return false
                }
                guard state.running[id] == false else { return false }
                state.running[id] = true
                state.abandoned += 1
                if state.needsThread(maximumThreads: maximumThreads, threadLimit: threadLimit) {
                    state.threads += 1
                    return true
                }
                return false
            }
        }
        if startThread { start() }
    }

    private func start() {
        AsyncSockets.startThread(name: "AS-resolver") { [self] in work() }
    }

    private func work() {
        while true {
            var countedIdle = false
            let request: LookupRequest? = condition.waitFor {
                state.withLock { state -> LookupRequest?? in
                    if state.queue.isEmpty {
                        // More idle threads than could ever work at once: this one ends.
                        if state.idle >= maximumThreads {
                            if countedIdle { state.idle -= 1 }
                            state.threads -= 1
                            return .some(nil)
                        }
                        if !countedIdle {
                            state.idle += 1
                            countedIdle = true
                        }
                        return nil
                    }
                    if countedIdle { state.idle -= 1 }
                    let request = state.queue.removeFirst()
                    state.running[ObjectIdentifier(request)] = false
                    return .some(request)
                }
            }
            guard let request else { return }
            if !request.isFinished {
                request.finish(request.lookup(request.endpoint))
            }
            let exit: Bool = state.withLock { state in
                if state.running.removeValue(forKey: ObjectIdentifier(request)) == true { state.abandoned -= 1 }
                // Back from an abandoned lookup while the working threads are all taken: this one ends.
                if state.threads - state.abandoned > maximumThreads {
                    state.threads -= 1
                    return true
                }
                return false
            }
            if exit { return }
        }
    }
}
