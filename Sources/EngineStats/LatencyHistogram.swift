/// Log-linear buckets for durations from 1 µs to 17 s, with a constant-time index.
///
/// Bucket 0 holds everything below 1024 ns. Above it, each power of two (an octave) is split
/// into 8 equal buckets: a value `v` with its highest set bit at `e` (10…33) falls in bucket
/// `1 + (e − 10) × 8 + ((v >> (e − 3)) & 7)` — one leading-zero count, two shifts, no loop.
/// A bucket is at most 1/8 of its lower bound wide, so its midpoint is within 6.25 % of any
/// value in it. The last bucket holds everything from 2^34 ns (17.2 s) up.
///
/// Counts are kept per bucket since the start (each bucket is a counter): two snapshots diff
/// bucket by bucket, and summing buckets up to a bound gives Prometheus' cumulative `le`
/// buckets.
public enum LatencyBuckets {
    /// Buckets per octave (a power of 8 keeps the index to shifts).
    static let perOctave = 8
    /// The first octave: 2^10 ns ≈ 1 µs.
    static let firstExponent = 10
    /// Octaves split into buckets: 2^10 … 2^34 ns.
    static let octaves = 24
    /// Every bucket: the one below 1 µs, 24 × 8 log-linear ones, the overflow.
    public static let count = 1 + octaves * perOctave + 1

    /// The bucket of `nanoseconds`.
    @inlinable @inline(__always)
    public static func index(_ nanoseconds: UInt64) -> Int {
        if nanoseconds < 1024 { return 0 }
        let exponent = 63 - nanoseconds.leadingZeroBitCount
        if exponent >= 34 { return 1 + 24 * 8 }
        let sub = Int(truncatingIfNeeded: nanoseconds >> UInt64(exponent - 3)) & 7
        return 1 + (exponent - 10) * 8 + sub
    }

    /// The values bucket `index` holds: `lower ..< upper` in ns (the last bucket's upper bound
    /// is `UInt64.max`).
    public static func bounds(_ index: Int) -> (lower: UInt64, upper: UInt64) {
        if index <= 0 { return (0, 1024) }
        if index >= count - 1 { return (1 << 34, UInt64.max) }
        let exponent = UInt64(firstExponent + (index - 1) / perOctave)
        let sub = UInt64((index - 1) % perOctave)
        return ((8 + sub) << (exponent - 3), (9 + sub) << (exponent - 3))
    }

    /// The value a bucket stands for: its midpoint (the overflow bucket: its lower bound).
    public static func representative(_ index: Int) -> UInt64 {
        let (lower, upper) = bounds(index)
        if index == 0 { return 512 }
        if index >= count - 1 { return lower }
        return lower + (upper - lower) / 2
    }
}

/// Counts per `LatencyBuckets` bucket: a worker's queue-wait or service-time distribution since
/// it started, as a frame carries it.
public struct LatencyHistogram: Sendable, Hashable {
    /// One counter per bucket (empty means all zero).
    public var counts: [UInt64]

    public init() { counts = [] }

    public init(counts: [UInt64]) { self.counts = counts }

    /// Count in bucket `index`.
    @inlinable public subscript(index: Int) -> UInt64 { index < counts.count ? counts[index] : 0 }

    /// Every value counted.
    public var total: UInt64 { counts.reduce(0, &+) }

    /// Adds one value (tests and synthetic frames; workers count in their slots).
    public mutating func record(_ nanoseconds: UInt64, count: UInt64 = 1) {
        if counts.isEmpty { counts = [UInt64](repeating: 0, count: LatencyBuckets.count) }
        counts[LatencyBuckets.index(nanoseconds)] &+= count
    }

    /// Bucket by bucket sum.
    public static func + (lhs: LatencyHistogram, rhs: LatencyHistogram) -> LatencyHistogram {
        var sum = lhs
        sum += rhs
        return sum
    }

    public static func += (lhs: inout LatencyHistogram, rhs: LatencyHistogram) {
        guard !rhs.counts.isEmpty else { return }
        if lhs.counts.isEmpty { lhs.counts = [UInt64](repeating: 0, count: LatencyBuckets.count) }
        for index in 0..<min(lhs.counts.count, rhs.counts.count) { lhs.counts[index] &+= rhs.counts[index] }
    }

    /// What was counted since `earlier` (a snapshot of the same counters): bucket by bucket
    /// differences. A bucket that went backwards (another worker in a reused slot) counts from 0.
    public func since(_ earlier: LatencyHistogram) -> LatencyHistogram {
        guard !counts.isEmpty else { return LatencyHistogram() }
        var difference = counts
        for index in difference.indices {
            let before = earlier[index]
            difference[index] = difference[index] >= before ? difference[index] - before : difference[index]
        }
        return LatencyHistogram(counts: difference)
    }

    /// The value below which `quantile` (0…1) of the counts fall, as its bucket's
    /// representative, in ns; nil when nothing was counted.
    public func percentile(_ quantile: Double) -> UInt64? {
        let total = total
        guard total > 0 else { return nil }
        let wanted = (Double(total) * min(1, max(0, quantile))).rounded(.up)
        let rank = wanted >= Double(total) ? total : max(1, UInt64(wanted))
        var seen: UInt64 = 0
        for (index, count) in counts.enumerated() {
            seen &+= count
            if seen >= rank { return LatencyBuckets.representative(index) }
        }
        return LatencyBuckets.representative(counts.count - 1)
    }

    /// Counts at or below each bound of `upperBounds` (ns, ascending): Prometheus `le` buckets.
    /// A bound inside a bucket counts that bucket only when the bound reaches its upper end.
    public func cumulative(atOrBelow upperBounds: [UInt64]) -> [UInt64] {
        var result: [UInt64] = []
        var index = 0, running: UInt64 = 0
        for bound in upperBounds {
            while index < counts.count, LatencyBuckets.bounds(index).upper <= bound {
                running &+= counts[index]
                index += 1
            }
            result.append(running)
        }
        return result
    }
}
