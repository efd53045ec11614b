/// Monotonic per-worker counters (or their sum over several workers).
public struct WorkerCounts: Sendable, Hashable {
    /// Completions dequeued, by kind.
    public var accepts: UInt64 = 0
    public var receives: UInt64 = 0
    public var sends: UInt64 = 0
    /// Posted packets (shutdown and other control packets).
    public var posted: UInt64 = 0
    /// Bytes that completed receives brought in, and completed sends took out.
    public var bytesIn: UInt64 = 0
    public var bytesOut: UInt64 = 0

    public init() {}

    /// Every completion dequeued, whatever its kind.
    public var completions: UInt64 { accepts &+ receives &+ sends &+ posted }

    public static func + (lhs: WorkerCounts, rhs: WorkerCounts) -> WorkerCounts {
        var sum = lhs
        sum += rhs
        return sum
    }

    public static func += (lhs: inout WorkerCounts, rhs: WorkerCounts) {
        lhs.accepts &+= rhs.accepts
        lhs.receives &+= rhs.receives
        lhs.sends &+= rhs.sends
        lhs.posted &+= rhs.posted
        lhs.bytesIn &+= rhs.bytesIn
        lhs.bytesOut &+= rhs.bytesOut
    }
}
