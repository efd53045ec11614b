import ServerCore
#if canImport(Glibc)
import Glibc
#endif

/// One connection's HTTP/1.1 state: between requests, or inside a request's body.
///
/// Every request whose head is in the input is answered in the same call, in order, into the
/// one output (pipelining: the core sends them together). A response is written whole or not
/// at all: when the output has no room, the handler pauses (`pauseReading`) with the request
/// unconsumed, and is called again once the output has been sent — so a client that pipelines
/// without reading holds one input and one output buffer, however much it sends.
final class HTTPHandler: ConnectionHandler {
    private let configuration: HTTPConfiguration
    private let dates: HTTPDateCache

    private enum Body: Equatable {
        /// Between requests.
        case none
        /// `remaining` bytes of a `Content-Length` body.
        case length
        /// A chunked body (`chunked` decodes it).
        case chunked
    }

    private var body = Body.none
    private var bodyRemaining = 0
    private var chunked = HTTPChunkedDecoder(maxBody: 0)
    /// The body goes back in the response (`POST /echo`); otherwise it is read and dropped.
    private var echoing = false
    private var keepAlive = true
    /// When the request being read started (for its latency).
    private var requestStart: Int64 = 0
    /// The header deadline runs (set once per head, from its first byte).
    private var headDeadlineSet = false

    /// Output room kept free for a chunked echo's framing (a size line and CRLFs per piece, the
    /// last chunk): what the decoder writes never exceeds what it consumes by more than this.
    private static let chunkFramingRoom = 32

    init(configuration: HTTPConfiguration, dates: HTTPDateCache) {
        self.configuration = configuration
        self.dates = dates
    }

    func opened(_ output: inout OutputBuffer, _ connection: inout ConnectionContext) -> HandlerVerdict {
        body = .none
        bodyRemaining = 0
        echoing = false
        keepAlive = true
        // The first request's head is due within the header timeout of the connection's start.
        connection.setDeadline(in: configuration.headerTimeoutNs)
        headDeadlineSet = true
        return .continue
    }

    func received(_ input: inout InputBuffer, _ output: inout OutputBuffer,
                  _ connection: inout ConnectionContext) -> HandlerVerdict {
        // The clock as of the last thing done: read once per call, and again after each
        // response (a /work or /block request may take a second; deadlines count from after it).
        var now = ConnectionContext.now()
        var answered = false
        while true {
            if body != .none {
                if let verdict = readBody(&input, &output, &connection, now: &now) { return verdict }
                answered = true
                continue
            }
            // RFC 9112 §2.2: empty lines before a request line are ignored.
            while input.unconsumed.count >= 2 && input.unconsumed[0] == 0x0D && input.unconsumed[1] == 0x0A { input.consume(2) }
            let rest = input.unconsumed
            if rest.isEmpty {
                // Idle from the last answer on (empty lines alone do not keep a connection).
                if answered {
                    connection.setDeadline(in: configuration.idleTimeoutNs, from: now)
                    headDeadlineSet = false
                }
                return .continue
            }
            switch HTTPHeadParser.parse(rest, limits: configuration.limits) {
            case .incomplete:
                if input.isFull {
                    return refuse(431, "request head larger than the input buffer", &input, &output, &connection)
                }
                if !headDeadlineSet {
                    connection.setDeadline(in: configuration.headerTimeoutNs, from: now)
                    headDeadlineSet = true
                }
                return .continue
            case .invalid(let status, let reason):
                return refuse(status, reason, &input, &output, &connection)
            case .head(let head):
                let verdict = serve(head, rest, &input, &output, &connection, now: &now)
                if verdict != .continue { return verdict }
                answered = true
                headDeadlineSet = false
            }
        }
    }

