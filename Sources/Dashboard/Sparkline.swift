/// Sparklines: a series of values as one row of bar characters.
public enum Sparkline {
    static let unicode: [Character] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]
    static let ascii: [Character] = ["_", ".", ",", ":", "-", "=", "+", "#"]

    /// The last `width` values as bars scaled to the largest of them (zero: the lowest bar).
    public static func render(_ values: [Double], width: Int, unicode useUnicode: Bool) -> String {
        guard width > 0 else { return "" }
        let bars = useUnicode ? unicode : ascii
        let shown = values.suffix(width)
        let top = shown.max() ?? 0
        var text = String(repeating: " ", count: width - shown.count)
        for value in shown {
            let level = top > 0 ? Int((max(0, value) / top * Double(bars.count - 1)).rounded()) : 0
            text.append(bars[min(bars.count - 1, max(0, level))])
        }
        return text
    }
}
