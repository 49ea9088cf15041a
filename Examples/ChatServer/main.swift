// ChatServer: a line-based chat room.
//
// Every line a client sends is broadcast to every other client, prefixed with the sender's name (its
// address, or what it chose with `/nick NAME`). It shows:
// - `AsyncServer` (Python's `socket.create_server`) and `serve { client in … }`: one child task per
//   client in a task group, with no task outliving the server;
// - per-client tasks: each handler reads its client's `lines` and runs a writer task that drains the client's
//   outbox, so a slow client never holds up the others (its outbox keeps only the newest 256 messages);
// - clean shutdown on SIGINT or SIGTERM: a Dispatch signal source says goodbye to every client (bounded to
//   2 seconds), then `close()` stops accepting, cancels the handlers and lets `serve` return once they
//   finished.
//
// Run it and connect with `nc` (or the EchoClient example):
//
//     swift run ChatServer --host 127.0.0.1 --port 9000
//     nc 127.0.0.1 9000        # in two or more other terminals
//
// It prints `listening on HOST:PORT` first (`--port 0` picks a free port), then one line per event.
// `--host ""` listens on all IPv4 interfaces, `--host ::` on all IPv6 (and IPv4) ones.
// `--idle-timeout SECONDS` disconnects a client that sends nothing (and reads nothing we send) for that
// long (`serve`'s `idleTimeout`): a slowloris connection does not stay forever.
//
// The output never blocks the server: lines go through a `Logger` (Examples/Support/Logger.swift), a bounded queue that a
// task of its own writes out, so stdout piped to a reader that stopped reading costs dropped log lines,
// never a stuck event loop. (The room is an actor without an executor of its own: it runs on the loop of
// the client calling it, which is fine, as it never waits for anything.)

import AsyncSockets
import ExampleSupport
import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The room: every connected client's name and outbox.
actor ChatRoom {
    private struct Member {
        var name: String
        let outbox: AsyncStream<[UInt8]>.Continuation
        let socket: AsyncSocket
    }

    private var members: [Int: Member] = [:]
    private var nextID = 0

    /// Adds a client; returns its id.
    func join(name: String, socket: AsyncSocket, outbox: AsyncStream<[UInt8]>.Continuation) -> Int {
        nextID += 1
        members[nextID] = Member(name: name, outbox: outbox, socket: socket)
        // The newcomer learns it is in (clients on other event loops may join in any order).
        outbox.yield(Array("* welcome, \(name) (\(members.count) here)\n".utf8))
        broadcast("* \(name) joined (\(members.count) here)", from: nextID)
        return nextID
    }

    /// Removes a client and finishes its outbox.
    func leave(_ id: Int) {
        guard let member = members.removeValue(forKey: id) else { return }
        member.outbox.finish()
        broadcast("* \(member.name) left", from: id)
    }

    /// Handles one line from client `id`: a `/nick NAME` command or a message for everyone else.
    func receive(_ line: String, from id: Int) {
        guard let sender = members[id] else { return }
        if line.hasPrefix("/nick ") {
            let name = String(line.dropFirst(6).prefix(32)).trimmingSpaces()
            guard !name.isEmpty else { return }
            members[id]?.name = name
            broadcast("* \(sender.name) is now \(name)", from: id)
        } else {
            broadcast("[\(sender.name)] \(line)", from: id)
        }
    }

    /// Queues `text` (plus a newline) for every member except `sender`; never waits for a client.
    private func broadcast(_ text: String, from sender: Int) {
        say(text)
        let bytes = Array((text + "\n").utf8)
        for (id, member) in members where id != sender {
            member.outbox.yield(bytes)
        }
    }

    /// Writes `text` to every member directly, giving up after `limit` (a stuck client cannot hold up the
    /// shutdown: cancelling a pending write makes it return at once).
    func farewell(_ text: String, limit: Duration) async {
        let sockets = members.values.map(\.socket)
        let bytes = Array((text + "\n").utf8)
        await withTaskGroup(of: Void.self) { race in
            race.addTask {
                await withTaskGroup(of: Void.self) { writes in
                    for socket in sockets {
                        writes.addTask { try? await socket.write(bytes) }
                    }
                }
            }
            race.addTask { try? await Task.sleep(for: limit) }
            await race.next()
            race.cancelAll()
        }
    }
}

extension String {
    func trimmingSpaces() -> String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}

