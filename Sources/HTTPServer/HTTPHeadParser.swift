/// Parses an HTTP/1.1 request head (RFC 9112 §3, §5, §6) in place: one pass over the bytes,
/// nothing allocated, nothing copied.
///
/// Strict where leniency lets two parsers disagree about where a request ends (request
/// smuggling): only CRLF ends a line; no whitespace before a field's colon; no obsolete line
/// folding; `Content-Length` digits only, and a repeated one must repeat the same value;
/// `Content-Length` with `Transfer-Encoding` is refused; `Transfer-Encoding` must be exactly
/// `chunked` (anything else is not implemented); HTTP/1.1 needs exactly one `Host`.
public enum HTTPHeadParser {
    /// Bounds on a head: larger is refused with 431.
    public struct Limits: Sendable, Hashable {
        public var maxHeadBytes = 8192
        public var maxFields = 100
        public init() {}
    }

    /// What the bytes hold.
    public enum Result: Sendable, Hashable {
        /// Not a whole head yet (and within the limits): wait for more bytes.
        case incomplete
        case head(HTTPRequestHead)
        /// A head the server must refuse with `status` (and then close: framing is unknown).
        case invalid(status: Int, reason: String)
    }

    private static let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n"), sp = UInt8(ascii: " "), tab = UInt8(ascii: "\t")

