import CompletionPort
import EngineStats
import HTTPServer
import Loopback
import ServerCore
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What a client cannot do to the server: smuggle a request, stall it, fill its memory, or
/// disturb the clients beside it.
@Suite struct HTTPHostileClientTests {
    /// Requests two parsers could frame differently: each is refused and the connection
    /// closed, so the request hidden after it is never answered.
    @Test(arguments: testedBackends)
    func smugglingAttemptsAreRefusedAndTheConnectionClosed(backend: BackendChoice) throws {
        let server = try makeHTTPServer(backend)
        defer { _ = server.drain() }
        let smuggled = "GET /json HTTP/1.1\r\nHost: a\r\n\r\n"
        let cases: [(request: String, status: Int)] = [
            ("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
            ("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400),
            ("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
            ("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello!", 400),
            ("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", 400),
            ("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello", 400),
            ("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
            ("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 501),
            ("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400),
            ("POST /echo HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
            ("POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
            ("GET / HTTP/1.1\nHost: a\n\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
            ("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n", 417),
            ("GET / HTTP/1.1\r\nHost: a\r\n" + String(repeating: "X-Long: " + String(repeating: "v", count: 90) + "\r\n", count: 95) + "\r\n", 431),
            ("GET / HTTP/1.1\r\nHost: a\r\n" + (0..<101).map { "X-\($0): v\r\n" }.joined() + "\r\n", 431),
        ]
        for (request, status) in cases {
            let client = try HTTPTestClient(port: server.listenPort)
            #expect(client.send(request + smuggled))
            let response = try #require(client.response(), "\(request.prefix(60))")
            #expect(response.status == status, "\(request.prefix(60))")
            #expect(response.header("Connection") == "close", "\(request.prefix(60))")
            #expect(client.isClosed(), "answered once, then closed: \(request.prefix(60))")
        }
        // A bad chunk size: after the response to /nope began, the connection can only close.
        for size in ["-1", "zz", "1 2", "fffffffffffffffff", "5;\n"] {
            let client = try HTTPTestClient(port: server.listenPort)
            #expect(client.send("POST /nope HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\(size)\r\nhello\r\n0\r\n\r\n" + smuggled))
            #expect(client.response()?.status == 404)
            #expect(client.isClosed(), "chunk size \(size)")
        }
        // A bad chunk in an echo pipelined behind another request: the answer before it still
        // goes out whole, then the echo's chunks so far, then the connection closes.
        let piped = try HTTPTestClient(port: server.listenPort)
        #expect(piped.send("GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\nPOST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n" + smuggled))
        #expect(piped.response()?.text == "Hello, World!")
        #expect(piped.response() == nil, "the echo's chunked body ends without its last chunk")
        #expect(piped.isClosed())
        #expect(eventually { server.currentFrame().engine.openConnections == 0 })
    }

    /// Bytes from nowhere: whatever comes back is one refusal, the connection ends, and the
    /// server serves the next client as before.
    @Test(arguments: testedBackends)
    func garbageNeverDisturbsTheServer(backend: BackendChoice) throws {
        let server = try makeHTTPServer(backend) { $0.headerTimeoutNs = 2_000_000_000 }
        defer { _ = server.drain() }
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("GET /HTTP1.\r\n:abc 0123 chunked Content-Length Host".utf8)
        for round in 0..<150 {
            let count = Int.random(in: 1...3000, using: &generator)
            let bytes: [UInt8] = (0..<count).map { _ in
                round % 2 == 0 ? UInt8.random(in: 0...255, using: &generator) : alphabet.randomElement(using: &generator)!
            }
            let client = try HTTPTestClient(port: server.listenPort)
            #expect(client.send(bytes))
            shutdown(client.fd, Int32(SHUT_WR))
            if let response = client.response() {
                #expect(response.status >= 400, "round \(round)")
            }
            #expect(client.isClosed(), "round \(round)")
        }
        let client = try HTTPTestClient(port: server.listenPort)
        #expect(client.send("GET /json HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(client.response()?.status == 200)
        #expect(eventually { server.currentFrame().engine.openConnections == 1 })
    }

    /// A body larger than `maxBody` is refused at once, and the refusal reaches the client even
    /// though it goes on sending the body (a plain close would reset the connection under it).
    @Test(arguments: testedBackends)
    func aRefusedBodyStillGetsItsAnswer(backend: BackendChoice) throws {
        let server = try makeHTTPServer(backend) { $0.maxBody = 1 << 20 }
        defer { _ = server.drain() }
        let client = try HTTPTestClient(port: server.listenPort)
        let size = 3 << 20
        let request = Array("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: \(size)\r\n\r\n".utf8) + [UInt8](repeating: 7, count: size)
        let fd = client.fd
        let wroteAll = Atomic<Bool>(false)
        let writer = JoinableThread { wroteAll.store(HTTPTestClient.sendAll(fd, request), ordering: .relaxed) }
        writer.join()
        let whole = wroteAll.load(ordering: .relaxed)
        #expect(whole, "the server read (and dropped) the whole body")
        let response = try #require(client.response())
        #expect(response.status == 413 && response.header("Connection") == "close")
        #expect(client.isClosed())
        #expect(eventually { server.currentFrame().engine.openConnections == 0 })
    }

    /// Slowloris: a head that trickles in is cut off at the header timeout, while another
    /// client is served all along; a keep-alive connection with nothing to ask closes at the
    /// idle timeout (empty lines do not keep it), and one that keeps asking does not.
    @Test(arguments: testedBackends)
    func slowAndIdleClientsAreTimedOut(backend: BackendChoice) throws {
        let server = try makeHTTPServer(backend) {
            $0.headerTimeoutNs = 1_000_000_000
            $0.idleTimeoutNs = 1_500_000_000
        }
        defer { _ = server.drain() }
        let slow = try HTTPTestClient(port: server.listenPort)
        let busy = try HTTPTestClient(port: server.listenPort)
        let idle = try HTTPTestClient(port: server.listenPort)
        let blank = try HTTPTestClient(port: server.listenPort)
        for client in [idle, blank] {
            #expect(client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
            #expect(client.response()?.status == 200)
        }
        var slowCut = false
        var trickle = Array("GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ".utf8)
        // Each byte comes well within the timeout; the head as a whole does not.
        let start = ContinuousClock.now
        var step = 0
        while ContinuousClock.now - start < .milliseconds(3500) {
            if !slowCut && !slow.send([trickle.removeFirst()]) { slowCut = true }
            if trickle.isEmpty { trickle = [0x61] }
            if step % 2 == 0 { _ = blank.send("\r\n") }
            #expect(busy.send("GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"))
            #expect(busy.response()?.text == "Hello, World!", "step \(step)")
            usleep(50_000)
            step += 1
        }
        #expect(slow.response()?.status == nil)
        #expect(slow.isClosed() || slowCut, "the trickling head was cut off")
        #expect(idle.isClosed(), "the idle keep-alive connection was closed")
        #expect(blank.isClosed(), "empty lines do not keep a connection open")
        // The busy one was served throughout, and still is.
        #expect(busy.send("GET /json HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(busy.response()?.status == 200)
    }

    /// A client that pipelines without reading holds at most one input and one output buffer:
    /// the server stops reading it, and answers everything once it reads.
    @Test(arguments: testedBackends)
    func pipeliningWithoutReadingCannotGrowMemory(backend: BackendChoice) throws {
        let server = try makeHTTPServer(backend)
        defer { _ = server.drain() }
        let client = try HTTPTestClient(port: server.listenPort)
        let request = Array("GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
        let count = 150_000
        let requests = [UInt8]((0..<count).lazy.flatMap { _ in request })
        let fd = client.fd
        let writer = JoinableThread { _ = HTTPTestClient.sendAll(fd, requests) }
        // The server answers until both sockets' buffers are full, then waits.
        var lent = 0
        var previous: UInt64 = 0
        var steady = 0
        while steady < 5 {
            usleep(100_000)
            lent = max(lent, server.largeBuffersLent)
            let sent = server.currentFrame().totals.bytesOut
            steady = sent == previous ? steady + 1 : 0
            previous = sent
        }
        #expect(lent <= 2, "one input and one output buffer at most, not \(lent)")
        // Now it reads: every request is answered, in order.
        let responseLength = 119 + 13
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var received = 0
        var checked = 0
        var carry: [UInt8] = []
        while received < count * responseLength {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, min($0.count, count * responseLength - received)) }
            guard n > 0 else { break }
            received += n
            carry += buffer[0..<n]
            var at = 0
            while carry.count - at >= responseLength {
                if carry[at..<(at + 15)].elementsEqual("HTTP/1.1 200 OK".utf8)
                    && carry[(at + responseLength - 13)..<(at + responseLength)].elementsEqual("Hello, World!".utf8) {
                    checked += 1
                }
                at += responseLength
            }
            carry.removeFirst(at)
        }
        writer.join()
        #expect(checked == count)
    }
}
