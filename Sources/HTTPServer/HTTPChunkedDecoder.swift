/// Decodes a chunked request body (RFC 9112 §7.1) as it arrives, in place: each call takes the
/// bytes received so far, hands the chunks' data to `body` as slices of them (no copy), and
/// says how many bytes it consumed — a size line or trailer cut short stays unconsumed until
/// the rest arrives. Nothing is allocated.
///
/// Strict, as the head parser is: chunk sizes are hex digits only (at most 15 of them), a
/// chunk's data must end in CRLF, only CRLF ends a line, chunk extensions and trailer fields
/// are bounded (and skipped), and the whole body is bounded by `maxBody` (413 beyond it).
public struct HTTPChunkedDecoder: Sendable, Hashable {
    /// What one call did.
    public enum Result: Sendable, Hashable {
        /// Bytes used; `finished`: the last chunk and the trailer section are in.
        case consumed(Int, finished: Bool)
        /// The body is refused with `status` (400 malformed, 413 too large).
        case invalid(status: Int, reason: String)
    }

    private enum State: Sendable, Hashable {
        case size
        case data(remaining: Int)
        case dataEnd
        case trailer
        case done
    }

    private var state = State.size
    /// Body bytes decoded so far.
    public private(set) var bodyBytes = 0
    public let maxBody: Int
    /// Longest size line (size, extensions, CRLF) and longest trailer section.
    public static let maxLine = 4096
    public static let maxTrailer = 8192

    public init(maxBody: Int) { self.maxBody = maxBody }

    public var isFinished: Bool { state == .done }

    private static let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")

    public mutating func decode(_ bytes: UnsafeRawBufferPointer, body: (UnsafeRawBufferPointer) -> Void) -> Result {
        var at = 0
        while at < bytes.count {
            switch state {
            case .done:
                return .consumed(at, finished: true)
            case .size:
                // HEXDIG+ [ chunk-ext ] CRLF
                guard let lineEnd = Self.lineEnd(bytes, from: at, limit: Self.maxLine) else {
                    return bytes.count - at >= Self.maxLine
                        ? .invalid(status: 400, reason: "chunk size line too long") : .consumed(at, finished: false)
                }
                guard let lineEnd = lineEnd else { return .invalid(status: 400, reason: "bare LF in a chunk size line") }
                var size = 0, digits = 0, index = at
                while index < lineEnd, let value = Self.hexValue(bytes[index]) {
                    size = size << 4 | value
                    digits += 1
                    index += 1
                }
                guard digits > 0, digits <= 15 else { return .invalid(status: 400, reason: "bad chunk size") }
                // Anything after the digits must be an extension: ";" (whitespace allowed before it).
                while index < lineEnd && (bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "\t")) { index += 1 }
                guard index == lineEnd || bytes[index] == UInt8(ascii: ";") else { return .invalid(status: 400, reason: "bad chunk size") }
                at = lineEnd + 2
                if size == 0 {
                    state = .trailer
                } else {
                    guard size <= maxBody - bodyBytes else { return .invalid(status: 413, reason: "body larger than \(maxBody) bytes") }
                    state = .data(remaining: size)
                }
            case .data(let remaining):
                let take = min(remaining, bytes.count - at)
                body(UnsafeRawBufferPointer(rebasing: bytes[at..<(at + take)]))
                bodyBytes += take
                at += take
                state = take == remaining ? .dataEnd : .data(remaining: remaining - take)
            case .dataEnd:
                guard bytes.count - at >= 2 else { return .consumed(at, finished: false) }
                guard bytes[at] == Self.cr && bytes[at + 1] == Self.lf else { return .invalid(status: 400, reason: "chunk data not ended by CRLF") }
                at += 2
                state = .size
            case .trailer:
                // Trailer fields (skipped), then the empty line.
                var index = at
                while true {
                    guard let found = Self.lineEnd(bytes, from: index, limit: Self.maxTrailer - (index - at)) else {
                        return bytes.count - at >= Self.maxTrailer
                            ? .invalid(status: 431, reason: "trailer section too large") : .consumed(at, finished: false)
                    }
                    guard let lineEnd = found else { return .invalid(status: 400, reason: "bare LF in the trailer section") }
                    if lineEnd == index {
                        state = .done
                        return .consumed(lineEnd + 2, finished: true)
                    }
                    guard HTTPHeadParser.isTokenByte(bytes[index]) else { return .invalid(status: 400, reason: "malformed trailer field") }
                    index = lineEnd + 2
                }
            }
        }
        return .consumed(at, finished: state == .done)
    }

    /// Where the CRLF ending the line at `from` starts: nil when not within `limit` bytes or
    /// the buffer; `.some(nil)` when a bare LF comes first.
    private static func lineEnd(_ bytes: UnsafeRawBufferPointer, from: Int, limit: Int) -> Int?? {
        var index = from
        let end = min(bytes.count, from + max(0, limit))
        while index < end {
            if bytes[index] == lf { return .some(nil) }
            if bytes[index] == cr {
                guard index + 1 < bytes.count else { return nil }
                return bytes[index + 1] == lf ? .some(index) : .some(nil)
            }
            index += 1
        }
        return nil
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}
