// FileServer: serves one directory over plain HTTP/1.0 (GET and HEAD), one request per connection.
//
// What it shows:
// - `read(until:maxLength:)`: the request head is everything up to the blank line (`\r\n\r\n`), at most 8 KiB;
//   a longer head gets `431`, a client that hangs up mid-request is simply dropped;
// - `sendFile(_:offset:count:)`: the file goes from the page cache to the socket with sendfile(2), no copy
//   through this process, however large it is and however slowly the client reads;
// - a request path can never leave the served directory: percent-decoding first, then `..` segments and NUL
//   bytes are refused, and the resolved path (symbolic links followed, `realpath`) must still lie inside it;
// - the same clean shutdown on SIGINT/SIGTERM as EchoServer.
//
// Run it and fetch files with curl:
//   swift run FileServer --root . --port 8000
//   curl -i http://127.0.0.1:8000/README.md
//   curl http://127.0.0.1:8000/            (a directory without index.html lists its entries)
//   curl --path-as-is http://127.0.0.1:8000/../etc/passwd      (403 Forbidden)
// Its first line on stdout is `listening on HOST:PORT`; then one line per request, through a `Logger`
// (Examples/Support/Logger.swift): output nobody reads drops log lines, never blocks the loop.

import AsyncSockets
import ExampleSupport
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct Options {
    var host = "127.0.0.1"
    var port: UInt16 = 8000
    var root = "."

    static let usage = "usage: FileServer [--host HOST] [--port PORT] [--root DIRECTORY]   (defaults: 127.0.0.1, 8000, .)"

    init(_ arguments: [String]) {
        var rest = arguments.dropFirst()
        while let flag = rest.popFirst() {
            switch flag {
            case "--host":
                guard let value = rest.popFirst() else { fail("--host needs a value") }
                host = value
            case "--port":
                guard let value = rest.popFirst(), let number = UInt16(value) else { fail("--port needs a number 0-65535") }
                port = number
            case "--root":
                guard let value = rest.popFirst() else { fail("--root needs a directory") }
                root = value
            case "-h", "--help":
                printLine(Self.usage)
                exit(0)
            default:
                fail("unknown argument \(flag); try --help")
            }
        }
    }
}

/// `realpath(3)`: the absolute path with every symbolic link, `.` and `..` resolved; nil if it does not exist.
func resolvedPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}

/// A response without a body worth a file: status line, a short text body, `Connection: close`.
func simpleResponse(_ status: String, _ extraHeaders: String = "") -> [UInt8] {
    let body = status + "\n"
    return Array("HTTP/1.0 \(status)\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n\(extraHeaders)Connection: close\r\n\r\n\(body)".utf8)
}

/// Decodes `%XX` escapes; nil for a malformed escape.
func percentDecoded(_ text: Substring) -> [UInt8]? {
    var bytes: [UInt8] = []
    var iterator = Array(text.utf8).makeIterator()
    while let byte = iterator.next() {
        guard byte == UInt8(ascii: "%") else { bytes.append(byte); continue }
        guard let high = iterator.next(), let low = iterator.next(),
              let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) else { return nil }
        bytes.append(value)
    }
    return bytes
}

/// The file system path a request target names inside `root`, or the status that refuses it. The checks:
/// an absolute target, valid escapes, no NUL byte, no `..` segment, and a resolved path that is `root` or
/// lies below it (a symbolic link pointing outside is refused too).
enum Target {
    case file(String)
    case refused(String)

    init(_ target: Substring, root: String) {
        let path = target.prefix { $0 != "?" && $0 != "#" }
        guard path.hasPrefix("/"), let decoded = percentDecoded(path), !decoded.contains(0) else {
            self = .refused("400 Bad Request")
            return
        }
        let text = String(decoding: decoded, as: UTF8.self)
        if text.split(separator: "/").contains("..") {
            self = .refused("403 Forbidden")
            return
        }
        guard let resolved = resolvedPath(root + text) else {
            self = .refused("404 Not Found")
            return
        }
        guard resolved == root || resolved.hasPrefix(root == "/" ? "/" : root + "/") else {
            self = .refused("403 Forbidden")
            return
        }
        self = .file(resolved)
    }
}

/// A `Content-Type` for a few common extensions.
func contentType(of path: String) -> String {
    let types = ["html": "text/html; charset=utf-8", "htm": "text/html; charset=utf-8", "txt": "text/plain; charset=utf-8",
                 "md": "text/markdown; charset=utf-8", "swift": "text/plain; charset=utf-8", "css": "text/css",
                 "js": "text/javascript", "json": "application/json", "png": "image/png", "jpg": "image/jpeg",
                 "jpeg": "image/jpeg", "gif": "image/gif", "svg": "image/svg+xml", "pdf": "application/pdf"]
    guard let dot = path.lastIndex(of: "."), !path[dot...].contains("/") else { return "application/octet-stream" }
    return types[path[path.index(after: dot)...].lowercased()] ?? "application/octet-stream"
}

