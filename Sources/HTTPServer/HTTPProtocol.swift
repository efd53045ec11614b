import ServerCore

/// HTTP/1.1 on the server core (RFC 9112): keep-alive, pipelining (the responses to one
/// receive leave in one send), `Content-Length` and chunked request bodies, `Expect:
/// 100-continue`, `HEAD`, header and idle timeouts, and the lab's routes (`HTTPRoute`).
///
/// Parsing is `HTTPHeadParser` and `HTTPChunkedDecoder`: in place over the connection's input,
/// nothing allocated or copied on the way to a response (the allocation gate checks it).
public struct HTTPProtocol: ServerProtocol {
    public let name = "http"
    public let configuration: HTTPConfiguration
    let dates = HTTPDateCache(workers: EngineConfiguration.maxWorkers)

    public init(configuration: HTTPConfiguration = HTTPConfiguration()) {
        self.configuration = configuration
    }

    public func makeHandler() -> any ConnectionHandler { HTTPHandler(configuration: configuration, dates: dates) }

    public var metrics: [HandlerMetric] { HTTPMetric.declarations }
    /// Requests answered on each connection, in the connections view.
    public var connectionFigure: String? { "requests" }
}

/// The server's bounds and timeouts.
public struct HTTPConfiguration: Sendable, Hashable {
    /// Largest request body, in bytes (`--max-body`): larger is refused with 413.
    public var maxBody = 1 << 20
    /// A request head must arrive whole within this (`--header-timeout`; slowloris), counted
    /// from its first byte (or from the connection's start, for the first request).
    public var headerTimeoutNs: Int64 = 10_000_000_000
    /// A keep-alive connection with no request under way closes after this (`--idle-timeout`);
    /// a body that stops arriving for this long closes it too.
    public var idleTimeoutNs: Int64 = 60_000_000_000
    /// Head size and field count (431 beyond).
    public var limits = HTTPHeadParser.Limits()

    public init() {}
}

/// The figures the HTTP handlers keep (indices into `declarations`), the ones a viewer's
/// header has room for first: requests/s, latency, errors.
enum HTTPMetric {
    static let requests = 0
    static let latency = 1
    static let clientErrors = 2
    static let serverErrors = 3
    static let inProgress = 4
    static let success = 5
    static let requestBytes = 6
    static let responseBytes = 7

    static let declarations: [HandlerMetric] = [
        .counter("requests", help: "Requests answered (every status)."),
        .histogram("latency", help: "From the request's bytes reaching the handler to its response written."),
        .counter("status_4xx", help: "Responses with a 4xx status (the client's error)."),
        .counter("status_5xx", help: "Responses with a 5xx status."),
        .gauge("in_progress", help: "Requests burning CPU (/work) or blocked (/block) right now."),
        .counter("status_2xx", help: "Responses with a 2xx status."),
        .counter("request", unit: .bytes, help: "Bytes of request heads and bodies."),
        .counter("response", unit: .bytes, help: "Bytes of responses, heads and bodies."),
    ]
}
