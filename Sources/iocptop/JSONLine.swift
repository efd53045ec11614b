import Dashboard
import EngineStats

/// Builds one JSON object on one line, keys in the order they are added (a stable schema
/// reads better in a log than sorted keys).
struct JSONLine {
    private var text = "{"
    private var first = true

    private mutating func key(_ name: String) {
        if !first { text += "," }
        first = false
        text += "\"\(name)\":"
    }

    mutating func add(_ name: String, _ value: Int) { key(name); text += String(value) }
    mutating func add(_ name: String, _ value: UInt64) { key(name); text += String(value) }
    mutating func add(_ name: String, _ value: Bool) { key(name); text += value ? "true" : "false" }
    mutating func add(_ name: String, _ value: String) { key(name); text += Self.quoted(value) }

    /// A number with at most `decimals` decimals (no exponent, no NaN: JSON has neither).
    mutating func add(_ name: String, _ value: Double, decimals: Int = 1) {
        key(name)
        text += Format.fixed(value, decimals: decimals)
    }

    /// A frame field under its JSON key, in JSON's units (seconds for durations); nothing for a
    /// field JSON leaves out.
    /// The field under its JSON key (after `prefix`), in its unit.
    mutating func add<Record>(_ field: FrameField<Record>, of record: Record, prefix: String = "") {
        guard let json = field.json else { return }
        let name = prefix + json
        let word = field.word(of: record)
        switch (field.kind, field.unit) {
        case (.flag, _): add(name, word != 0)
        case (.state, _): add(name, (WorkerState(rawValue: word) ?? .unused).description)
        case (_, .nanoseconds):
            add(name, (field.isSigned ? Double(Int64(bitPattern: word)) : Double(word)) / 1e9, decimals: 3)
        case (.counter, _): add(name, word)
        default: add(name, Int(truncatingIfNeeded: Int64(bitPattern: word)))
        }
    }

    /// `PREFIX_p50_us`, `_p90_us`, `_p99_us`, `_p999_us` (null when nothing was counted).
    mutating func add(percentiles: Percentiles?, prefix: String) {
        for (suffix, value) in [("p50", percentiles?.p50), ("p90", percentiles?.p90), ("p99", percentiles?.p99), ("p999", percentiles?.p999)] {
            key("\(prefix)_\(suffix)_us")
            text += value.map { Format.fixed(Double($0) / 1000, decimals: 1) } ?? "null"
        }
    }

    mutating func add(_ name: String, objects: [JSONLine]) {
        key(name)
        text += "[" + objects.map(\.string).joined(separator: ",") + "]"
    }

    mutating func add(_ name: String, object: JSONLine) {
        key(name)
        text += object.string
    }

    var string: String { text + "}" }

    static func quoted(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
