import EngineStats

/// The control socket's protocol, version 1: one request line, one reply line.
///
/// Request: `iocptop/1 VERB [ARGUMENT]\n`, at most `maxLine` bytes. Verbs: `hello` (the reply
/// carries the stats ring's descriptor), `add-worker`, `retire-worker`, `concurrency +N|-N|=N`,
/// `work-step +N|-N`, `work-us N`, `block-us N`, `drain`, `auto on|off|toggle`,
/// `close-connection ID`. Reply: `ok MESSAGE\n` or
/// `error MESSAGE\n`. Anything else — garbage, an overlong line, another version — gets an
/// `error` reply and the connection is closed.
public enum ControlProtocol {
    public static let version = "iocptop/1"
    /// Longest request or reply line, newline included.
    public static let maxLine = 256

    /// A request the server understands.
    public enum Request: Sendable, Hashable {
        case hello
        case command(EngineCommand)
    }

    /// The request line for `request` (newline included).
    public static func line(for request: Request) -> String {
        let body: String
        switch request {
        case .hello: body = "hello"
        case .command(let command):
            switch command {
            case .addWorker: body = "add-worker"
            case .retireWorker: body = "retire-worker"
            case .changeConcurrency(let delta): body = "concurrency \(delta >= 0 ? "+" : "")\(delta)"
            case .setConcurrency(let limit): body = "concurrency =\(limit)"
            case .stepWork(let steps): body = "work-step \(steps >= 0 ? "+" : "")\(steps)"
            case .setWorkMicroseconds(let value): body = "work-us \(value)"
            case .setBlockMicroseconds(let value): body = "block-us \(value)"
            case .drain: body = "drain"
            case .setAuto(let on): body = "auto \(on ? "on" : "off")"
            case .toggleAuto: body = "auto toggle"
            case .closeConnection(let id): body = "close-connection \(id)"
            }
        }
        return "\(version) \(body)\n"
    }

    /// Parses one request line (without its newline); the error is the reply's message.
    public static func parse(_ line: String) -> Result<Request, ParseError> {
        let words = line.split(separator: " ", omittingEmptySubsequences: true)
        guard let first = words.first, first.hasPrefix("iocptop/") else { return .failure(ParseError("not an iocptop control request")) }
        guard first == version else { return .failure(ParseError("protocol \(first) not understood; this engine speaks \(version)")) }
        guard words.count >= 2, words.count <= 3 else { return .failure(ParseError("malformed request")) }
        let argument = words.count == 3 ? String(words[2]) : nil
        func number(_ text: String?) -> Int? {
            guard let text, text.count <= 8 else { return nil }
            return Int(text.hasPrefix("+") ? String(text.dropFirst()) : text)
        }
        switch (words[1], argument) {
        case ("hello", nil): return .success(.hello)
        case ("add-worker", nil): return .success(.command(.addWorker))
        case ("retire-worker", nil): return .success(.command(.retireWorker))
        case ("drain", nil): return .success(.command(.drain))
        case ("concurrency", let value?):
            if value.hasPrefix("="), let limit = number(String(value.dropFirst())) { return .success(.command(.setConcurrency(limit))) }
            if value.hasPrefix("+") || value.hasPrefix("-"), let delta = number(value) { return .success(.command(.changeConcurrency(by: delta))) }
        case ("work-step", let value?):
            if let steps = number(value) { return .success(.command(.stepWork(by: steps))) }
        case ("work-us", let value?):
            if let micros = number(value) { return .success(.command(.setWorkMicroseconds(micros))) }
        case ("auto", "on"): return .success(.command(.setAuto(true)))
        case ("auto", "off"): return .success(.command(.setAuto(false)))
        case ("auto", "toggle"): return .success(.command(.toggleAuto))
        case ("block-us", let value?):
            if let micros = number(value) { return .success(.command(.setBlockMicroseconds(micros))) }
        case ("close-connection", let value?):
            if value.utf8.count <= 20, value.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let id = UInt64(value), id > 0 {
                return .success(.command(.closeConnection(id: id)))
            }
        default: break
        }
        return .failure(ParseError("unknown request"))
    }

    /// Why a request line was refused.
    public struct ParseError: Error, Hashable, Sendable {
        public let message: String
        init(_ message: String) { self.message = message }
    }

    /// The reply line for an outcome (newline included, cut to `maxLine`).
    public static func reply(_ outcome: CommandOutcome) -> String {
        let text = (outcome.succeeded ? "ok " : "error ") + outcome.message.replacing("\n", with: " ")
        return String(decoding: text.utf8.prefix(maxLine - 1), as: UTF8.self) + "\n"
    }

    /// Parses a reply line (without its newline).
    public static func outcome(of line: String) -> CommandOutcome {
        if line.hasPrefix("ok") { return CommandOutcome(succeeded: true, message: String(line.dropFirst(3))) }
        if line.hasPrefix("error") { return CommandOutcome(succeeded: false, message: String(line.dropFirst(6))) }
        return CommandOutcome(succeeded: false, message: "unexpected reply from the engine")
    }
}
