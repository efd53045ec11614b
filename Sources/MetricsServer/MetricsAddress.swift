#if canImport(Glibc)
import Glibc
#endif

/// `--metrics HOST:PORT` parsed: `127.0.0.1:9464`, `[::1]:9464`, `:9464` and `9464` (both on
/// 127.0.0.1), `0.0.0.0:9464` to open it to other hosts.
public struct MetricsAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    /// Nil when `text` is not an address (the caller says so in one line).
    public init?(_ text: String) {
        var host = "127.0.0.1"
        var portText = Substring(text)
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = String(text[text.index(after: text.startIndex)..<close])
            portText = text[text.index(close, offsetBy: 2)...]
        } else if let colon = text.lastIndex(of: ":") {
            // One colon: host:port. More (a bare IPv6 address) must be bracketed.
            guard text.firstIndex(of: ":") == colon else { return nil }
            if colon != text.startIndex { host = String(text[..<colon]) }
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, host.utf8.count <= 255, host.allSatisfy({ $0.isASCII && !$0.isWhitespace }),
              !portText.isEmpty, portText.count <= 5, portText.allSatisfy(\.isNumber), let port = UInt16(portText)
        else { return nil }
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
