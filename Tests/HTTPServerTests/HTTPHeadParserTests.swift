import HTTPServer
import Testing

/// The request-head parser: what it accepts, what it refuses and with which status, and that
/// a head split anywhere reads the same.
@Suite struct HTTPHeadParserTests {
    func parse(_ text: String, limits: HTTPHeadParser.Limits = .init()) -> HTTPHeadParser.Result {
        Array(text.utf8).withUnsafeBytes { HTTPHeadParser.parse($0, limits: limits) }
    }

    func head(_ text: String) throws -> HTTPRequestHead {
        guard case .head(let head) = parse(text) else { throw Unexpected(result: parse(text)) }
        return head
    }

    struct Unexpected: Error { let result: HTTPHeadParser.Result }

    func status(_ text: String) -> Int? {
        if case .invalid(let status, _) = parse(text) { return status }
        return nil
    }

    @Test func aPlainGetIsKeptAliveWithItsTarget() throws {
        let text = "GET /plaintext?x=1 HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\nGET / HTTP/1.1\r\n"
        let request = try head(text)
        #expect(request.method == .get)
        #expect(Array(text.utf8)[request.target].elementsEqual("/plaintext?x=1".utf8))
        #expect(request.minorVersion == 1 && request.keepAlive && !request.hasBody && request.fieldCount == 2)
        #expect(request.length == text.utf8.count - "GET / HTTP/1.1\r\n".utf8.count, "the head ends at its empty line")
    }

    @Test func connectionAndVersionDecideKeepAlive() throws {
        #expect(try !head("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").keepAlive)
        #expect(try !head("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n").keepAlive)
        #expect(try !head("GET / HTTP/1.0\r\n\r\n").keepAlive)
        #expect(try head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keepAlive)
    }

    @Test func bodiesAreFramedByLengthOrChunks() throws {
        let sized = try head("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n")
        #expect(sized.contentLength == 12 && !sized.isChunked && sized.hasBody)
        #expect(try head("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n").contentLength == 5)
        let chunked = try head("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n")
        #expect(chunked.isChunked && chunked.contentLength == nil && chunked.hasBody)
        #expect(try head("POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n").expectsContinue)
    }

    /// Inputs two parsers could frame differently (request smuggling) are refused, never guessed.
    @Test func ambiguousFramingIsRefused() {
        #expect(status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n") == 400)
        #expect(status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n") == 400)
        #expect(status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n") == 400)
        #expect(status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n") == 400)
        #expect(status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n") == 400)
        #expect(status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n") == 400, "space before the colon")
        #expect(status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n") == 400)
        #expect(status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") == 501)
        #expect(status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n") == 400)
        #expect(status("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n") == 400, "obsolete line folding")
        #expect(status("GET / HTTP/1.1\r\nHost: a\r\nX: a\nb\r\n\r\n") == 400, "a bare LF inside a line")
        #expect(status("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{0}b\r\n\r\n") == 400)
    }

    @Test func badHeadsGetTheirStatus() {
        #expect(status("GET / HTTP/1.1\r\n\r\n") == 400, "HTTP/1.1 needs Host")
        #expect(status("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") == 400)
        #expect(status("GET  / HTTP/1.1\r\nHost: a\r\n\r\n") == 400)
        #expect(status("GET / HTTP/2.0\r\nHost: a\r\n\r\n") == 505)
        #expect(status("GET / HTTX/1.1\r\nHost: a\r\n\r\n") == 400)
        #expect(status("\r\n\r\n") == 400)
        #expect(status("GET / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n") == 417)
        #expect(status("GET / HTTP/1.1\r\n" + String(repeating: "X-Pad: 0123456789012345678901234567890123456789\r\n", count: 200) + "\r\n") == 431)
        let manyFields = "GET / HTTP/1.1\r\nHost: a\r\n" + (0..<100).map { "X\($0): v\r\n" }.joined() + "\r\n"
        #expect(status(manyFields) == 431, "101 fields")
        #expect(parse(String(repeating: "a", count: 9000)) == .invalid(status: 431, reason: "request head larger than 8192 bytes"))
    }

    @Test func aHeadSplitAnywhereIsIncompleteUntilItsLastByte() throws {
        let text = Array("POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nConnection: keep-alive\r\n\r\n".utf8)
        for cut in 0..<text.count {
            let result = Array(text[0..<cut]).withUnsafeBytes { HTTPHeadParser.parse($0) }
            #expect(result == .incomplete, "cut at \(cut)")
        }
        let whole = text.withUnsafeBytes { HTTPHeadParser.parse($0) }
        guard case .head(let request) = whole else { Issue.record("\(whole)"); return }
        #expect(request.length == text.count && request.contentLength == 4 && request.keepAlive)
    }

    @Test func methodsAreCaseSensitiveTokens() throws {
        #expect(try head("DELETE /x HTTP/1.1\r\nHost: a\r\n\r\n").method == .delete)
        #expect(try head("get /x HTTP/1.1\r\nHost: a\r\n\r\n").method == .other)
        #expect(try head("BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n").method == .other)
    }
}
