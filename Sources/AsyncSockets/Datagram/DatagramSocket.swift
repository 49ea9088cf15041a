#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CLibeventShim

/// A datagram socket (UDP over IPv4 or IPv6, or unix-domain `SOCK_DGRAM`), non-blocking underneath and
/// `async` on top.
///
/// Python's `socket.socket(AF_INET, SOCK_DGRAM)` made async: ``send(_:to:)`` is `sendto`,
/// ``receive(maxSize:)`` is `recvmsg` (with truncation reported, never silent), ``connect(to:)`` makes it a
/// connected socket. Create one with ``bind(host:port:family:reusePort:broadcast:dualStackIPv6:on:)``,
/// ``bind(to:reusePort:broadcast:dualStackIPv6:on:)``, ``bind(unixPath:on:)``, ``unbound(family:broadcast:on:)`` or
/// ``pair(on:)``.
///
/// ```swift
/// let socket = try DatagramSocket.bind(host: "127.0.0.1", port: 0)
/// for try await datagram in socket.datagrams {
///     try await socket.send(datagram.bytes, to: datagram.sender!)
/// }
/// ```
///
/// ## Concurrency rules
/// The socket is an actor that runs on its ``EventLoop`` (the same executor model as ``AsyncSocket``). It is
/// safe to use from many tasks at once:
/// - each send sends one whole datagram or fails; concurrent sends take turns in FIFO order;
/// - two tasks receiving at once each get whole, distinct datagrams, and none is lost between them: each
///   receive holds the socket's read side for its duration, later receives wait in FIFO order;
/// - ``close()`` while another task waits makes that call throw promptly (``SocketError`` with `EBADF`);
/// - cancelling a task that waits in any call makes the call throw `CancellationError` at once; the socket
///   stays usable.
///
/// ## Errors
/// An error about one datagram (`EMSGSIZE`: too long; `EHOSTUNREACH`, `ENETUNREACH`; `ENOBUFS`: no buffer
/// space; `EACCES`: a broadcast address without ``bind(host:port:family:reusePort:broadcast:dualStackIPv6:on:)``'s
/// `broadcast`) fails only that call, with a ``SocketError`` naming the operation, the address and the
/// datagram's size; the socket stays usable. On a connected socket, Linux reports an ICMP "port unreachable"
/// from the peer as `ECONNREFUSED` from the next call, once.
///
/// ## Timeouts
/// ``timeout`` bounds each call's waiting time: a receive that gets no datagram, or a send that finds no room,
/// for that long throws ``SocketError`` with `ETIMEDOUT`. `nil` (the default) waits forever.
///
/// ## Fairness
/// A socket that keeps finding datagrams (or room to send) without ever waiting hands its loop back to the
/// other sockets and tasks after ``fairnessBudget`` datagrams.
///
/// The descriptor is created with `SOCK_NONBLOCK | SOCK_CLOEXEC`. A socket that is no longer referenced closes
/// its descriptor (and removes the socket file of ``bind(unixPath:on:)``).
public actor DatagramSocket: LoopBound {
    package nonisolated let core: SocketCore
    /// The socket's address family.
    public nonisolated let family: SocketFamily
    /// The unix socket file this socket created by binding (removed by ``close()``), if any.
    let boundPath: String?
    /// The peer set by ``connect(to:)``, for sends without an address and for error messages.
    var peer: SocketAddress?

    /// The default timeout of this socket's sends and receives; `nil` waits forever.
    public var timeout: Duration?

    /// Datagrams received by a batch (``datagrams``) and not yet handed out, oldest first from `pendingHead`.
    var pending: [Datagram] = []
    var pendingHead = 0
    /// Buffers of batched receives and sends, allocated the first time they are needed.
    var receiveBuffers: DatagramBatchBuffers?
    var sendBuffers: DatagramAddressBuffers?
    /// Datagrams received or sent since this socket last waited, yielded or saw its loop poll (see
    /// ``fairnessBudget``), and the loop's poll count (`EventLoop.polls`) when that count began.
    var workSinceWait = 0
    var workPoll = 0
    /// How many times this socket handed its loop back (``handBack()``): for tests.
    var handBacks = 0
    /// Receives the ``datagrams`` sequence makes with a single `recvmsg` before it tries a batch again.
    var singleReceivesLeft = 0

    /// After this many datagrams received or sent without waiting, and without the loop polling for readiness
    /// in between, the socket yields its loop once (`Task.yield`), so that a flood on one socket cannot starve
    /// the others. (A poll in between means the others had their turn: request/response traffic from a task
    /// that hops to the loop for each call never yields.)
    public static let fairnessBudget = 64

    /// The `maxSize` of ``datagrams`` and ``receive(maxSize:)`` when none is given: 65,536, more than any UDP
    /// datagram (65,507 bytes of payload over IPv4, 65,527 over IPv6).
    public static let defaultMaxSize = 65_536

    /// The event loop whose thread runs this socket.
    public nonisolated var eventLoop: EventLoop { core.loop }

    /// The socket's executor: its event loop.
    public nonisolated var unownedExecutor: UnownedSerialExecutor { core.executor }

    init(descriptor: Int32, family: SocketFamily, loop: EventLoop, boundPath: String? = nil) {
        self.core = SocketCore(fd: descriptor, loop: loop)
        self.family = family
        self.boundPath = boundPath
    }

    deinit {
        // Nothing else references the core now; unlinking happens on the loop thread, before the close, while
        // the file is certainly still ours.
        if let path = boundPath {
            let core = core
            let unlinkAndClose: @Sendable () -> Void = {
                if !core.isClosed { unlink(path) }
                core.close()
            }
            if core.loop.inLoop { unlinkAndClose() } else { core.loop.execute(unlinkAndClose) }
        } else {
            core.closeFromAnyThread()
        }
    }

    /// Sets ``timeout``: `nil` waits forever; a zero or negative duration makes every call that would wait
    /// throw `ETIMEDOUT` at once.
    public func setTimeout(_ timeout: Duration?) {
        self.timeout = timeout
    }

    /// The operating system's descriptor, or `-1` once closed. Use it for options this type does not
    /// offer; do not close it or change its blocking mode.
    public var descriptor: Int32 { core.fd }

    /// Whether ``close()`` has been called.
    public var isClosed: Bool { core.isClosed }

    /// Closes the socket (and removes the socket file of ``bind(unixPath:on:)``). Idempotent. Calls waiting
    /// in a send or receive throw ``SocketError`` with `EBADF` promptly; later calls throw the same; the
    /// ``datagrams`` sequence ends.
    public func close() {
        if !core.isClosed, let boundPath { unlink(boundPath) }
        core.close()
        pending.removeAll()
        pendingHead = 0
    }

    // MARK: Connected mode

    /// Connects the socket to `address` (`connect(2)` on a datagram socket): ``send(_:)-([UInt8])`` then sends
    /// there, and only datagrams from `address` are received. Can be called again to change the peer.
    ///
    /// On Linux a connected UDP socket also learns of ICMP errors: after a datagram to a port nobody listens on,
    /// the next call throws `ECONNREFUSED`, once; the socket stays usable.
    /// - Throws: ``SocketError`` naming `connect` and the address (`EAFNOSUPPORT` for another family,
    ///   `ECONNREFUSED` for a unix path nobody is bound to, `EBADF` after ``close()``).
    public func connect(to address: SocketAddress) throws {
        let fd = try openDescriptor("connect", address: address)
        _ = try Syscall.call("connect", address: address) {
            address.withSockAddr { Posix.connect(fd, $0, $1) }
        }
        peer = address
    }

    // MARK: Addresses

    /// The address this socket is bound to (`getsockname`): the real port after binding port 0, or the
    /// port the system picked at the first send of an unbound socket.
    public var localAddress: SocketAddress {
        get throws {
            let fd = try openDescriptor("getsockname")
            guard let result = SocketAddress.read({ getsockname(fd, $0, $1) }) else {
                throw SocketError.fromErrno("getsockname")
            }
            guard let address = result else { throw SocketError(code: EAFNOSUPPORT, operation: "getsockname") }
            return address
        }
    }

    /// The peer of a connected socket (`getpeername`); throws `ENOTCONN` when not connected.
    public var remoteAddress: SocketAddress {
        get throws {
            let fd = try openDescriptor("getpeername")
            guard let result = SocketAddress.read({ getpeername(fd, $0, $1) }) else {
                throw SocketError.fromErrno("getpeername", address: peer)
            }
            guard let address = result else { throw SocketError(code: EAFNOSUPPORT, operation: "getpeername") }
            return address
        }
    }

    // MARK: Helpers shared by the extensions

    /// The descriptor, or `EBADF` naming `operation` once closed.
    func openDescriptor(_ operation: String, address: SocketAddress? = nil) throws(SocketError) -> Int32 {
        let fd = core.fd
        if fd < 0 { throw SocketError.closed(operation, address: address ?? peer) }
        return fd
    }

    /// Takes the operation lock of `direction` when ``SocketCore/tryAcquire(_:)`` found it held.
    func lock(_ direction: IODirection, _ operation: String) async throws {
        switch await acquire(direction) {
        case .ready: return
        case .cancelled: throw CancellationError()
        case .closed: throw SocketError.closed(operation, address: peer)
        case .timedOut: throw SocketError.timedOut(operation, address: peer, after: timeout)
        case .failed(let code): throw SocketError(code: code, operation: operation, address: peer)
        }
    }

    /// Waits for readiness in `direction`, applying ``timeout`` from `deadline` (nil: the clock starts now).
    /// Returns the deadline to pass to the next wait of the same call. (As `AsyncSocket`'s.)
    func waitFor(_ direction: IODirection, _ operation: String, address: SocketAddress?,
                 deadline: Deadline?) async throws -> Deadline? {
        var micros: Int64 = -1
        var deadline = deadline
        if let timeout {
            let end = deadline ?? Deadline.after(timeout)
            deadline = end
            micros = end.remainingMicroseconds
            if micros == 0 { throw SocketError.timedOut(operation, address: address, after: timeout) }
        }
        workSinceWait = 0
        switch await waitReady(direction, timeoutMicroseconds: micros) {
        case .ready: return deadline
        case .timedOut:
            // libevent's timers may fire up to a clock tick early: see `AsyncSocket.waitFor`.
            if let deadline, deadline.remainingMicroseconds > 0 { return deadline }
            throw SocketError.timedOut(operation, address: address, after: timeout)
        case .cancelled: throw CancellationError()
        case .closed: throw SocketError.closed(operation, address: address)
        case .failed(let code): throw SocketError(code: code, operation: operation, address: address, detail: "event_add failed")
        }
    }

    /// Counts `count` datagrams received or sent without waiting; the first count after the loop polled starts
    /// a new turn.
    @inline(__always)
    func noteWork(_ count: Int) {
        let poll = core.loop.polls
        if poll != workPoll {
            workPoll = poll
            workSinceWait = 0
        }
        workSinceWait &+= count
    }

    /// Whether ``fairnessBudget`` datagrams moved in this turn (no wait and no poll since): the next receive or
    /// send hands the loop back first (``handBack()``).
    @inline(__always)
    var turnIsSpent: Bool {
        workSinceWait >= Self.fairnessBudget && workPoll == core.loop.polls
    }

    /// Yields the loop to everything else queued on it, then starts a new turn.
    func handBack() async {
        workSinceWait = 0
        handBacks &+= 1
        await Task.yield()
    }

    /// Whether a read may be tried now: there was a readiness report since the socket was last found drained,
    /// or the timeout is zero (non-blocking use, where a report may not be processed yet).
    @inline(__always)
    var mayTryRead: Bool {
        core.readHint || timeout.map { $0 <= .zero } ?? false
    }
}
