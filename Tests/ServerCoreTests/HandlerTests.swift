import CIOURing
import CompletionPort
import EngineStats
import Loopback
@testable import ServerCore
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The protocol seam on real sockets: a line protocol (`LineProtocol`) served by the core.
@Suite struct HandlerTests {
    private func makeLineServer(_ backend: BackendChoice, _ line: LineProtocol = LineProtocol(),
                                configure: (inout EngineConfiguration) -> Void = { _ in }) throws -> PortServer {
        try makeServer(backend, serving: line, workers: 2, configure: configure)
    }

    /// Reads until `count` bytes have come or the peer closes; returns them.
    private func read(_ fd: CInt, count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let n = bytes.withUnsafeMutableBytes { readExactly(fd, into: $0) }
        return Array(bytes[0..<max(0, n)])
    }

    private func send(_ fd: CInt, _ text: String) -> Bool {
        Array(text.utf8).withUnsafeBytes { writeAll(fd, $0) }
    }

    private func isAtEOF(_ fd: CInt) -> Bool {
        var byte: UInt8 = 0
        return Glibc.read(fd, &byte, 1) == 0
    }

    @Test(arguments: availableBackends)
    func pipelinedLinesAreAnsweredInOrder(backend: BackendChoice) throws {
        let server = try makeLineServer(backend)
        defer { _ = server.drain() }
        let client = try connectClient(port: server.listenPort)
        defer { close(client) }
        #expect(String(decoding: read(client, count: 6), as: UTF8.self) == "hello\n")
        // 2 000 lines in one write: far more replies than the 1 KiB output holds at once.
        let lines = (0..<2000).map { "line \($0) of many" }
        let writer = TestThread { _ = self.send(client, lines.map { $0 + "\n" }.joined()) }
        let expected = lines.map { $0.uppercased() + "\n" }.joined()
        let got = read(client, count: expected.utf8.count)
        writer.join()
        #expect(String(decoding: got, as: UTF8.self) == expected)
        // The handler's own counters, kept per worker, add up in the frames.
        let schema = server.handlerSchema
        #expect(schema.metrics.map(\.name) == ["lines", "line_size", "sleeping", "sleep_time"])
        let values = schema.values(of: server.currentFrame().handlerRows)
        #expect(values.counters[LineProtocol.lines] == 2000)
        #expect(values.counters[LineProtocol.lineBytes] == UInt64(lines.reduce(0) { $0 + $1.utf8.count + 1 }))
        #expect(values.gauges[LineProtocol.sleeping] == 0)
        #expect(send(client, "QUIT\n"))
        #expect(String(decoding: read(client, count: 4), as: UTF8.self) == "bye\n")
        #expect(isAtEOF(client))
        #expect(eventually { server.currentFrame().engine.openConnections == 0 })
    }

    /// A handler that returns `.continue` when its output is full is called again when the send
    /// completes, while the next receive is in flight: consuming then must not move the input's
    /// start under that receive (the bytes it brings would land after stale ones).
    @Test(arguments: availableBackends)
    func aHandlerThatDoesNotPauseStillGetsEveryByteInOrder(backend: BackendChoice) throws {
        var line = LineProtocol()
        line.careless = true
        let server = try makeLineServer(backend, line)
        defer { _ = server.drain() }
        let client = try connectClient(port: server.listenPort)
        defer { close(client) }
        _ = read(client, count: 6)
        // Each round: more replies than the 1 KiB output holds, then wait for all of them, so
        // the last lines of a round are consumed after a send completes, with the next
        // receive already waiting for the next round.
        for round in 0..<200 {
            let lines = (0..<60).map { "careless round \(round) line \($0)" }
            #expect(send(client, lines.map { $0 + "\n" }.joined()))
            let expected = lines.map { $0.uppercased() + "\n" }.joined()
            let got = String(decoding: read(client, count: expected.utf8.count), as: UTF8.self)
            guard got == expected else {
                Issue.record("round \(round): got \(got.prefix(80))…, expected \(expected.prefix(80))…")
                return
            }
        }
    }

