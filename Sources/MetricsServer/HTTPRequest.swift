import EngineStats
import HTTPServer

/// The metrics server's HTTP/1.x: one request read whole (line and headers) by the HTTP
/// server's own parser (`HTTPHeadParser`: the same strict framing), one reply.
enum HTTPRequest {
    /// The reply to the bytes received so far, or nil while the request is incomplete and
    /// still plausible. Garbage is answered (400) as soon as it is seen.
    /// The last body rendered in each format, with the frame it came from.
    struct RenderCache {
        var text: (frame: UInt64, body: [UInt8])?
        var openMetrics: (frame: UInt64, body: [UInt8])?
    }

    static func respond(to bytes: UnsafeRawBufferPointer, frames: () -> (EngineIdentity, StatsFrame?),
                        cache: inout RenderCache) -> [UInt8]? {
        // The method: 1 to 16 upper-case letters, then a space.
        var index = 0
        while index < bytes.count, index < 17, (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(bytes[index]) { index += 1 }
        if index < bytes.count, index == 0 || index > 16 || bytes[index] != UInt8(ascii: " ") {
            return status(400, "Bad Request")
        }
        let head: HTTPRequestHead
        switch HTTPHeadParser.parse(bytes) {
        case .incomplete:
            // A request line that ended badly need not wait for the headers.
            if let lineEnd = firstLineEnd(bytes), requestLine(bytes[..<lineEnd]) == nil { return status(400, "Bad Request") }
            return nil
        case .invalid(let code, _):
            return status(code, reason(code))
        case .head(let parsed):
            head = parsed
        }
        guard head.method == .get || head.method == .head else {
            return status(405, "Method Not Allowed", extraHeaders: "Allow: GET, HEAD\r\n")
        }
        let target = bytes[head.target]
        let path = target.split(separator: UInt8(ascii: "?"), maxSplits: 1, omittingEmptySubsequences: false).first ?? target[...]
        guard path.elementsEqual("/metrics".utf8) else { return status(404, "Not Found") }
        var accept: [String] = []
        HTTPHeadParser.forEachField(in: bytes, of: head) { name, value in
            if HTTPHeadParser.fieldName(name, is: "accept") { accept.append(String(decoding: value, as: UTF8.self)) }
        }
        let openMetrics = ExpositionNegotiation.prefersOpenMetrics(accept)
        let (identity, frame) = frames()
        let number = frame?.number ?? 0
        let cached = openMetrics ? cache.openMetrics : cache.text
        let body: [UInt8]
        if let cached, cached.frame == number, number > 0 {
            body = cached.body
        } else {
            body = Array(MetricsExposition.render(identity: identity, frame: frame, openMetrics: openMetrics).utf8)
            if openMetrics { cache.openMetrics = (number, body) } else { cache.text = (number, body) }
        }
        let type = openMetrics ? MetricsExposition.openMetricsContentType : MetricsExposition.textContentType
        var reply = Array("HTTP/1.1 200 OK\r\nContent-Type: \(type)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8)
        if head.method == .get { reply += body }
        return reply
    }

    /// A reply without a body worth reading.
    static func status(_ code: Int, _ reason: String, extraHeaders: String = "") -> [UInt8] {
        let body = "\(code) \(reason)\n"
        return Array("HTTP/1.1 \(code) \(reason)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\n\(extraHeaders)Connection: close\r\n\r\n\(body)".utf8)
    }

    private static func reason(_ code: Int) -> String {
        switch code {
        case 400: "Bad Request"
        case 417: "Expectation Failed"
        case 431: "Request Header Fields Too Large"
        case 501: "Not Implemented"
        case 505: "HTTP Version Not Supported"
        default: "Bad Request"
        }
    }

    /// Offset just past the request line's LF.
    private static func firstLineEnd(_ bytes: UnsafeRawBufferPointer) -> Int? {
        bytes.firstIndex(of: 10).map { $0 + 1 }
    }

    /// `METHOD TARGET HTTP/1.x`, or nil.
    private static func requestLine(_ bytes: Slice<UnsafeRawBufferPointer>) -> (method: String, target: String)? {
        let text = String(decoding: bytes, as: UTF8.self).trimmingSuffix(while: { $0 == "\r" || $0 == "\n" || $0 == "\r\n" })
        let parts = text.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[1].hasPrefix("/"), parts[2] == "HTTP/1.1" || parts[2] == "HTTP/1.0" else { return nil }
        return (String(parts[0]), String(parts[1]))
    }
}

private extension String {
    func trimmingSuffix(while drop: (Character) -> Bool) -> String {
        var result = self
        while let last = result.last, drop(last) { result.removeLast() }
        return result
    }
}
