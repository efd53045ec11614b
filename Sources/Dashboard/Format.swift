import EngineStats

/// Number formatting shared by the dashboard, the batch printer and the JSON writer: no locale,
/// no Foundation.
public enum Format {
    /// `value` with exactly `decimals` decimals ("12.3"); non-finite values print as "0".
    public static func fixed(_ value: Double, decimals: Int = 1) -> String {
        guard value.isFinite else { return "0" }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (value * scale).rounded()
        guard abs(scaled) < 9e15 else {
            // Too large for fixed decimals (or for Int64 at all): whole digits, saturated.
            return abs(value) < 9e18 ? String(Int64(value.rounded())) : (value < 0 ? "-" : "") + "9223372036854775807"
        }
        let whole = Int64(scaled)
        guard decimals > 0 else { return String(whole) }
        let sign = whole < 0 ? "-" : ""
        let magnitude = whole.magnitude
        let divisor = UInt64(scale)
        var fraction = String(magnitude % divisor)
        while fraction.count < decimals { fraction = "0" + fraction }
        return "\(sign)\(magnitude / divisor).\(fraction)"
    }

    /// 950, 12.3k, 4.5M.
    public static func rate(_ value: Double) -> String {
        if value >= 1e6 { return fixed(value / 1e6) + "M" }
        if value >= 1e3 { return fixed(value / 1e3) + "k" }
        return value < 9e18 ? String(Int(value.rounded())) : "0"
    }

    /// 0:00:12, 3:04:05, 2d 03:04:05.
    public static func uptime(_ nanoseconds: UInt64) -> String {
        let seconds = nanoseconds / 1_000_000_000
        let days = seconds / 86_400, hours = seconds / 3600 % 24, minutes = seconds / 60 % 60, secs = seconds % 60
        func two(_ v: UInt64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return days > 0 ? "\(days)d \(two(hours)):\(two(minutes)):\(two(secs))" : "\(hours):\(two(minutes)):\(two(secs))"
    }

    /// `text` right-aligned in `width` columns.
    public static func right(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }

    /// `text` left-aligned in `width` columns.
    public static func left(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }

    /// A duration given in ns, in the unit that keeps it short: "850ns", "12µs", "3.4ms",
    /// "1.20s"; "-" for nil (nothing measured).
    public static func duration(_ nanoseconds: UInt64?) -> String {
        guard let ns = nanoseconds else { return "-" }
        let value = Double(ns)
        if value < 1_000 { return "\(ns)ns" }
        if value < 1_000_000 { return value < 10_000 ? fixed(value / 1e3) + "µs" : "\(Int((value / 1e3).rounded()))µs" }
        if value < 1_000_000_000 { return value < 10_000_000 ? fixed(value / 1e6) + "ms" : "\(Int((value / 1e6).rounded()))ms" }
        if value < 60e9 { return fixed(value / 1e9, decimals: 2) + "s" }
        return "\(ns / 60_000_000_000)m"
    }

    /// A percentile read from a `LatencyHistogram`, as `duration` — except that the first bucket
    /// reads "<1µs": all it says is "below 1 µs", and its representative value (512 ns) is not
    /// a measurement.
    public static func latency(_ nanoseconds: UInt64?) -> String {
        guard let ns = nanoseconds else { return "-" }
        return ns < LatencyBuckets.bounds(0).upper ? "<1µs" : duration(ns)
    }

    /// A time span, short: "45s", "12m", "3h".
    public static func span(seconds: Double) -> String {
        if seconds < 120 { return "\(Int(seconds.rounded()))s" }
        if seconds < 7200 { return "\(Int((seconds / 60).rounded()))m" }
        return "\(Int((seconds / 3600).rounded()))h"
    }

    /// A byte count, short: "512 B", "12.3 KB", "4.5 MB", "1.2 GB" (powers of 1000).
    public static func bytes(_ count: UInt64) -> String {
        let value = Double(count)
        if value < 1e3 { return "\(count) B" }
        if value < 1e6 { return fixed(value / 1e3) + " KB" }
        if value < 1e9 { return fixed(value / 1e6) + " MB" }
        return fixed(value / 1e9) + " GB"
    }
}
