/// Which exposition a scraper asked for in its `Accept` fields (RFC 9110 §12.5.1): OpenMetrics
/// when it names `application/openmetrics-text` with a quality at least that of the text
/// format; the Prometheus text format otherwise (and when it accepts anything, `*/*`).
///
/// Prometheus 2.x sends `application/openmetrics-text;version=1.0.0,application/openmetrics-text;
/// version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1` (OpenMetrics); curl sends
/// `*/*` (text).
enum ExpositionNegotiation {
    static func prefersOpenMetrics(_ acceptFields: [String]) -> Bool {
        var openMetrics: Double?
        var text: Double?
        for field in acceptFields {
            for range in field.split(separator: ",") {
                let parts = range.split(separator: ";").map { $0.trimmingCharacters(in: " \t") }
                guard let type = parts.first?.lowercased() else { continue }
                var quality = 1.0
                for parameter in parts.dropFirst() {
                    let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: " \t") }
                    if pair.count == 2, pair[0].lowercased() == "q", let value = Double(pair[1]), (0...1).contains(value) {
                        quality = value
                    }
                }
                switch type {
                case "application/openmetrics-text": openMetrics = max(openMetrics ?? 0, quality)
                case "text/plain", "text/*": text = max(text ?? 0, quality)
                default: break
                }
            }
        }
        guard let openMetrics, openMetrics > 0 else { return false }
        return openMetrics >= (text ?? 0)
    }
}

private extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice.removeFirst() }
        while let last = slice.last, set.contains(last) { slice.removeLast() }
        return String(slice)
    }
}