/// An HTML list of a directory's entries (names escaped), sorted.
func listing(of directory: String, at requestPath: String) -> [UInt8] {
    var names: [String] = []
    if let handle = opendir(directory) {
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        closedir(handle)
    }
    func escaped(_ text: String) -> String {
        text.replacing("&", with: "&amp;").replacing("<", with: "&lt;").replacing(">", with: "&gt;").replacing("\"", with: "&quot;")
    }
    func encoded(_ name: String) -> String {
        name.utf8.map { byte in
            let safe = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || "-._~".utf8.contains(byte)
            return safe ? String(UnicodeScalar(byte)) : "%" + String(byte, radix: 16, uppercase: true).leftPadded()
        }.joined()
    }
    var html = "<!DOCTYPE html>\n<title>\(escaped(requestPath))</title>\n<h1>\(escaped(requestPath))</h1>\n<ul>\n"
    for name in names.sorted() { html += "<li><a href=\"\(encoded(name))\">\(escaped(name))</a></li>\n" }
    return Array((html + "</ul>\n").utf8)
}

extension String {
    /// Two hex digits.
    func leftPadded() -> String { count == 1 ? "0" + self : self }
}

/// Answers one request on `client`.
func handle(_ client: AsyncSocket, root: String) async throws {
    await client.setTimeout(.seconds(30))  // a client that stalls mid-request or mid-download is dropped
    let head: [UInt8]
    do {
        head = try await client.read(until: Array("\r\n\r\n".utf8), maxLength: 8192)
    } catch let error as SocketError where error.code == EMSGSIZE {
        return try await client.write(simpleResponse("431 Request Header Fields Too Large"))
    } catch is IncompleteReadError {
        return  // the client hung up before finishing its request
    }
    let requestLine = String(decoding: head.prefix { $0 != UInt8(ascii: "\r") }, as: UTF8.self)
    let parts = requestLine.split(separator: " ", omittingEmptySubsequences: true)
    guard parts.count == 3, parts[2].hasPrefix("HTTP/") else {
        return try await client.write(simpleResponse("400 Bad Request"))
    }
    let method = parts[0]
    guard method == "GET" || method == "HEAD" else {
        return try await client.write(simpleResponse("501 Not Implemented"))
    }
    var status = "200 OK"
    var sent = 0
    defer { requestLog.log("\(method) \(parts[1]) \(status.prefix(3)) \(sent) bytes") }

    guard case .file(var path) = Target(parts[1], root: root) else {
        if case .refused(let refusal) = Target(parts[1], root: root) { status = refusal }
        return try await client.write(simpleResponse(status))
    }
    var info = stat()
    guard stat(path, &info) == 0 else {
        status = "404 Not Found"
        return try await client.write(simpleResponse(status))
    }
    if info.st_mode & S_IFMT == S_IFDIR {
        let requestPath = String(parts[1].prefix { $0 != "?" })
        guard requestPath.hasSuffix("/") else {
            status = "301 Moved Permanently"
            return try await client.write(simpleResponse(status, "Location: \(requestPath)/\r\n"))
        }
        if stat(path + "/index.html", &info) == 0, info.st_mode & S_IFMT == S_IFREG {
            path += "/index.html"
        } else {
            let body = listing(of: path, at: requestPath)
            let header = "HTTP/1.0 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
            try await client.write(contentsOf: method == "HEAD" ? [Array(header.utf8)] : [Array(header.utf8), body])
            sent = method == "HEAD" ? 0 : body.count
            return
        }
    }
    guard info.st_mode & S_IFMT == S_IFREG else {
        status = "403 Forbidden"
        return try await client.write(simpleResponse(status))
    }
    let file = open(path, O_RDONLY | O_CLOEXEC)
    guard file >= 0 else {
        status = errno == EACCES ? "403 Forbidden" : "404 Not Found"
        return try await client.write(simpleResponse(status))
    }
    defer { close(file) }
    guard fstat(file, &info) == 0 else {
        status = "500 Internal Server Error"
        return try await client.write(simpleResponse(status))
    }
    let size = Int(info.st_size)
    try await client.write("HTTP/1.0 200 OK\r\nContent-Type: \(contentType(of: path))\r\nContent-Length: \(size)\r\nConnection: close\r\n\r\n")
    if method == "GET" {
        sent = try await client.sendFile(file, count: size)
    }
}

/// The request log (stdout): handlers run on the event loop, so they queue their lines and never write.
let requestLog = Logger(descriptor: 1)

func main() async {
    let options = Options(CommandLine.arguments)
    guard let root = resolvedPath(options.root) else { fail("\(options.root): no such directory") }
    let server: AsyncServer
    do {
        server = try AsyncServer(host: options.host, port: options.port, family: options.host.contains(":") ? .ipv6 : .ipv4)
    } catch {
        fail("\(error)")
    }
    let signals = onTermination { server.close() }
    printLine("listening on \(server.localAddress)")
    printLine("serving \(root)")
    do {
        try await server.serve(onError: { error, _ in requestLog.log("a client failed: \(error)") }) { client in
            try await handle(client, root: root)
        }
    } catch {
        fail("\(error)")
    }
    signals.forEach { $0.cancel() }
    await requestLog.finish()
    printLine("stopped")
}

await main()
exit(0)
