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

    /// A short duration: 850µs, 12ms, 3.4s, 5m.
    public static func duration(_ nanoseconds: UInt64) -> String {
        if nanoseconds < 1_000_000 { return "\(nanoseconds / 1000)µs" }
        if nanoseconds < 1_000_000_000 { return "\(nanoseconds / 1_000_000)ms" }
        if nanoseconds < 60_000_000_000 { return fixed(Double(nanoseconds) / 1e9) + "s" }
        return "\(nanoseconds / 60_000_000_000)m"
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
        return fixed(value / 1e9, decimals: 2) + "s"
    }
}