    @Test(arguments: availableBackends)
    func packetsAHandlerPostsAreServedByWorkers(backend: BackendChoice) throws {
        let line = LineProtocol()
        let server = try makeLineServer(backend, line)
        defer { _ = server.drain() }
        let client = try connectClient(port: server.listenPort)
        defer { close(client) }
        _ = read(client, count: 6)
        let before = server.currentFrame().totals.posted
        #expect(send(client, (1...100).map { "POST \($0)\n" }.joined()))
        #expect(read(client, count: 7 * 100).count == 7 * 100)
        // Each packet reached `posted` once, on a worker that counted it as a posted packet.
        #expect(eventually { line.closes.posted.withLock { $0.count } == 100 })
        #expect(Set(line.closes.posted.withLock { $0 }) == Set(1...100))
        #expect(eventually { server.currentFrame().totals.posted >= before + 100 })
    }

    @Test(arguments: availableBackends)
    func aLineSplitAcrossManyReceivesIsOneLine(backend: BackendChoice) throws {
        let server = try makeLineServer(backend)
        defer { _ = server.drain() }
        let client = try connectClient(port: server.listenPort)
        defer { close(client) }
        _ = read(client, count: 6)
        var one: CInt = 1
        setsockopt(client, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
        // One byte per write, each waiting until the server has received it: the line arrives
        // in many receives, and nothing is answered before its newline.
        for (index, byte) in "split line".utf8.enumerated() {
            #expect(send(client, String(UnicodeScalar(byte))))
            #expect(eventually { server.currentFrame().totals.bytesIn == UInt64(index + 1) })
        }
        #expect(server.currentFrame().totals.bytesOut == 6, "only the greeting before the newline")
        #expect(send(client, "\n"))
        #expect(String(decoding: read(client, count: 11), as: UTF8.self) == "SPLIT LINE\n")
    }

    @Test(arguments: availableBackends)
    func aLongLineGrowsTheInputAndATooLongOneIsRefused(backend: BackendChoice) throws {
        let server = try makeLineServer(backend) { $0.ioBufferSize = 65536 }
        defer { _ = server.drain() }
        let client = try connectClient(port: server.listenPort)
        defer { close(client) }
        _ = read(client, count: 6)
        // 40 000 bytes: larger than the 1 KiB small buffer, within the 64 KiB large one.
        let long = String(repeating: "abcdefgh", count: 5000)
        let writer = TestThread { _ = self.send(client, long + "\n") }
        #expect(String(decoding: read(client, count: long.utf8.count + 1), as: UTF8.self) == long.uppercased() + "\n")
        writer.join()
        // 100 000 bytes without a newline: more than the largest input buffer holds.
        let tooLong = TestThread { _ = self.send(client, String(repeating: "x", count: 100_000)) }
        #expect(String(decoding: read(client, count: 9), as: UTF8.self) == "too long\n")
        // Closed with unread bytes in its receive queue, the server's socket resets.
        var byte: UInt8 = 0
        let last = Glibc.read(client, &byte, 1)
        #expect(last == 0 || (last < 0 && errno == ECONNRESET), "closed after the reply")
        tooLong.join()
        #expect(eventually { server.currentFrame().engine.openConnections == 0 })
    }

    @Test(arguments: availableBackends)
    func handlersHearWhyTheirConnectionClosed(backend: BackendChoice) throws {
        let line = LineProtocol()
        let server = try makeLineServer(backend, line)
        defer { _ = server.drain() }
        // QUIT: the handler closes. Then a peer that closes, then one that resets.
        let quitting = try connectClient(port: server.listenPort)
        _ = read(quitting, count: 6)
        #expect(send(quitting, "QUIT\n"))
        _ = read(quitting, count: 4)
        close(quitting)
        #expect(eventually { line.closes.reasons.withLock { $0.count } == 1 })
        let leaving = try connectClient(port: server.listenPort)
        _ = read(leaving, count: 6)
        shutdown(leaving, Int32(SHUT_WR))
        #expect(isAtEOF(leaving))
        close(leaving)
        #expect(eventually { line.closes.reasons.withLock { $0.count } == 2 })
        let resetting = try connectClient(port: server.listenPort)
        _ = read(resetting, count: 6)
        #expect(send(resetting, "unfinished"))
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(resetting, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close(resetting)
        #expect(eventually { line.closes.reasons.withLock { $0.count } == 3 })
        let reasons = line.closes.reasons.withLock { $0 }
        #expect(reasons[0] == .byHandler)
        #expect(reasons[1] == .peerClosed)
        #expect(reasons[2] == .failed(errno: ECONNRESET))
    }

    @Test(arguments: availableBackends)
    func aClientThatSendsWithoutReadingIsBoundedThenAnsweredInFull(backend: BackendChoice) throws {
        let server = try makeLineServer(backend)
        defer { _ = server.drain() }
        let client = try connectClient(port: server.listenPort)
        defer { close(client) }
        var receiveBuffer: CInt = 65536
        setsockopt(client, SOL_SOCKET, SO_RCVBUF, &receiveBuffer, socklen_t(MemoryLayout<CInt>.size))
        _ = read(client, count: 6)
        // 16 MiB of requests, and nobody reads the replies yet.
        let line = String(repeating: "q", count: 63) + "\n"
        let count = (16 << 20) / 64
        let writer = TestThread {
            let chunk = String(repeating: line, count: 1024)
            for _ in 0..<(count / 1024) { guard self.send(client, chunk) else { return } }
        }
        // The server stops reading: received bytes stop growing well short of 16 MiB, and it
        // holds at most one large input and one large output buffer.
        var last: UInt64 = 0
        #expect(eventually(within: 20) {
            let now = server.currentFrame().totals.bytesIn
            defer { last = now }
            usleep(200_000)
            return now == last && now > 0
        })
        #expect(server.currentFrame().totals.bytesIn < UInt64(count * 64 / 2))
        #expect(server.largeBuffersLent <= 2)
        // Now read every reply: all of them come, in order.
        let reply = Array(line.uppercased().utf8)
        var checked = 0
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while checked < count {
            let got = buffer.withUnsafeMutableBytes { readExactly(client, into: $0) }
            #expect(got == buffer.count)
            for offset in stride(from: 0, to: got, by: 64) where !buffer[offset..<(offset + 64)].elementsEqual(reply) {
                Issue.record("reply \(checked + offset / 64) is wrong")
                return
            }
            checked += got / 64
        }
        writer.join()
        #expect(checked == count)
    }