    /// Answers the request `head` (at the start of `rest`), or pauses with it unconsumed.
    private func serve(_ head: HTTPRequestHead, _ rest: UnsafeRawBufferPointer, _ input: inout InputBuffer,
                       _ output: inout OutputBuffer, _ connection: inout ConnectionContext, now: inout Int64) -> HandlerVerdict {
        if let length = head.contentLength, length > configuration.maxBody {
            return refuse(413, "the body is larger than \(configuration.maxBody) bytes", &input, &output, &connection)
        }
        let route = HTTPRoute.match(head.method, target: head.target, in: rest)
        keepAlive = head.keepAlive
        // An HTTP/1.0 client's expectation is ignored (RFC 9110 §10.1.1): it would read a 100
        // as the final response.
        let expectsContinue = head.expectsContinue && head.minorVersion >= 1
        if expectsContinue && head.hasBody && route != .echo {
            // Answered without reading the body: the client may never send it, so the
            // connection cannot be reused (its next bytes could be body or request).
            keepAlive = false
        }
        let status: Int
        switch route {
        case .plaintext, .json, .work, .block, .echo: status = 200
        case .badQuery: status = 400
        case .notFound: status = 404
        case .methodNotAllowed: status = 405
        case .notImplemented: status = 501
        }
        let date = dates.date(worker: connection.workerIndex)
        var responseBytes = -1
        output.withFreeSpace { space in
            var writer = HTTPResponseWriter(space)
            if route == .echo && expectsContinue {
                writer.append(HTTPStatus.line(100))
                writer.append("\r\n")
            }
            writer.statusLine(status, date: date)
            switch route {
            case .plaintext:
                writer.append("Content-Type: text/plain\r\nContent-Length: 13\r\n")
            case .json:
                writer.append("Content-Type: application/json\r\nContent-Length: 27\r\n")
            case .work, .block:
                writer.append("Content-Type: text/plain\r\nContent-Length: 3\r\n")
            case .echo:
                writer.append("Content-Type: application/octet-stream\r\n")
                if head.isChunked {
                    writer.append("Transfer-Encoding: chunked\r\n")
                } else {
                    writer.append("Content-Length: ")
                    writer.append(decimal: head.contentLength ?? 0)
                    writer.append("\r\n")
                }
            case .methodNotAllowed(let allowed):
                writer.append("Allow: ")
                writer.append(allowed.field)
                writer.append("\r\n")
                Self.errorFields(status, &writer)
            case .badQuery, .notFound, .notImplemented:
                Self.errorFields(status, &writer)
            }
            if !keepAlive {
                writer.append("Connection: close\r\n")
            } else if head.minorVersion == 0 {
                writer.append("Connection: keep-alive\r\n")
            }
            writer.append("\r\n")
            if head.method != .head {
                switch route {
                case .plaintext: writer.append("Hello, World!")
                case .json: writer.append("{\"message\":\"Hello, World!\"}")
                case .work, .block: writer.append("ok\n")
                case .echo: break
                default: Self.errorBody(status, &writer)
                }
            }
            responseBytes = writer.fits ? writer.count : -1
            return max(0, responseBytes)
        }
        guard responseBytes >= 0 else { return .pauseReading }
        input.consume(head.length)
        connection.count(HTTPMetric.requestBytes, by: UInt64(head.length))
        switch route {
        case .work(let microseconds):
            connection.adjust(HTTPMetric.inProgress, by: 1)
            let until = ConnectionContext.now() + Int64(microseconds) * 1000
            while ConnectionContext.now() < until {}
            connection.adjust(HTTPMetric.inProgress, by: -1)
        case .block(let microseconds):
            connection.adjust(HTTPMetric.inProgress, by: 1)
            connection.blocking { _ = usleep(useconds_t(microseconds)) }
            connection.adjust(HTTPMetric.inProgress, by: -1)
        default:
            break
        }
        if head.hasBody {
            // Echoed back, or read and dropped so the next request is found after it.
            echoing = route == .echo
            requestStart = now
            if echoing {
                // The response's head (and its 100 Continue) now; its body as it is echoed.
                connection.count(HTTPMetric.responseBytes, by: UInt64(responseBytes))
            }
            if head.isChunked {
                body = .chunked
                chunked = HTTPChunkedDecoder(maxBody: configuration.maxBody)
            } else {
                body = .length
                bodyRemaining = head.contentLength ?? 0
            }
            if !echoing { now = finishResponse(status, bytes: responseBytes, start: now, &connection) }
            // Not worth reading a body only to close: the lingering close drops it.
            return keepAlive || echoing ? .continue : .lingeringClose
        }
        // (A bodiless request to /echo: the response, Content-Length: 0, is complete.)
        now = finishResponse(status, bytes: responseBytes, start: now, &connection)
        // Lingering: a request pipelined behind this one may still be in flight, and a plain
        // close would reset the connection under this answer.
        return keepAlive ? .continue : .lingeringClose
    }