    /// `tchar` of RFC 9110 §5.6.2.
    @inline(__always)
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// Whether `bytes[range]` equals `lowercase` ignoring ASCII case.
    @inline(__always)
    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ lowercase: StaticString) -> Bool {
        guard range.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = lowercase.utf8Start
        for index in 0..<range.count {
            var byte = bytes[range.lowerBound + index]
            if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { byte |= 0x20 }
            if byte != expected[index] { return false }
        }
        return true
    }

    /// Parses the head at the start of `bytes`.
    public static func parse(_ bytes: UnsafeRawBufferPointer, limits: Limits = Limits()) -> Result {
        // The head ends at the first CRLFCRLF; none within the limit means wait or refuse.
        let searched = min(bytes.count, limits.maxHeadBytes)
        var end = -1
        var at = 3
        while at < searched {
            if bytes[at] == lf && bytes[at - 1] == cr && bytes[at - 2] == lf && bytes[at - 3] == cr {
                end = at + 1
                break
            }
            at += 1
        }
        if end < 0 {
            return bytes.count >= limits.maxHeadBytes
                ? .invalid(status: 431, reason: "request head larger than \(limits.maxHeadBytes) bytes") : .incomplete
        }
        return parseHead(bytes, end: end, limits: limits)
    }

    private static func parseHead(_ bytes: UnsafeRawBufferPointer, end: Int, limits: Limits) -> Result {
        // Request line: method SP request-target SP HTTP-version CRLF.
        var at = 0
        while at < end && isTokenByte(bytes[at]) { at += 1 }
        guard at > 0, at < end, bytes[at] == sp else { return .invalid(status: 400, reason: "malformed request line") }
        let method = Self.method(bytes, 0..<at)
        at += 1
        let targetStart = at
        while at < end, bytes[at] > sp, bytes[at] != 0x7F { at += 1 }
        guard at > targetStart, at < end, bytes[at] == sp, isTargetForm(bytes, targetStart..<at, method: method) else {
            return .invalid(status: 400, reason: "malformed request target")
        }
        let target = targetStart..<at
        at += 1
        // "HTTP/" DIGIT "." DIGIT CRLF
        guard at + 10 <= end, bytes[at] == UInt8(ascii: "H"), bytes[at + 1] == UInt8(ascii: "T"), bytes[at + 2] == UInt8(ascii: "T"),
              bytes[at + 3] == UInt8(ascii: "P"), bytes[at + 4] == UInt8(ascii: "/"), bytes[at + 6] == UInt8(ascii: "."),
              bytes[at + 8] == cr, bytes[at + 9] == lf,
              (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[at + 5]),
              (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[at + 7]) else {
            return .invalid(status: 400, reason: "malformed HTTP version")
        }
        guard bytes[at + 5] == UInt8(ascii: "1") else { return .invalid(status: 505, reason: "HTTP version not supported") }
        let minor = bytes[at + 7] == UInt8(ascii: "0") ? 0 : 1
        at += 10

        var head = HTTPRequestHead(method: method, target: target, minorVersion: minor, contentLength: nil, isChunked: false,
                                   keepAlive: minor >= 1, expectsContinue: false, fieldCount: 0, length: end)
        var hosts = 0
        var sawTransferEncoding = false
        var sawClose = false, sawKeepAlive = false
        // Fields: name ":" OWS value OWS CRLF, until the empty line.
        while at < end - 2 {
            head.fieldCount += 1
            guard head.fieldCount <= limits.maxFields else {
                return .invalid(status: 431, reason: "more than \(limits.maxFields) header fields")
            }
            let nameStart = at
            while at < end && isTokenByte(bytes[at]) { at += 1 }
            // Whitespace before the colon, an obs-fold continuation or an empty name: refused.
            guard at > nameStart, at < end, bytes[at] == UInt8(ascii: ":") else {
                return .invalid(status: 400, reason: "malformed header field")
            }
            let name = nameStart..<at
            at += 1
            while at < end && (bytes[at] == sp || bytes[at] == tab) { at += 1 }
            var valueStart = at
            var valueEnd = at
            while at < end && bytes[at] != cr {
                let byte = bytes[at]
                // field-vchar, SP, HTAB, obs-text; a bare LF or another control is refused.
                guard byte >= sp || byte == tab, byte != 0x7F else { return .invalid(status: 400, reason: "control character in a header field") }
                at += 1
                if byte != sp && byte != tab { valueEnd = at }
            }
            guard at + 1 < end, bytes[at + 1] == lf else { return .invalid(status: 400, reason: "header line not ended by CRLF") }
            if valueEnd < valueStart { valueStart = valueEnd }
            let value = valueStart..<valueEnd
            // Content-Length is taken only as bare digits: no whitespace after them either (a
            // parser that reads "10\t" differently must not see another framing).
            if valueEnd != at && name.count == 14 && equalsIgnoringCase(bytes, name, "content-length") {
                return .invalid(status: 400, reason: "bad Content-Length")
            }
            at += 2
            if let failure = apply(bytes, name: name, value: value, to: &head, hosts: &hosts,
                                   sawTransferEncoding: &sawTransferEncoding, sawClose: &sawClose, sawKeepAlive: &sawKeepAlive) {
                return failure
            }
        }
        if sawTransferEncoding && head.contentLength != nil {
            return .invalid(status: 400, reason: "both Content-Length and Transfer-Encoding")
        }
        if sawTransferEncoding && minor == 0 {
            return .invalid(status: 400, reason: "Transfer-Encoding in an HTTP/1.0 request")
        }
        if minor >= 1 && hosts != 1 {
            return .invalid(status: 400, reason: hosts == 0 ? "HTTP/1.1 request without Host" : "more than one Host")
        }
        if sawClose { head.keepAlive = false } else if minor == 0 && sawKeepAlive { head.keepAlive = true }
        return .head(head)
    }

    /// Takes in one field the server acts on; returns a refusal, or nil.
    private static func apply(_ bytes: UnsafeRawBufferPointer, name: Range<Int>, value: Range<Int>, to head: inout HTTPRequestHead,
                              hosts: inout Int, sawTransferEncoding: inout Bool, sawClose: inout Bool,
                              sawKeepAlive: inout Bool) -> Result? {
        switch name.count {
        case 4 where equalsIgnoringCase(bytes, name, "host"):
            hosts += 1
        case 14 where equalsIgnoringCase(bytes, name, "content-length"):
            guard !value.isEmpty, value.count <= 18 else { return .invalid(status: 400, reason: "bad Content-Length") }
            var length = 0
            for index in value {
                let byte = bytes[index]
                guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else {
                    return .invalid(status: 400, reason: "bad Content-Length")
                }
                length = length * 10 + Int(byte - UInt8(ascii: "0"))
            }
            if let earlier = head.contentLength, earlier != length {
                return .invalid(status: 400, reason: "conflicting Content-Length values")
            }
            head.contentLength = length
        case 17 where equalsIgnoringCase(bytes, name, "transfer-encoding"):
            guard !sawTransferEncoding else { return .invalid(status: 400, reason: "more than one Transfer-Encoding") }
            sawTransferEncoding = true
            guard equalsIgnoringCase(bytes, value, "chunked") else {
                return .invalid(status: 501, reason: "Transfer-Encoding other than chunked")
            }
            head.isChunked = true
        case 10 where equalsIgnoringCase(bytes, name, "connection"):
            // A comma-separated list of tokens.
            var start = value.lowerBound
            while start < value.upperBound {
                var stop = start
                while stop < value.upperBound && bytes[stop] != UInt8(ascii: ",") { stop += 1 }
                var first = start, last = stop
                while first < last && (bytes[first] == sp || bytes[first] == tab) { first += 1 }
                while last > first && (bytes[last - 1] == sp || bytes[last - 1] == tab) { last -= 1 }
                if equalsIgnoringCase(bytes, first..<last, "close") { sawClose = true }
                if equalsIgnoringCase(bytes, first..<last, "keep-alive") { sawKeepAlive = true }
                start = stop + 1
            }
        case 6 where equalsIgnoringCase(bytes, name, "expect"):
            guard equalsIgnoringCase(bytes, value, "100-continue") else {
                return .invalid(status: 417, reason: "Expect other than 100-continue")
            }
            head.expectsContinue = true
        default:
            break
        }
        return nil
    }

    /// One of the four forms of RFC 9112 §3.2: origin (`/path?query`), asterisk (`*`),
    /// absolute (`scheme://…`), or authority (`host:port`, for CONNECT only).
    private static func isTargetForm(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, method: HTTPMethod) -> Bool {
        let first = bytes[range.lowerBound]
        if first == UInt8(ascii: "/") { return true }
        if range.count == 1 && first == UInt8(ascii: "*") { return true }
        if method == .connect { return true }
        // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then "://".
        func isAlpha(_ byte: UInt8) -> Bool { (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z") }
        guard isAlpha(first) else { return false }
        var at = range.lowerBound + 1
        while at < range.upperBound, isAlpha(bytes[at]) || (bytes[at] >= UInt8(ascii: "0") && bytes[at] <= UInt8(ascii: "9"))
                || bytes[at] == UInt8(ascii: "+") || bytes[at] == UInt8(ascii: "-") || bytes[at] == UInt8(ascii: ".") {
            at += 1
        }
        return at + 3 < range.upperBound && bytes[at] == UInt8(ascii: ":") && bytes[at + 1] == UInt8(ascii: "/")
            && bytes[at + 2] == UInt8(ascii: "/")
    }

    private static func method(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> HTTPMethod {
        // Methods are case-sensitive (RFC 9110 §9.1).
        func equals(_ name: StaticString) -> Bool {
            guard range.count == name.utf8CodeUnitCount else { return false }
            for index in 0..<range.count where bytes[range.lowerBound + index] != name.utf8Start[index] { return false }
            return true
        }
        if equals("GET") { return .get }
        if equals("HEAD") { return .head }
        if equals("POST") { return .post }
        if equals("PUT") { return .put }
        if equals("DELETE") { return .delete }
        if equals("OPTIONS") { return .options }
        if equals("PATCH") { return .patch }
        if equals("TRACE") { return .trace }
        if equals("CONNECT") { return .connect }
        return .other
    }
}

extension HTTPHeadParser {
    /// Calls `body` with each header field's name and value (surrounding whitespace trimmed)
    /// of a head `parse` accepted from `bytes`, in order.
    public static func forEachField(in bytes: UnsafeRawBufferPointer, of head: HTTPRequestHead,
                                    _ body: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Void) {
        var at = 0
        // Past the request line.
        while at + 1 < head.length && !(bytes[at] == cr && bytes[at + 1] == lf) { at += 1 }
        at += 2
        while at + 1 < head.length && bytes[at] != cr {
            let nameStart = at
            while bytes[at] != UInt8(ascii: ":") { at += 1 }
            let name = UnsafeRawBufferPointer(rebasing: bytes[nameStart..<at])
            at += 1
            while bytes[at] == sp || bytes[at] == tab { at += 1 }
            let valueStart = at
            while bytes[at] != cr { at += 1 }
            var valueEnd = at
            while valueEnd > valueStart && (bytes[valueEnd - 1] == sp || bytes[valueEnd - 1] == tab) { valueEnd -= 1 }
            body(name, UnsafeRawBufferPointer(rebasing: bytes[valueStart..<valueEnd]))
            at += 2
        }
    }

    /// Whether a field name is `lowercase`, ignoring ASCII case.
    public static func fieldName(_ name: UnsafeRawBufferPointer, is lowercase: StaticString) -> Bool {
        equalsIgnoringCase(name, 0..<name.count, lowercase)
    }
}