    @Test(arguments: availableBackends)
    func aHandlerThatBlocksLetsAnotherWorkerServe(backend: BackendChoice) throws {
        let server = try makeLineServer(backend) { $0.concurrency = 1 }
        defer { _ = server.drain() }
        let sleeper = try connectClient(port: server.listenPort)
        defer { close(sleeper) }
        let other = try connectClient(port: server.listenPort)
        defer { close(other) }
        _ = read(sleeper, count: 6)
        _ = read(other, count: 6)
        // Two seconds of 1 ms sleeps in the blocking scope, on one connection.
        let sleeps = 2000
        let writer = TestThread { _ = self.send(sleeper, String(repeating: "SLEEP\n", count: sleeps)) }
        #expect(eventually { server.currentFrame().workers.contains { $0.state == .blocked } })
        // Meanwhile another worker serves (concurrency 1: only because the sleeper does not count).
        #expect(send(other, "ping\n"))
        #expect(String(decoding: read(other, count: 5), as: UTF8.self) == "PING\n")
        #expect(server.currentFrame().totals.bytesOut < UInt64(6 + 6 + 5 + 6 * sleeps), "answered while the sleeper was still sleeping")
        #expect(read(sleeper, count: 6 * sleeps).count == 6 * sleeps)
        writer.join()
        // Every sleep counted once in the histogram, each at least its 1 ms; nobody asleep now.
        let values = server.handlerSchema.values(of: server.currentFrame().handlerRows)
        let sleepTimes = values.histograms[LineProtocol.sleepTime]
        #expect(sleepTimes.total == UInt64(sleeps))
        #expect((sleepTimes.percentile(0.01) ?? 0) >= 900_000)
        #expect(values.gauges[LineProtocol.sleeping] == 0)
        #expect(values.counters[LineProtocol.lines] == UInt64(sleeps + 1))
        #expect(server.currentFrame().workers.contains { $0.blockedNs > 0 })
    }
}
