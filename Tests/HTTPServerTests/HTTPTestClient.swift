import CompletionPort
import HTTPServer
import Loopback
import ServerCore
#if canImport(Glibc)
import Glibc
#endif

/// An HTTP server on an ephemeral loopback port.
func makeHTTPServer(_ backend: BackendChoice, workers: Int = 4, bufferSize: Int = 262_144,
                    configure: (inout HTTPConfiguration) -> Void = { _ in }) throws -> PortServer {
    var http = HTTPConfiguration()
    configure(&http)
    var configuration = EngineConfiguration()
    configuration.port = 0
    configuration.backend = backend
    configuration.workers = workers
    configuration.ioBufferSize = bufferSize
    return try PortServer(configuration: configuration, serving: HTTPProtocol(configuration: http))
}

/// A response as a client reads it.
struct TestResponse {
    var status: Int
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    var text: String { String(decoding: body, as: UTF8.self) }
}

/// A blocking client socket that reads whole responses (Content-Length or chunked bodies), and
/// gives up after `timeoutSeconds` of silence — a test never hangs on a server that stopped.
final class HTTPTestClient {
    let fd: CInt
    private var pending: [UInt8] = []

    init(port: UInt16, timeoutSeconds: Int = 10) throws {
        fd = try Loopback.connect(port: port)
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    @discardableResult
    func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool { Self.sendAll(fd, bytes) }

    /// Writes all of `bytes` (MSG_NOSIGNAL: a server that closed gives false, not SIGPIPE).
    static func sendAll(_ fd: CInt, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                offset += n
            }
            return true
        }
    }

    /// Reads more bytes into `pending`; false on EOF, error or timeout.
    private func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            pending.append(contentsOf: chunk[0..<n])
            return true
        }
    }

    private func line() -> String? {
        while true {
            if let end = pending.firstIndex(of: 0x0A), end > 0, pending[end - 1] == 0x0D {
                let text = String(decoding: pending[0..<(end - 1)], as: UTF8.self)
                pending.removeFirst(end + 1)
                return text
            }
            guard fill() else { return nil }
        }
    }

    private func take(_ count: Int) -> [UInt8]? {
        while pending.count < count { guard fill() else { return nil } }
        let bytes = Array(pending[0..<count])
        pending.removeFirst(count)
        return bytes
    }

    /// The next response (a 1xx one included); nil on EOF or timeout. `bodiless`: the answer
    /// to a HEAD.
    func response(bodiless: Bool = false) -> TestResponse? {
        guard let statusLine = line() else { return nil }
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0] == "HTTP/1.1", let status = Int(parts[1]) else { return nil }
        var response = TestResponse(status: status, headers: [], body: [])
        while let field = line() {
            if field.isEmpty { break }
            guard let colon = field.firstIndex(of: ":") else { return nil }
            response.headers.append((String(field[..<colon]), field[field.index(after: colon)...].trimmingCharacters(in: " ")))
        }
        if bodiless || status < 200 { return response }
        if response.header("Transfer-Encoding") == "chunked" {
            while true {
                guard let sizeLine = line(), let size = Int(sizeLine, radix: 16) else { return nil }
                if size == 0 {
                    guard line() == "" else { return nil }
                    break
                }
                guard let data = take(size), line() == "" else { return nil }
                response.body += data
            }
        } else if let length = response.header("Content-Length").flatMap({ Int($0) }) {
            guard let body = take(length) else { return nil }
            response.body = body
        }
        return response
    }

    /// Whether the server closed the connection (EOF, or a reset) with nothing more to read.
    /// A timeout is not a close.
    func isClosed() -> Bool {
        guard pending.isEmpty else { return false }
        var byte: UInt8 = 0
        while true {
            let n = read(fd, &byte, 1)
            if n < 0 && errno == EINTR { continue }
            if n == 1 { pending.append(byte) }
            return n == 0 || (n < 0 && errno == ECONNRESET)
        }
    }
}

extension String {
    func trimmingCharacters(in set: Character) -> String {
        var text = Substring(self)
        while text.first == set { text.removeFirst() }
        while text.last == set { text.removeLast() }
        return String(text)
    }
}

extension Substring {
    func trimmingCharacters(in set: Character) -> String { String(self).trimmingCharacters(in: set) }
}