    /// Reads (and echoes, or drops) the body under way. Returns a verdict to return now, or nil
    /// when the body is done and the next request may be read.
    private func readBody(_ input: inout InputBuffer, _ output: inout OutputBuffer,
                          _ connection: inout ConnectionContext, now: inout Int64) -> HandlerVerdict? {
        let available = input.unconsumed
        if body == .length {
            var taken = min(bodyRemaining, available.count)
            if echoing {
                taken = min(taken, output.free)
                output.write(UnsafeRawBufferPointer(rebasing: available[0..<taken]))
                connection.count(HTTPMetric.responseBytes, by: UInt64(taken))
            }
            input.consume(taken)
            connection.count(HTTPMetric.requestBytes, by: UInt64(taken))
            bodyRemaining -= taken
            if bodyRemaining > 0 {
                if taken < available.count { return .pauseReading }
                connection.setDeadline(in: configuration.idleTimeoutNs, from: now)
                return .continue
            }
        } else {
            let limit = echoing ? max(0, output.free - Self.chunkFramingRoom) : available.count
            let offered = UnsafeRawBufferPointer(rebasing: available[0..<min(limit, available.count)])
            var result = HTTPChunkedDecoder.Result.consumed(0, finished: false)
            var written = 0
            output.withFreeSpace { space in
                var writer = HTTPResponseWriter(space)
                result = chunked.decode(offered) { data in
                    guard echoing else { return }
                    writer.append(hex: data.count)
                    writer.append("\r\n")
                    writer.append(data)
                    writer.append("\r\n")
                }
                if echoing, case .consumed(_, finished: true) = result { writer.append("0\r\n\r\n") }
                // The room kept back guarantees the fit; checked all the same.
                written = writer.fits ? writer.count : -1
                return max(0, written)
            }
            if written < 0 { return .lingeringClose }
            if echoing { connection.count(HTTPMetric.responseBytes, by: UInt64(written)) }
            switch result {
            case .invalid:
                // The response has begun (echo) or been sent: a bad or oversized body can
                // only end the connection. What was written goes out first (answers to earlier
                // pipelined requests, and an echo's chunks so far: the client sees its chunked
                // body end without the last chunk).
                return .lingeringClose
            case .consumed(let count, let finished):
                input.consume(count)
                connection.count(HTTPMetric.requestBytes, by: UInt64(count))
                if !finished {
                    // Offered less than arrived: the rest once the output has been sent.
                    if offered.count < available.count { return .pauseReading }
                    // All consumed, or a size line or trailer cut short: more must arrive.
                    connection.setDeadline(in: configuration.idleTimeoutNs, from: now)
                    return .continue
                }
            }
        }
        body = .none
        if echoing {
            now = finishResponse(200, bytes: 0, start: requestStart, &connection)
            echoing = false
        }
        return keepAlive ? nil : .lingeringClose
    }

    /// Answers `status` with `reason` and closes (lingering: the rest of the request may still
    /// be arriving, and the client must read this answer, not a reset).
    private func refuse(_ status: Int, _ reason: String, _ input: inout InputBuffer,
                        _ output: inout OutputBuffer, _ connection: inout ConnectionContext) -> HandlerVerdict {
        let date = dates.date(worker: connection.workerIndex)
        var responseBytes = -1
        output.withFreeSpace { space in
            var writer = HTTPResponseWriter(space)
            writer.statusLine(status, date: date)
            writer.append("Content-Type: text/plain\r\nContent-Length: ")
            let reasonBytes = reason.utf8.count
            writer.append(decimal: HTTPStatus.reason(status).utf8CodeUnitCount + 2 + reasonBytes + 1)
            writer.append("\r\nConnection: close\r\n\r\n")
            writer.append(HTTPStatus.reason(status))
            writer.append(": ")
            writer.append(reason)
            writer.append("\n")
            responseBytes = writer.fits ? writer.count : -1
            return max(0, responseBytes)
        }
        guard responseBytes >= 0 else { return .pauseReading }
        input.consumeAll()
        _ = finishResponse(status, bytes: responseBytes, start: ConnectionContext.now(), &connection)
        keepAlive = false
        return .lingeringClose
    }

    /// `Content-Type` and `Content-Length` of an error's body (`errorBody`).
    private static func errorFields(_ status: Int, _ writer: inout HTTPResponseWriter) {
        writer.append("Content-Type: text/plain\r\nContent-Length: ")
        writer.append(decimal: HTTPStatus.reason(status).utf8CodeUnitCount + 1)
        writer.append("\r\n")
    }

    private static func errorBody(_ status: Int, _ writer: inout HTTPResponseWriter) {
        writer.append(HTTPStatus.reason(status))
        writer.append("\n")
    }

    /// Counts a response: its status class, its bytes, its latency. Returns the clock it read.
    @discardableResult
    private func finishResponse(_ status: Int, bytes: Int, start: Int64, _ connection: inout ConnectionContext) -> Int64 {
        connection.count(HTTPMetric.requests)
        connection.countForConnection()
        switch status {
        case 200..<300: connection.count(HTTPMetric.success)
        case 400..<500: connection.count(HTTPMetric.clientErrors)
        default: connection.count(HTTPMetric.serverErrors)
        }
        if bytes > 0 { connection.count(HTTPMetric.responseBytes, by: UInt64(bytes)) }
        let end = ConnectionContext.now()
        connection.record(HTTPMetric.latency, nanoseconds: UInt64(max(0, end - start)))
        return end
    }
}