/// Serves one client: joins the room, runs a writer task for its outbox and reads its lines until it
/// leaves (or the server shuts down, which cancels this task).
@Sendable func chat(with client: AsyncSocket, in room: ChatRoom) async throws {
    let name = (try? await client.remoteAddress.description) ?? "someone"
    let (outbox, continuation) = AsyncStream.makeStream(of: [UInt8].self, bufferingPolicy: .bufferingNewest(256))
    let id = await room.join(name: name, socket: client, outbox: continuation)
    do {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await bytes in outbox { try await client.write(bytes) }
            }
            // Each line without its `\n` or `\r\n`; a line longer than 4 KiB ends the client with EMSGSIZE.
            for try await line in client.lines(maxLength: 4096) { await room.receive(line, from: id) }
            continuation.finish() // the writer sends what is queued, then ends
            try await group.waitForAll()
        }
    } catch {
        await room.leave(id)
        throw error
    }
    await room.leave(id)
}

// MARK: - Command line and main

/// The log of standard output and of standard error: never blocks the caller (see Examples/Support/Logger.swift).
let standardOutput = Logger(descriptor: 1)
let standardError = Logger(descriptor: 2)

/// Queues `text` and a newline for a descriptor (1: stdout, 2: stderr); it is written at once, unbuffered,
/// so that a script reading our output through a pipe sees each line at once, but never by the caller.
func say(_ text: String, to descriptor: Int32 = 1) {
    (descriptor == 2 ? standardError : standardOutput).log(text)
}

/// Writes `text` and a newline right now (blocking): for usage messages before the server runs.
func sayNow(_ text: String, to descriptor: Int32 = 1) {
    writeAll(descriptor, text + "\n")
}

struct Options {
    var host = "127.0.0.1"
    var port: UInt16 = 9000
    var idleTimeout: Duration?

    static let usage = "usage: ChatServer [--host HOST] [--port PORT] [--idle-timeout SECONDS]   (defaults: 127.0.0.1, 9000, none; port 0 picks one)"

    init(_ arguments: [String]) throws {
        var rest = arguments.dropFirst()
        while let flag = rest.popFirst() {
            switch flag {
            case "--host":
                guard let value = rest.popFirst() else { throw UsageError("--host needs a value") }
                host = value
            case "--port":
                guard let value = rest.popFirst(), let number = UInt16(value) else {
                    throw UsageError("--port needs a number from 0 to 65535")
                }
                port = number
            case "--idle-timeout":
                guard let value = rest.popFirst(), let seconds = Double(value), seconds.isFinite, seconds > 0, seconds < 1e9 else {
                    throw UsageError("--idle-timeout needs a number of seconds greater than 0")
                }
                idleTimeout = .milliseconds(Int64((seconds * 1000).rounded(.up)))
            case "-h", "--help":
                sayNow(Self.usage)
                exit(0)
            default:
                throw UsageError("unknown argument \(flag)")
            }
        }
    }
}

struct UsageError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func main() async -> Int32 {
    let options: Options
    do {
        options = try Options(CommandLine.arguments)
    } catch {
        sayNow("ChatServer: \(error)\n\(Options.usage)", to: 2)
        return 2
    }
    let server: AsyncServer
    do {
        let family: SocketFamily = options.host.contains(":") ? .ipv6 : .ipv4
        let dualStack = family == .ipv6 && options.host == "::" && AsyncServer.hasDualStackIPv6
        let host = options.host == "::" ? "" : options.host
        server = try AsyncServer(host: host, port: options.port, family: family, dualStackIPv6: dualStack)
    } catch {
        say("ChatServer: \(error)", to: 2)
        return 1
    }
    say("listening on \(server.localAddress)")

    let room = ChatRoom()
    let shuttingDown = OnceFlag()
    let signalSources = onTermination {
        guard shuttingDown.set() else { return }
        say("* shutting down")
        Task {
            await room.farewell("* the server is shutting down, goodbye", limit: .seconds(2))
            server.close() // ends `serve`: accepting stops, the handlers are cancelled
        }
    }
    defer { signalSources.forEach { $0.cancel() } }

    do {
        try await server.serve(idleTimeout: options.idleTimeout, onError: { error, _ in say("* a client failed: \(error)") }) { client in
            try await chat(with: client, in: room)
        }
    } catch {
        say("ChatServer: \(error)", to: 2)
        return 1
    }
    say("* stopped")
    return 0
}

/// A flag that can be set once, from any thread.
final class OnceFlag: Sendable {
    private let value = Atomic<Bool>(false)

    /// Sets the flag; true if this call set it (it was clear).
    func set() -> Bool {
        value.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged
    }
}

let status = await main()
await standardOutput.finish()
await standardError.finish()
exit(status)
