import CompletionPort
import EngineStats
import HTTPServer
import Loopback
import ServerCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// HTTP/1.1 served by the core over real sockets: routes, keep-alive, pipelining, bodies.
@Suite struct HTTPServingTests {
    private func handlerValues(_ server: PortServer) -> HandlerValues {
        server.handlerSchema.values(of: server.currentFrame().handlerRows)
    }

    @Test(arguments: testedBackends)
    func routesAnswerWithTheirStatusAndBody(backend: BackendChoice) throws {
        let server = try makeHTTPServer(backend)
        defer { _ = server.drain() }
        let client = try HTTPTestClient(port: server.listenPort)
        let cases: [(request: String, status: Int, body: String)] = [
            ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 200, "Hello, World!"),
            ("GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", 200, "Hello, World!"),
            ("GET /json HTTP/1.1\r\nHost: a\r\n\r\n", 200, #"{"message":"Hello, World!"}"#),
            ("GET /work?us=50 HTTP/1.1\r\nHost: a\r\n\r\n", 200, "ok\n"),
            ("GET /block?a=1&us=2000 HTTP/1.1\r\nHost: a\r\n\r\n", 200, "ok\n"),
            ("GET /work HTTP/1.1\r\nHost: a\r\n\r\n", 400, "Bad Request\n"),
            ("GET /work?us=1000001 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "Bad Request\n"),
            ("GET /block?us=-1 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "Bad Request\n"),
            ("GET /nope HTTP/1.1\r\nHost: a\r\n\r\n", 404, "Not Found\n"),
            ("POST /json HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 405, "Method Not Allowed\n"),
            ("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n", 405, "Method Not Allowed\n"),
            ("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 200, ""),
            ("GET http://example.com/json HTTP/1.1\r\nHost: example.com\r\n\r\n", 200, #"{"message":"Hello, World!"}"#),
        ]
        for (request, status, body) in cases {
            #expect(client.send(request))
            let response = try #require(client.response(), "\(request)")
            #expect(response.status == status, "\(request)")
            #expect(response.text == body, "\(request)")
            #expect(response.header("Server") == "iocptop")
            #expect(response.header("Date")?.utf8.count == 29)
            #expect(response.header("Content-Length") == "\(body.utf8.count)")
            #expect(response.header("Connection") == nil, "kept alive: \(request)")
        }
        #expect(client.send("PUT /json HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"))
        #expect(client.response()?.header("Allow") == "GET, HEAD")
        #expect(client.send("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(client.response()?.header("Allow") == "POST")
        // HEAD: GET's fields, no body.
        #expect(client.send("HEAD /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"))
        let head = try #require(client.response(bodiless: true))
        #expect(head.status == 200 && head.header("Content-Length") == "13" && head.body.isEmpty)
        // The connection still frames correctly after the HEAD.
        #expect(client.send("GET /json HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(client.response()?.status == 200)
        // Unknown method: 501; its framing is known, so the connection goes on.
        #expect(client.send("BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(client.response()?.status == 501)
        #expect(client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(client.response()?.status == 200)
        let requests = UInt64(cases.count + 6)
        #expect(eventually { handlerValues(server).counters[0] == requests })
        let values = handlerValues(server)
        #expect(server.handlerSchema.metrics.map(\.name)
                == ["requests", "latency", "status_4xx", "status_5xx", "in_progress", "status_2xx", "request", "response"])
        #expect(values.counters[5] + values.counters[2] + values.counters[3] == requests)
        #expect(values.counters[3] == 1 && values.counters[2] == 8)
        #expect(values.histograms[1].total == requests)
        #expect(values.gauges[4] == 0)
        #expect(values.counters[7] > 0 && values.counters[6] > 0)
    }

    @Test(arguments: testedBackends)
    func pipelinedRequestsAreAnsweredInOrder(backend: BackendChoice) throws {
        let server = try makeHTTPServer(backend)
        defer { _ = server.drain() }
        let client = try HTTPTestClient(port: server.listenPort)
        // 3 000 requests in one write: far more answers than the 1 KiB output holds at once,
        // mixed so that an answer out of order shows.
        let paths = ["/plaintext", "/json", "/nope", "/work?us=1"]
        var requests = ""
        for index in 0..<3000 {
            let path = paths[index % paths.count]
            requests += index % 7 == 3
                ? "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: \(String(index).utf8.count)\r\n\r\n\(index)"
                : "GET \(path) HTTP/1.1\r\nHost: a\r\n\r\n"
        }
        let fd = client.fd, bytes = Array(requests.utf8)
        let writer = JoinableThread { _ = HTTPTestClient.sendAll(fd, bytes) }
        for index in 0..<3000 {
            let response = try #require(client.response(), "response \(index)")
            if index % 7 == 3 {
                #expect(response.status == 200 && response.text == "\(index)")
            } else {
                switch paths[index % paths.count] {
                case "/plaintext": #expect(response.text == "Hello, World!")
                case "/json": #expect(response.text == #"{"message":"Hello, World!"}"#)
                case "/nope": #expect(response.status == 404)
                default: #expect(response.text == "ok\n")
                }
            }
        }
        writer.join()
        #expect(eventually { handlerValues(server).counters[0] == 3000 })
    }

    @Test(arguments: testedBackends)
    func bodiesComeBackWhateverTheirSizeAndFraming(backend: BackendChoice) throws {
        let server = try makeHTTPServer(backend)
        defer { _ = server.drain() }
        let client = try HTTPTestClient(port: server.listenPort)
        var generator = SystemRandomNumberGenerator()
        for size in [1, 100, 1023, 1024, 1025, 65_536, 300_000, 1 << 20] {
            let body = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
            // Content-Length, written while the answer is read (larger than the socket buffers).
            let head = Array("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: \(size)\r\n\r\n".utf8)
            let fd = client.fd, request = head + body
            let writer = JoinableThread { _ = HTTPTestClient.sendAll(fd, request) }
            let plain = try #require(client.response())
            writer.join()
            #expect(plain.status == 200 && plain.body == body, "\(size) bytes")
            // Chunked, in chunks of varied sizes, with an extension and a trailer.
            var chunkedBody = Array("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
            var at = 0
            while at < size {
                let count = min(size - at, Int.random(in: 1...70_000, using: &generator))
                chunkedBody += Array("\(String(count, radix: 16));ext=1\r\n".utf8) + body[at..<(at + count)] + Array("\r\n".utf8)
                at += count
            }
            chunkedBody += Array("0\r\nTrailer-Field: x\r\n\r\n".utf8)
            let chunkedRequest = chunkedBody
            let chunkWriter = JoinableThread { _ = HTTPTestClient.sendAll(fd, chunkedRequest) }
            let chunked = try #require(client.response())
            chunkWriter.join()
            #expect(chunked.status == 200 && chunked.header("Transfer-Encoding") == "chunked", "\(size) bytes chunked")
            #expect(chunked.body == body, "\(size) bytes chunked")
        }
        // A body on a route that does not take one is read and dropped: the next request is found.
        #expect(client.send("GET /json HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nxxxxxGET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(client.response()?.text == #"{"message":"Hello, World!"}"#)
        #expect(client.response()?.text == "Hello, World!")
        #expect(client.send("GET /json HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(client.response()?.status == 200)
        #expect(client.response()?.text == "Hello, World!")
    }

    @Test(arguments: testedBackends)
    func continueIsSentBeforeTheBodyOnlyWhenItWillBeRead(backend: BackendChoice) throws {
        let server = try makeHTTPServer(backend) { $0.maxBody = 1000 }
        defer { _ = server.drain() }
        let client = try HTTPTestClient(port: server.listenPort)
        #expect(client.send("POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"))
        #expect(client.response()?.status == 100)
        #expect(client.send("hello"))
        #expect(client.response()?.text == "hello")
        // HTTP/1.0 clients get no 100 (they would read it as the final response).
        let old = try HTTPTestClient(port: server.listenPort)
        #expect(old.send("POST /echo HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello"))
        let final = try #require(old.response())
        #expect(final.status == 200 && final.text == "hello")
        // Too large: 413 at once, no 100, and the connection closes.
        #expect(client.send("POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1001\r\n\r\n"))
        let refused = try #require(client.response())
        #expect(refused.status == 413 && refused.header("Connection") == "close")
        #expect(client.isClosed())
        // Expect on a route that does not read the body: the final answer, then close (the
        // client may or may not send the body — its next bytes cannot be framed).
        let other = try HTTPTestClient(port: server.listenPort)
        #expect(other.send("POST /nope HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"))
        let answer = try #require(other.response())
        #expect(answer.status == 404 && answer.header("Connection") == "close")
        #expect(other.isClosed())
    }

    @Test(arguments: testedBackends)
    func http10ClosesUnlessAskedToKeepAlive(backend: BackendChoice) throws {
        let server = try makeHTTPServer(backend)
        defer { _ = server.drain() }
        let plain = try HTTPTestClient(port: server.listenPort)
        #expect(plain.send("GET / HTTP/1.0\r\n\r\n"))
        let first = try #require(plain.response())
        #expect(first.status == 200 && first.header("Connection") == "close")
        #expect(plain.isClosed())
        let kept = try HTTPTestClient(port: server.listenPort)
        #expect(kept.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"))
        #expect(kept.response()?.header("Connection") == "keep-alive")
        #expect(kept.send("GET /json HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"))
        #expect(kept.response()?.header("Connection") == "close")
        #expect(kept.isClosed())
    }
}
