/// Reads HTTP/1.1 responses as they arrive on a load connection, and checks each: a 2xx status,
/// a `Content-Length` body, and the same body (length and FNV-1a hash) as the first response of
/// the run. The head of a response is gathered in the connection's own `headCapacity` bytes
/// (a head cut across reads); the body is hashed in place. Nothing is allocated.
struct HTTPResponseCheck {
    /// Largest response head the load generator reads.
    static let headCapacity = 2048

    /// One connection's reading state.
    struct State {
        var headBytes = 0
        var inBody = false
        var bodyLeft = 0
        var bodyLength = 0
        var hash: UInt64 = HTTPResponseCheck.fnvOffset
        var status = 0
    }

    /// What reading some bytes found.
    enum Event {
        /// A whole response: its status, and whether its body matched the reference.
        case response(status: Int, bodyMatches: Bool)
        /// The bytes are not a response this reader understands (the connection must close).
        case malformed(String)
    }

    static let fnvOffset: UInt64 = 0xcbf2_9ce4_8422_2325
    static let fnvPrime: UInt64 = 0x100_0000_01b3

    /// The reference body, from the run's first 2xx response (per client thread).
    private(set) var referenceLength = -1
    private(set) var referenceHash: UInt64 = 0

    /// Reads `bytes` for the connection whose state is `state` and head space `head`; calls
    /// `event` per response (or malformed input, after which it stops). Returns false after a
    /// malformed one.
    mutating func read(_ bytes: UnsafeRawBufferPointer, state: inout State, head: UnsafeMutableRawPointer,
                       _ event: (Event) -> Void) -> Bool {
        var at = 0
        while at < bytes.count {
            if !state.inBody {
                let take = min(bytes.count - at, Self.headCapacity - state.headBytes)
                (head + state.headBytes).copyMemory(from: bytes.baseAddress! + at, byteCount: take)
                let searchFrom = max(0, state.headBytes - 3)
                let held = state.headBytes + take
                guard let end = Self.headEnd(head, from: searchFrom, to: held) else {
                    state.headBytes = held
                    at += take
                    if held == Self.headCapacity {
                        event(.malformed("response head larger than \(Self.headCapacity) bytes"))
                        return false
                    }
                    continue
                }
                at += end - state.headBytes
                state.headBytes = 0
                guard let (status, length) = Self.parseHead(UnsafeRawBufferPointer(start: head, count: end)) else {
                    event(.malformed("malformed or chunked response"))
                    return false
                }
                // An interim response (100 Continue) precedes the final one: not an answer.
                if status < 200 { continue }
                state.status = status
                state.bodyLeft = length
                state.bodyLength = length
                state.hash = Self.fnvOffset
                state.inBody = true
            }
            let chunk = min(state.bodyLeft, bytes.count - at)
            var hash = state.hash
            for index in at..<(at + chunk) { hash = (hash ^ UInt64(bytes[index])) &* Self.fnvPrime }
            state.hash = hash
            state.bodyLeft -= chunk
            at += chunk
            if state.bodyLeft == 0 {
                state.inBody = false
                let success = (200..<300).contains(state.status)
                if success && referenceLength < 0 {
                    referenceLength = state.bodyLength
                    referenceHash = hash
                }
                event(.response(status: state.status, bodyMatches: !success || (state.bodyLength == referenceLength && hash == referenceHash)))
            }
        }
        return true
    }

    private static func headEnd(_ head: UnsafeMutableRawPointer, from: Int, to: Int) -> Int? {
        let bytes = head.assumingMemoryBound(to: UInt8.self)
        var index = from
        while index + 3 < to {
            if bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 { return index + 4 }
            index += 1
        }
        return nil
    }

    /// The status and `Content-Length` of a head; nil when it is not `HTTP/1.x NNN …`, has no
    /// length, or is chunked.
    static func parseHead(_ head: UnsafeRawBufferPointer) -> (status: Int, length: Int)? {
        guard head.count >= 12, head[0] == UInt8(ascii: "H"), head[4] == UInt8(ascii: "/"), head[8] == UInt8(ascii: " ") else { return nil }
        var status = 0
        for index in 9..<12 {
            let digit = Int(head[index]) - 48
            guard (0...9).contains(digit) else { return nil }
            status = status * 10 + digit
        }
        // 1xx, 204 and 304 have no body.
        if status < 200 || status == 204 || status == 304 { return (status, 0) }
        var line = 0
        while line < head.count, head[line] != 10 { line += 1 }
        line += 1
        var length: Int?
        while line < head.count - 2 {
            var end = line
            while end < head.count, head[end] != 13 { end += 1 }
            if matches(head, line, "content-length:") {
                var index = line + 15
                while index < end, head[index] == 32 || head[index] == 9 { index += 1 }
                var value = 0, digits = 0
                while index < end, (48...57).contains(head[index]), digits < 15 { value = value * 10 + Int(head[index]) - 48; index += 1; digits += 1 }
                guard digits > 0 else { return nil }
                length = value
            } else if matches(head, line, "transfer-encoding:") {
                return nil
            }
            line = end + 2
        }
        return length.map { (status, $0) }
    }

    private static func matches(_ head: UnsafeRawBufferPointer, _ at: Int, _ lowercase: StaticString) -> Bool {
        guard at + lowercase.utf8CodeUnitCount <= head.count else { return false }
        for index in 0..<lowercase.utf8CodeUnitCount where head[at + index] | 0x20 != lowercase.utf8Start[index] | 0x20 {
            return false
        }
        return true
    }
}
