/// The parts of a request head a server acts on, as `HTTPHeadParser` found them: offsets into
/// the bytes it parsed (no copy), the framing of the body, and the connection's fate.
public struct HTTPRequestHead: Sendable, Hashable {
    public var method: HTTPMethod
    /// Where the request target (origin form `/path?query`, or another form) lies in the bytes.
    public var target: Range<Int>
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion: Int
    /// The body's length (`Content-Length`), when it has one.
    public var contentLength: Int?
    /// The body is chunked (`Transfer-Encoding: chunked`).
    public var isChunked: Bool
    /// The connection stays open after the response (HTTP/1.1 unless `Connection: close`;
    /// HTTP/1.0 only with `Connection: keep-alive`).
    public var keepAlive: Bool
    /// `Expect: 100-continue`: the client waits for `100 Continue` before it sends the body.
    public var expectsContinue: Bool
    /// Header fields in the head.
    public var fieldCount: Int
    /// Bytes of the whole head, its final empty line included: where the body starts.
    public var length: Int

    /// Whether the request has a body to read (a chunked one, or a positive length).
    public var hasBody: Bool { isChunked || (contentLength ?? 0) > 0 }
}

/// Request methods this server tells apart; any other token is `other`.
public enum HTTPMethod: Sendable, Hashable {
    case get, head, post, put, delete, options, patch, trace, connect
    case other
}
