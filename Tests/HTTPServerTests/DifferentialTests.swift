import HTTPServer
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

/// The request-head parser against NIOHTTP1's decoder (llhttp), on generated requests and on
/// mutations of them: whatever this parser accepts, NIOHTTP1 accepts with the same method,
/// target, version and keep-alive; whatever NIOHTTP1 refuses, this parser refuses. This parser
/// may refuse more: it is stricter where leniency lets two parsers frame a request differently
/// (the cases are counted and printed, and each kind is named in `HTTPHeadParser`'s doc). A
/// method this parser does not know counts as refused: the server answers it 501.
@Suite struct DifferentialTests {
    enum Verdict: Equatable {
        case accepted(method: String, target: String, minor: Int, keepAlive: Bool)
        case refused
        case incomplete
    }

    func ours(_ bytes: [UInt8]) -> Verdict {
        bytes.withUnsafeBytes { raw in
            switch HTTPHeadParser.parse(raw) {
            case .incomplete: return .incomplete
            case .invalid: return .refused
            case .head(let head):
                // A method it does not know is answered 501 by the server: a refusal, as
                // llhttp refuses methods it does not know.
                if head.method == .other { return .refused }
                return .accepted(method: String(decoding: bytes[0..<bytes.firstIndex(of: 0x20)!], as: UTF8.self),
                                 target: String(decoding: bytes[head.target], as: UTF8.self),
                                 minor: head.minorVersion, keepAlive: head.keepAlive)
            }
        }
    }

    func nio(_ bytes: [UInt8]) -> Verdict {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
        defer { _ = try? channel.finish() }
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        do {
            try channel.writeInbound(buffer)
            guard let part = try channel.readInbound(as: HTTPServerRequestPart.self) else { return .incomplete }
            guard case .head(let head) = part else { return .refused }
            return .accepted(method: head.method.rawValue, target: head.uri, minor: head.version.minor, keepAlive: head.isKeepAlive)
        } catch {
            return .refused
        }
    }

    /// Requests a client sends, varied in method, target, version, fields and framing.
    static func generated() -> [String] {
        var requests: [String] = []
        let methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW"]
        let targets = ["/", "/plaintext", "/json", "/work?us=100", "/a/b%20c?x=1&y=2", "*", "http://example.com/x"]
        let fieldSets = [
            ["Host: localhost"],
            ["Host: localhost", "Connection: close"],
            ["Host: localhost", "Connection: keep-alive", "Accept: */*"],
            ["host: localhost", "content-length: 5"],
            ["Host: localhost", "Transfer-Encoding: chunked"],
            ["Host: localhost", "User-Agent: wrk", "X-Long: " + String(repeating: "v", count: 300)],
            ["Host: localhost", "Expect: 100-continue", "Content-Length: 10"],
            [],
        ]
        for (index, method) in methods.enumerated() {
            for target in targets {
                for (set, fields) in fieldSets.enumerated() {
                    let version = (index + set) % 3 == 0 ? "HTTP/1.0" : "HTTP/1.1"
                    requests.append("\(method) \(target) \(version)\r\n" + fields.map { $0 + "\r\n" }.joined() + "\r\n")
                }
            }
        }
        return requests
    }

    /// Byte-level mutations: deletions, insertions of delimiters and controls, case flips.
    static func mutations(of request: [UInt8], seed: UInt64) -> [[UInt8]] {
        var state = seed
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        let inserts: [UInt8] = [0x20, 0x09, 0x0D, 0x0A, 0x3A, 0x00, 0x7F, 0x2C, 0x2F, 0x41]
        var out: [[UInt8]] = []
        for _ in 0..<6 {
            var mutated = request
            // Mutate the head only: the final empty line stays, so both see a whole head.
            let headLength = mutated.count - 2
            let at = Int(next() % UInt64(headLength))
            switch next() % 3 {
            case 0: mutated.remove(at: at)
            case 1: mutated.insert(inserts[Int(next() % UInt64(inserts.count))], at: at)
            default: mutated[at] ^= 0x20
            }
            out.append(mutated)
        }
        return out
    }

    @Test func agreesWithNIOHTTP1OnGeneratedAndMutatedRequests() {
        var compared = 0, stricter = 0
        var stricterExamples: [String] = []
        for (index, request) in Self.generated().enumerated() {
            let bytes = Array(request.utf8)
            for candidate in [bytes] + Self.mutations(of: bytes, seed: UInt64(index)) {
                let mine = ours(candidate), theirs = nio(candidate)
                compared += 1
                switch (mine, theirs) {
                case (.accepted, _):
                    #expect(mine == theirs, "\(String(decoding: candidate, as: UTF8.self).debugDescription)")
                case (.refused, .accepted):
                    stricter += 1
                    if stricterExamples.count < 5 { stricterExamples.append(String(decoding: candidate, as: UTF8.self).debugDescription) }
                case (.incomplete, .accepted):
                    Issue.record("NIOHTTP1 read a head this parser waits on: \(String(decoding: candidate, as: UTF8.self).debugDescription)")
                default:
                    break
                }
            }
        }
        print("differential: \(compared) requests, this parser stricter on \(stricter); e.g. \(stricterExamples)")
        #expect(compared > 2000)
    }
}
