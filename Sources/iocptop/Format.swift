/// Number formatting shared by the batch printer and the totals line.
enum Format {
    /// `value` with `decimals` decimals, no locale.
    static func fixed(_ value: Double, decimals: Int = 1) -> String {
        JSONLine.number(value, decimals: decimals)
    }

    /// 950, 12.3k, 4.5M.
    static func rate(_ value: Double) -> String {
        if value >= 1e6 { return fixed(value / 1e6) + "M" }
        if value >= 1e3 { return fixed(value / 1e3) + "k" }
        return String(Int(value.rounded()))
    }

    /// 0:00:12, 3:04:05, 2d 03:04:05.
    static func uptime(_ nanoseconds: UInt64) -> String {
        let seconds = nanoseconds / 1_000_000_000
        let days = seconds / 86_400, hours = seconds / 3600 % 24, minutes = seconds / 60 % 60, secs = seconds % 60
        func two(_ v: UInt64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let clock = "\(hours):\(two(minutes)):\(two(secs))"
        return days > 0 ? "\(days)d \(two(hours)):\(two(minutes)):\(two(secs))" : clock
    }
}
