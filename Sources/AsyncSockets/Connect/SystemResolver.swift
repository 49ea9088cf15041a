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
/// lookups (libevent#942, #1130, #1278). So lookups run on a small pool of dedicated resolver threads
/// (at most ``maximumThreads``, started on demand): neither the event loop nor a thread of Swift's
/// cooperative pool blocks while a lookup runs.
///
/// A numeric host (`"127.0.0.1"`, `"::1"`) is parsed without a lookup. Cancelling the waiting task returns
/// at once with `CancellationError`; the abandoned lookup finishes on its thread and is discarded.
public struct SystemResolver: AddressResolver {
    /// The most resolver threads that run lookups at once.
    public static let maximumThreads = 4

    /// Creates a resolver.
    public init() {}

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
        let request = LookupRequest(endpoint: endpoint)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                request.start(continuation)
                ResolverPool.shared.submit(request)
            }
        } onCancel: {
            request.finish(.failure(CancellationError()))
        }
    }

    /// Runs `getaddrinfo` on the calling thread (blocking).
    static func lookup(_ endpoint: Endpoint) -> Result<[SocketAddress], any Error> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_ADDRCONFIG
        var list: UnsafeMutablePointer<addrinfo>?
        let host = endpoint.host.isEmpty ? nil : endpoint.host
        let rc = getaddrinfo(host, String(endpoint.port), &hints, &list)
        guard rc == 0 else {
            let code: Int32 = rc == EAI_SYSTEM ? errno : (rc == EAI_NONAME ? ENOENT : EIO)
            let text = String(cString: gai_strerror(rc))
            return .failure(SocketError(code: code, operation: "resolve", address: nil, detail: "\(endpoint): \(text)"))
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
    private let state = Locked<State>(.pending)

    enum State {
        case pending
        case waiting(CheckedContinuation<[SocketAddress], any Error>)
        case finished
    }

    init(endpoint: Endpoint) { self.endpoint = endpoint }

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
final class ResolverPool: Sendable {
    static let shared = ResolverPool()

    private struct State {
        var queue: [LookupRequest] = []
        var threads = 0
        var idle = 0
    }

    private let condition = Condition()
    private let state = Locked(State())

    func submit(_ request: LookupRequest) {
        let startThread: Bool = condition.withLockSignalOne {
            state.withLock { state in
                state.queue.append(request)
                if state.idle == 0 && state.threads < SystemResolver.maximumThreads {
                    state.threads += 1
                    return true
                }
                return false
            }
        }
        if startThread {
            AsyncSockets.startThread(name: "AS-resolver") { [self] in work() }
        }
    }

    private func work() {
        while true {
            var countedIdle = false
            let request: LookupRequest = condition.waitFor {
                state.withLock { state in
                    if state.queue.isEmpty {
                        if !countedIdle {
                            state.idle += 1
                            countedIdle = true
                        }
                        return nil
                    }
                    if countedIdle { state.idle -= 1 }
                    return state.queue.removeFirst()
                }
            }
            if request.isFinished { continue }
            request.finish(SystemResolver.lookup(request.endpoint))
        }
    }
}
