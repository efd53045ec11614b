import HTTPServer
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

/// The chunked-body decoder: bodies come out whole however the bytes are split, malformed and
/// oversized bodies are refused, and NIOHTTP1 reads the same bodies from the same bytes.
@Suite struct HTTPChunkedDecoderTests {
    /// Feeds `wire` in pieces cut at `cuts`, keeping what a call did not consume (as the
    /// connection's input does); returns the body, whether it finished, and the bytes left.
    func decode(_ wire: [UInt8], cuts: [Int] = [], maxBody: Int = 1 << 20) -> (body: [UInt8], finished: Bool, left: Int, refused: Int?) {
        var decoder = HTTPChunkedDecoder(maxBody: maxBody)
        var body: [UInt8] = []
        var pending: [UInt8] = []
        var last = 0
        for cut in cuts + [wire.count] {
            pending += wire[last..<cut]
            last = cut
            let result = pending.withUnsafeBytes { decoder.decode($0) { body += $0 } }
            switch result {
            case .invalid(let status, _): return (body, false, pending.count, status)
            case .consumed(let count, let finished):
                pending.removeFirst(count)
                // Bytes after the body: what stays in the input, and what has not arrived yet.
                if finished { return (body, true, pending.count + wire.count - last, nil) }
            }
        }
        return (body, false, pending.count, nil)
    }

    let wire = Array("5\r\nhello\r\n6;name=value\r\n world\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\nGET".utf8)

    @Test func aBodyComesOutWholeWithItsTrailersSkipped() {
        let result = decode(wire)
        #expect(String(decoding: result.body, as: UTF8.self) == "hello world0123456789")
        #expect(result.finished && result.left == 3, "the next request's bytes stay")
    }

    @Test func everySplitGivesTheSameBody() {
        for cut in 1..<wire.count {
            let result = decode(wire, cuts: [cut])
            #expect(String(decoding: result.body, as: UTF8.self) == "hello world0123456789", "cut at \(cut)")
            #expect(result.finished && result.left == 3, "cut at \(cut)")
        }
        let byteByByte = decode(wire, cuts: Array(1..<wire.count))
        #expect(byteByByte.finished && byteByByte.body.count == 21)
    }

    @Test func malformedAndOversizedBodiesAreRefused() {
        func refusal(_ text: String, maxBody: Int = 1 << 20) -> Int? { decode(Array(text.utf8), maxBody: maxBody).refused }
        #expect(refusal("G\r\n") == 400)
        #expect(refusal("5 x\r\nhello\r\n0\r\n\r\n") == 400)
        #expect(refusal("5\r\nhelloX\r\n0\r\n\r\n") == 400, "data not ended by CRLF")
        #expect(refusal("5\r\nhelloXY0\r\n\r\n") == 400, "two bytes that are not CRLF after the data")
        #expect(refusal("5\nhello\r\n0\r\n\r\n") == 400, "bare LF")
        #expect(refusal("-5\r\n") == 400)
        #expect(refusal("1000000000000000\r\n") == 400, "16 hex digits")
        #expect(refusal("0\r\nX: 1\n\r\n") == 400, "bare LF in the trailer")
        #expect(refusal("0\r\n: no name\r\n\r\n") == 400)
        #expect(refusal("400\r\n", maxBody: 1000) == 413)
        #expect(refusal("200\r\n" + String(repeating: "a", count: 512) + "\r\n200\r\n", maxBody: 1000) == 413, "the sum counts")
        #expect(refusal(String(repeating: "0", count: 5000)) == 400, "an endless size line")
    }

    /// NIOHTTP1 reads the same body from the same chunked bytes.
    @Test func agreesWithNIOHTTP1() throws {
        var generator = UInt64(7)
        for round in 0..<200 {
            var text = ""
            var expected: [UInt8] = []
            for _ in 0..<(round % 5 + 1) {
                generator = generator &* 6364136223846793005 &+ 1442695040888963407
                let size = Int(generator >> 33) % 300 + 1
                let data = (0..<size).map { UInt8(0x61 + ($0 + round) % 26) }
                text += String(size, radix: 16, uppercase: round % 2 == 0) + (round % 3 == 0 ? ";ext=\(round)" : "") + "\r\n"
                text += String(decoding: data, as: UTF8.self) + "\r\n"
                expected += data
            }
            text += "0\r\n" + (round % 4 == 0 ? "X-Sum: \(expected.count)\r\n" : "") + "\r\n"
            let ours = decode(Array(text.utf8))
            #expect(ours.finished && ours.body == expected && ours.left == 0)

            let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder()))
            var buffer = channel.allocator.buffer(capacity: text.utf8.count + 64)
            buffer.writeString("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + text)
            try channel.writeInbound(buffer)
            var theirs: [UInt8] = []
            var ended = false
            while let part = try channel.readInbound(as: HTTPServerRequestPart.self) {
                if case .body(var bytes) = part { theirs += bytes.readBytes(length: bytes.readableBytes) ?? [] }
                if case .end = part { ended = true }
            }
            _ = try? channel.finish()
            #expect(ended && theirs == expected, "round \(round)")
        }
    }
}
