/// How connections use the echo server.
public enum LoadMode: String, Sendable, Hashable, CaseIterable {
    /// Each connection keeps `pipeline` messages outstanding and sends the next when one comes
    /// back (1: request, response, request …).
    case pingpong
    /// Each connection writes continuously, keeping at most `window` bytes unechoed, and a
    /// connection with bytes outstanding that gets no echoed byte for a second is stalled.
    case stream
}

/// What `LoadGenerator` does: N echo connections, each keeping `pipeline` messages of
/// `messageSize` bytes outstanding, until `duration` or `messages` is reached or it is stopped.
public struct LoadConfiguration: Sendable, Hashable {
    /// Host name, IPv4 or IPv6 address of the echo server.
    public var host = "127.0.0.1"
    public var port: UInt16 = 5150
    public var connections = 64
    /// Bytes per message.
    public var messageSize = 128
    /// Messages outstanding per connection (1: ping-pong).
    public var pipeline = 1
    /// Client threads; connections are spread over them.
    public var threads = 1
    /// Stop after this many seconds (nil: no time limit).
    public var duration: Double?
    /// Stop after this many messages in all, once they are all echoed (nil: no count limit).
    public var messages: Int?
    /// Messages per second over all connections (nil: as fast as the server echoes).
    public var rate: Double?
    /// How long connecting may take, in seconds.
    public var connectTimeout = 5.0
    public var mode = LoadMode.pingpong
    /// Stream mode: most bytes a connection leaves unechoed (its writes are `messageSize` chunks).
    public var window = 1 << 20
    /// HTTP/1.1 instead of echo: each message is `GET httpPath` (keep-alive, `pipeline` deep),
    /// and each response must have a 2xx status and the same body as the first one (nil: echo).
    public var httpPath: String?
    /// Stream mode: how long a connection with bytes outstanding may go without an echoed byte
    /// before it counts as stalled, in ns.
    public static let stallNs: Int64 = 1_000_000_000

    /// The request an HTTP run sends (`httpPath` on `host`).
    public var httpRequest: [UInt8]? {
        httpPath.map { Array("GET \($0) HTTP/1.1\r\nHost: \(host.contains(":") ? "[\(host)]" : host):\(port)\r\n\r\n".utf8) }
    }

    /// Bytes each message sends: `messageSize`, or the HTTP request's length.
    public var bytesPerMessage: Int { httpRequest?.count ?? messageSize }

    /// Messages outstanding per connection: `pipeline`, or as many chunks as the window holds.
    public var outstandingMessages: Int { mode == .stream ? max(1, min(4096, window / messageSize)) : pipeline }

    public init() {}

    /// Why this configuration cannot run, or nil.
    public var problem: String? {
        if connections < 1 || connections > 1_000_000 { return "connections must be between 1 and 1000000" }
        if messageSize < 1 || messageSize > 16 << 20 { return "the message size must be between 1 byte and 16 MiB" }
        if pipeline < 1 || pipeline > 4096 { return "the pipeline depth must be between 1 and 4096" }
        if threads < 1 || threads > 256 { return "threads must be between 1 and 256" }
        if let duration, !(duration > 0) { return "the duration must be positive" }
        if let httpPath {
            if mode == .stream { return "HTTP runs are request/response (pingpong), not stream" }
            if !httpPath.hasPrefix("/") || httpPath.utf8.count > 2048 || httpPath.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F }) {
                return "the path must start with / and hold at most 2048 visible ASCII characters"
            }
        }
        if let messages, messages < 1 { return "the message count must be positive" }
        if let rate, !(rate > 0) { return "the rate must be positive" }
        if !(connectTimeout > 0) { return "the connect timeout must be positive" }
        if mode == .stream && (window < messageSize || window > 1 << 30) {
            return "the window must be at least one chunk (--size) and at most 1 GiB"
        }
        if connections * outstandingMessages > 16 << 20 {
            return "connections × messages outstanding must stay below 16 million (fewer connections, a larger --size or a smaller window)"
        }
        return nil
    }
}

/// Why a load run could not start.
public enum LoadError: Error, Hashable, Sendable, CustomStringConvertible {
    case invalidConfiguration(String)
    /// The host name does not resolve to an address.
    case unresolvable(String)
    /// Not one connection could be made; the failures by kind.
    case noConnection(host: String, port: UInt16, failures: [ErrorCount])

    public var description: String {
        switch self {
        case .invalidConfiguration(let what): "invalid load: \(what)"
        case .unresolvable(let host): "cannot resolve \(host) to an address"
        case .noConnection(let host, let port, let failures):
            "cannot connect to \(host):\(port): " + failures.map { "\($0.count) × \($0.kind)" }.joined(separator: ", ")
        }
    }
}

/// How many times one kind of error happened.
public struct ErrorCount: Sendable, Hashable {
    public var kind: String
    public var count: Int

    public init(kind: String, count: Int) {
        self.kind = kind
        self.count = count
    }
}
