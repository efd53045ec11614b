import Dashboard

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
