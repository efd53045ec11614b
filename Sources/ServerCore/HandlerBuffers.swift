/// The bytes a connection has received and its handler has not consumed yet: contiguous, in
/// the connection's own buffer (no copy). Valid only during the handler's call.
public struct InputBuffer {
    /// Every unconsumed byte, from the oldest.
    public let bytes: UnsafeRawBufferPointer
    /// Bytes consumed by this call so far.
    public private(set) var consumed = 0
    /// Whether the input fills the largest buffer the server has for it: a handler that needs
    /// more bytes than `bytes` before it can consume any must reject the input (a message
    /// larger than the server can hold). (Short of that, the core grows the buffer and calls
    /// again when more has arrived.)
    public let isFull: Bool

    init(bytes: UnsafeRawBufferPointer, isFull: Bool) {
        self.bytes = bytes
        self.isFull = isFull
    }

    /// The bytes not consumed yet.
    public var unconsumed: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: bytes[consumed...]) }

    /// Marks `count` more bytes as used: they will not be handed over again.
    public mutating func consume(_ count: Int) {
        precondition(count >= 0 && consumed + count <= bytes.count, "consumed more than was received")
        consumed += count
    }

    /// Marks every byte as used.
    public mutating func consumeAll() { consumed = bytes.count }
}

/// Where a handler writes what the connection sends: the free part of the connection's output
/// buffer (no copy before the send). Writes are all or nothing: one that does not fit writes
/// nothing and returns false, and the handler returns `.pauseReading` to be called again
/// once the output has been sent. Valid only during the handler's call.
public struct OutputBuffer {
    private let base: UnsafeMutableRawPointer?
    /// Bytes the buffer can take in this call.
    public let capacity: Int
    /// Bytes written in this call.
    public private(set) var count = 0

    init(base: UnsafeMutableRawPointer?, capacity: Int) {
        self.base = base
        self.capacity = capacity
    }

    /// Bytes that can still be written in this call.
    public var free: Int { capacity - count }

    /// Appends `bytes` if they fit.
    @discardableResult
    public mutating func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count <= free else { return false }
        if let source = bytes.baseAddress, bytes.count > 0 {
            (base! + count).copyMemory(from: source, byteCount: bytes.count)
        }
        count += bytes.count
        return true
    }

    /// Appends a literal's UTF-8 bytes if they fit.
    @discardableResult
    public mutating func write(_ text: StaticString) -> Bool {
        write(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Appends the decimal digits of `value` if they fit.
    @discardableResult
    public mutating func write(decimal value: Int) -> Bool {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        return withUnsafeMutableBytes(of: &digits) { scratch in
            var magnitude = value.magnitude
            var at = scratch.count
            repeat {
                at -= 1
                scratch[at] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            if value < 0 {
                at -= 1
                scratch[at] = UInt8(ascii: "-")
            }
            return write(UnsafeRawBufferPointer(rebasing: scratch[at...]))
        }
    }

    /// Lets `body` write straight into the free space; it returns how many bytes it wrote.
    public mutating func withFreeSpace(_ body: (UnsafeMutableRawBufferPointer) -> Int) {
        let space = UnsafeMutableRawBufferPointer(start: base.map { $0 + count }, count: free)
        let written = body(space)
        precondition(written >= 0 && written <= space.count, "wrote outside the output buffer")
        count += written
    }
}
