/// The bytes every connection sends, so that each echoed byte can be checked.
///
/// One pseudo-random pattern of 64 KiB + one message. Message `m` of connection `c` is the
/// slice starting at a per-(c, m) pseudo-random offset, so consecutive messages differ,
/// connections differ, and a byte lost, duplicated, reordered or crossed between connections
/// is caught by comparing the echo with the slice it should be — a `memcmp`, no generation
/// per message.
struct PayloadPattern: @unchecked Sendable {
    // @unchecked: immutable bytes after construction.
    static let span = 1 << 16
    let bytes: UnsafeMutableRawBufferPointer
    let messageSize: Int
    /// Every message is the same bytes (an HTTP request), at offset 0.
    let isFixed: Bool

    /// Every message is `message`.
    init(fixed message: [UInt8]) {
        messageSize = message.count
        isFixed = true
        bytes = .allocate(byteCount: message.count, alignment: 64)
        bytes.copyBytes(from: message)
    }

    init(messageSize: Int, seed: UInt64 = 0x10CB_7013) {
        self.messageSize = messageSize
        isFixed = false
        bytes = .allocate(byteCount: Self.span + messageSize, alignment: 64)
        var state = seed
        for index in 0..<bytes.count {
            state = Self.mix(state &+ 0x9E37_79B9_7F4A_7C15)
            bytes[index] = UInt8(truncatingIfNeeded: state >> 29)
        }
    }

    func deallocate() { bytes.deallocate() }

    /// SplitMix64's finaliser.
    @inline(__always)
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Where message `message` of connection `connection` starts in the pattern.
    @inline(__always)
    func start(connection: Int, message: UInt64) -> Int {
        if isFixed { return 0 }
        return Int(truncatingIfNeeded: Self.mix(UInt64(connection) &* 0x1_0000_0001 ^ message) & UInt64(Self.span - 1))
    }
}
