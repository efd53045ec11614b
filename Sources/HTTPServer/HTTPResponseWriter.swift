#if canImport(Glibc)
import Glibc
#endif

/// Writes one response into the free part of a connection's output: all of it, or — when it
/// does not fit — nothing (`fits` false, and the handler pauses until the output is sent).
struct HTTPResponseWriter {
    private let space: UnsafeMutableRawBufferPointer
    private(set) var count = 0
    private(set) var fits = true

    init(_ space: UnsafeMutableRawBufferPointer) { self.space = space }

    @inline(__always)
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard fits, bytes.count <= space.count - count else {
            fits = false
            return
        }
        if bytes.count > 0 { (space.baseAddress! + count).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        count += bytes.count
    }

    @inline(__always)
    mutating func append(_ text: StaticString) {
        append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// Decimal digits of a non-negative `value`.
    mutating func append(decimal value: Int) {
        append(value: value, radix: 10)
    }

    /// Lower-case hex digits of a non-negative `value` (a chunk size).
    mutating func append(hex value: Int) {
        append(value: value, radix: 16)
    }

    private mutating func append(value: Int, radix: Int) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { scratch in
            var rest = max(0, value)
            var at = scratch.count
            repeat {
                at -= 1
                let digit = rest % radix
                scratch[at] = digit < 10 ? UInt8(ascii: "0") + UInt8(digit) : UInt8(ascii: "a") + UInt8(digit - 10)
                rest /= radix
            } while rest > 0
            append(UnsafeRawBufferPointer(rebasing: scratch[at...]))
        }
    }

    /// The status line, `Server` and `Date`.
    mutating func statusLine(_ status: Int, date: UnsafeRawBufferPointer) {
        append(HTTPStatus.line(status))
        append("Server: iocptop\r\nDate: ")
        append(date)
        append("\r\n")
    }
}

/// Status lines of the statuses this server sends.
enum HTTPStatus {
    static func line(_ status: Int) -> StaticString {
        switch status {
        case 100: "HTTP/1.1 100 Continue\r\n"
        case 200: "HTTP/1.1 200 OK\r\n"
        case 400: "HTTP/1.1 400 Bad Request\r\n"
        case 404: "HTTP/1.1 404 Not Found\r\n"
        case 405: "HTTP/1.1 405 Method Not Allowed\r\n"
        case 408: "HTTP/1.1 408 Request Timeout\r\n"
        case 413: "HTTP/1.1 413 Content Too Large\r\n"
        case 417: "HTTP/1.1 417 Expectation Failed\r\n"
        case 431: "HTTP/1.1 431 Request Header Fields Too Large\r\n"
        case 501: "HTTP/1.1 501 Not Implemented\r\n"
        case 505: "HTTP/1.1 505 HTTP Version Not Supported\r\n"
        default: "HTTP/1.1 500 Internal Server Error\r\n"
        }
    }

    /// The reason phrase alone (for error bodies).
    static func reason(_ status: Int) -> StaticString {
        switch status {
        case 400: "Bad Request"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 413: "Content Too Large"
        case 417: "Expectation Failed"
        case 431: "Request Header Fields Too Large"
        case 501: "Not Implemented"
        case 505: "HTTP Version Not Supported"
        default: "Internal Server Error"
        }
    }
}

/// The `Date` field's value (IMF-fixdate, RFC 9110 §5.6.7), formatted at most once a second per
/// worker: each worker keeps its own copy on its own cache line, so reading it takes no lock
/// and shares nothing. One coarse clock read per request.
final class HTTPDateCache: @unchecked Sendable {
    // @unchecked: entry i is read and written only by worker i (entry `count - 1` by the
    // drain's thread, which serves no request concurrently with itself).
    private static let stride = 64
    private let entries: UnsafeMutableRawPointer
    private let count: Int

    init(workers: Int) {
        count = workers + 1
        entries = UnsafeMutableRawPointer.allocate(byteCount: count * Self.stride, alignment: 64)
        entries.initializeMemory(as: UInt8.self, repeating: 0, count: count * Self.stride)
        for index in 0..<count { entries.storeBytes(of: Int64.min, toByteOffset: index * Self.stride, as: Int64.self) }
    }

    deinit { entries.deallocate() }

    /// The current date for worker `index` (nil: not on a worker), 29 bytes.
    @inline(__always)
    func date(worker index: Int?) -> UnsafeRawBufferPointer {
        let entry = entries + (min(index ?? (count - 1), count - 1)) * Self.stride
        var now = timespec()
        clock_gettime(CLOCK_REALTIME_COARSE, &now)
        let seconds = Int64(now.tv_sec)
        if entry.load(as: Int64.self) != seconds {
            Self.format(seconds, into: entry + 8)
            entry.storeBytes(of: seconds, as: Int64.self)
        }
        return UnsafeRawBufferPointer(start: entry + 8, count: 29)
    }

    /// "Sun, 06 Nov 1994 08:49:37 GMT".
    static func format(_ seconds: Int64, into target: UnsafeMutableRawPointer) {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        let days: StaticString = "SunMonTueWedThuFriSat"
        let months: StaticString = "JanFebMarAprMayJunJulAugSepOctNovDec"
        let out = target.assumingMemoryBound(to: UInt8.self)
        func put(_ at: Int, _ table: StaticString, _ index: Int) {
            for offset in 0..<3 { out[at + offset] = table.utf8Start[index * 3 + offset] }
        }
        func two(_ at: Int, _ value: Int32) {
            out[at] = UInt8(ascii: "0") + UInt8(value / 10 % 10)
            out[at + 1] = UInt8(ascii: "0") + UInt8(value % 10)
        }
        put(0, days, Int(parts.tm_wday))
        out[3] = UInt8(ascii: ","); out[4] = UInt8(ascii: " ")
        two(5, parts.tm_mday)
        out[7] = UInt8(ascii: " ")
        put(8, months, Int(parts.tm_mon))
        out[11] = UInt8(ascii: " ")
        let year = parts.tm_year + 1900
        two(12, year / 100)
        two(14, year % 100)
        out[16] = UInt8(ascii: " ")
        two(17, parts.tm_hour)
        out[19] = UInt8(ascii: ":")
        two(20, parts.tm_min)
        out[22] = UInt8(ascii: ":")
        two(23, parts.tm_sec)
        for (offset, byte) in " GMT".utf8.enumerated() { out[25 + offset] = byte }
    }
}
