/// A peer's IPv4 or IPv6 address and port, packed in three words (what frames carry).
///
/// `meta`: bits 0–15 the port, bits 16–23 the family (4 or 6; 0: unknown). IPv4 keeps its
/// four bytes in the low 32 bits of `low`; IPv6 its sixteen bytes in `high` then `low`, each
/// word big-endian (the first byte in the top bits).
public struct PeerAddress: Sendable, Hashable, CustomStringConvertible {
    public var meta: UInt64
    public var high: UInt64
    public var low: UInt64

    public init(meta: UInt64 = 0, high: UInt64 = 0, low: UInt64 = 0) {
        (self.meta, self.high, self.low) = (meta, high, low)
    }

    /// An IPv4 address (its four bytes as one host-order word: 127.0.0.1 is 0x7F000001) and port.
    public init(ipv4 address: UInt32, port: UInt16) {
        self.init(meta: 4 << 16 | UInt64(port), high: 0, low: UInt64(address))
    }

    /// An IPv6 address (its sixteen bytes as two host-order words, first byte highest) and port.
    public init(ipv6High high: UInt64, low: UInt64, port: UInt16) {
        self.init(meta: 6 << 16 | UInt64(port), high: high, low: low)
    }

    /// An IPv4 address (its bytes in network order) and port.
    public init(ipv4 bytes: (UInt8, UInt8, UInt8, UInt8), port: UInt16) {
        self.init(ipv4: UInt32(bytes.0) << 24 | UInt32(bytes.1) << 16 | UInt32(bytes.2) << 8 | UInt32(bytes.3), port: port)
    }

    /// An IPv6 address (sixteen bytes in network order) and port.
    public init(ipv6 bytes: [UInt8], port: UInt16) {
        precondition(bytes.count == 16)
        var high: UInt64 = 0, low: UInt64 = 0
        for index in 0..<8 { high = high << 8 | UInt64(bytes[index]) }
        for index in 8..<16 { low = low << 8 | UInt64(bytes[index]) }
        self.init(ipv6High: high, low: low, port: port)
    }

    public var family: Int { Int(meta >> 16 & 0xFF) }
    public var port: Int { Int(meta & 0xFFFF) }

    /// `127.0.0.1:5000`, `[::1]:5000`, or `?` when unknown.
    public var description: String {
        switch family {
        case 4:
            let octets = (0..<4).map { String(low >> (24 - 8 * UInt64($0)) & 0xFF) }
            return octets.joined(separator: ".") + ":\(port)"
        case 6:
            return "[\(ipv6Text)]:\(port)"
        default:
            return "?"
        }
    }

    /// RFC 5952 text: lower-case hex groups, the longest run of two or more zero groups as `::`.
    private var ipv6Text: String {
        let groups = (0..<8).map { index -> UInt64 in
            let word = index < 4 ? high : low
            return word >> (48 - 16 * UInt64(index % 4)) & 0xFFFF
        }
        var bestStart = -1, bestLength = 1, start = -1
        for index in 0...8 {
            if index < 8 && groups[index] == 0 {
                if start < 0 { start = index }
            } else if start >= 0 {
                if index - start > bestLength { (bestStart, bestLength) = (start, index - start) }
                start = -1
            }
        }
        let hex = groups.map { String($0, radix: 16) }
        guard bestStart >= 0 else { return hex.joined(separator: ":") }
        let left = hex[..<bestStart].joined(separator: ":"), right = hex[(bestStart + bestLength)...].joined(separator: ":")
        return left + "::" + right
    }
}
