import CompletionPort
import EngineStats
import Loopback
@testable import ServerCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Each connection's figures on real sockets: what the frames' connection rows say about who
/// is served and who waits, and the operator's close.
@Suite struct ConnectionFiguresTests {
    private func read(_ fd: CInt, count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let n = bytes.withUnsafeMutableBytes { readExactly(fd, into: $0) }
        return Array(bytes[0..<max(0, n)])
    }

    private func send(_ fd: CInt, _ text: String) -> Bool {
        Array(text.utf8).withUnsafeBytes { writeAll(fd, $0) }
    }

    /// The client's own port: what the server's row names as its peer's.
    private func localPort(_ fd: CInt) -> Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    private func row(of fd: CInt, in frame: StatsFrame) -> ConnectionSample? {
        let port = localPort(fd)
        return frame.connections.first { $0.peer.port == port && $0.state != .closed }
    }

    @Test(arguments: availableBackends)
    func rowsCountWhatEachConnectionMoved(backend: BackendChoice) throws {
        let server = try makeServer(backend, serving: LineProtocol(), workers: 2)
        defer { _ = server.drain() }
        let busy = try connectClient(port: server.listenPort)
        let quiet = try connectClient(port: server.listenPort)
        defer { close(busy); close(quiet) }
        #expect(read(busy, count: 6).count == 6 && read(quiet, count: 6).count == 6)
        let lines = (0..<100).map { "line \($0)\n" }.joined()
        #expect(send(busy, lines))
        #expect(read(busy, count: lines.utf8.count).count == lines.utf8.count)
        // The replies can reach the client before their send's completion reaches a worker.
        var frame = server.currentFrame()
        #expect(eventually(within: 5) {
            frame = server.currentFrame()
            return row(of: busy, in: frame)?.bytesOut == UInt64(lines.utf8.count + 6) && row(of: busy, in: frame)?.inflight == 1
        })
        let busyRow = try #require(row(of: busy, in: frame), "\(frame.connections)")
        let quietRow = try #require(row(of: quiet, in: frame), "\(frame.connections)")
        #expect(busyRow.bytesIn == UInt64(lines.utf8.count))
        #expect(busyRow.bytesOut == UInt64(lines.utf8.count + 6))
        #expect(busyRow.handlerFigure == 100)
        #expect(busyRow.peer.description == "127.0.0.1:\(localPort(busy))")
        #expect(busyRow.state == .receiving && busyRow.inflight == 1)
        #expect(busyRow.worker >= 0 && busyRow.handlerNs > 0 && busyRow.completions >= 2)
        #expect(quietRow.bytesIn == 0 && quietRow.bytesOut == 6 && quietRow.handlerFigure == 0)
        #expect(busyRow.id != quietRow.id && busyRow.openedAtNs > 0)
        #expect(frame.engine.receiving == 2 && frame.engine.blocked == 0 && frame.engine.paused == 0)
        // The busier first (no one waits).
        let order = frame.connections.map(\.id)
        #expect(order.firstIndex(of: busyRow.id)! < order.firstIndex(of: quietRow.id)!)
    }

    @Test(arguments: availableBackends)
    func aBlockedConnectionIsAlwaysInTheFrame(backend: BackendChoice) throws {
        // Two rows per frame, five busy connections: the one blocked in its handler still shows.
        let server = try makeServer(backend, serving: LineProtocol(), workers: 3) { $0.connectionRows = 2 }
        defer { _ = server.drain() }
        let busy = try (0..<5).map { _ in try connectClient(port: server.listenPort) }
        let napping = try connectClient(port: server.listenPort)
        defer { busy.forEach { close($0) }; close(napping) }
        for fd in busy + [napping] { #expect(read(fd, count: 6).count == 6) }
        for (index, fd) in busy.enumerated() {
            let text = String(repeating: "busy line\n", count: 10 * (index + 1))
            #expect(send(fd, text) && read(fd, count: text.utf8.count).count == text.utf8.count)
        }
        #expect(send(napping, "NAP 3000\n"))
        var blocked: ConnectionSample?
        #expect(eventually(within: 2) {
            let frame = server.currentFrame()
            blocked = row(of: napping, in: frame)
            return blocked?.state == .blocked && frame.engine.blocked == 1 && frame.connections.count == 2
        })
        #expect((blocked?.waitingSinceNs ?? 0) > 0)
        #expect(read(napping, count: 7) == Array("napped\n".utf8))
    }

    @Test(arguments: availableBackends)
    func aClientThatDoesNotReadShowsPausedWithItsBuffers(backend: BackendChoice) throws {
        let server = try makeEngine(backend, workers: 2)
        defer { _ = server.drain() }
        let client = try connectClient(port: server.listenPort)
        defer { close(client) }
        let flags = fcntl(client, F_GETFL)
        _ = fcntl(client, F_SETFL, flags | O_NONBLOCK)
        let chunk = [UInt8](repeating: 7, count: 65536)
        var sent = 0
        // Until neither the server nor the sockets take more.
        var stalled = 0
        while stalled < 20 && sent < 64 << 20 {
            let n = chunk.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
            if n > 0 { sent += n; stalled = 0 } else { stalled += 1; usleep(20_000) }
        }
        var paused: ConnectionSample?
        #expect(eventually(within: 3) {
            let frame = server.currentFrame()
            paused = row(of: client, in: frame)
            return paused?.state == .paused && frame.engine.paused == 1
        }, "\(String(describing: paused))")
        #expect((paused?.heldBytes ?? 0) >= 256 << 10 && (paused?.bufferedBytes ?? 0) > 0 && paused?.largeInput == true)
    }

    @Test(arguments: availableBackends)
    func anOperatorClosesOneConnection(backend: BackendChoice) throws {
        let line = LineProtocol()
        let server = try makeServer(backend, serving: line, workers: 2) { $0.statsPeriodMilliseconds = 50 }
        defer { _ = server.drain() }
        let target = try connectClient(port: server.listenPort)
        let bystander = try connectClient(port: server.listenPort)
        defer { close(target); close(bystander) }
        #expect(read(target, count: 6).count == 6 && read(bystander, count: 6).count == 6)
        let id = try #require(row(of: target, in: server.currentFrame())?.id)
        let outcome = server.apply(.closeConnection(id: id))
        #expect(outcome.succeeded, "\(outcome.message)")
        // The client sees the server close; the handler hears why.
        #expect(read(target, count: 1).isEmpty)
        #expect(eventually { line.closes.reasons.withLock { $0 } == [.byOperator] })
        // The frames carry the close and count it.
        #expect(eventually {
            server.stats.recent(20).contains { frame in
                frame.engine.operatorCloses == 1
                    && frame.connections.contains { $0.id == id && $0.state == .closed && $0.closeReason == .byOperator }
            }
        })
        // A connection that is gone cannot be closed again; the other one is untouched.
        #expect(!server.apply(.closeConnection(id: id)).succeeded)
        #expect(!server.apply(.closeConnection(id: 999_999)).succeeded)
        #expect(send(bystander, "still here\n") && read(bystander, count: 11) == Array("STILL HERE\n".utf8))
    }

    @Test(arguments: availableBackends, EchoPath.allCases)
    func theDrainClosesAsTheServer(backend: BackendChoice, path: EchoPath) throws {
        // Not as a failure: the receive the drain's close cancels says nothing about why.
        let server = try makeEngine(backend, path: path, workers: 2) { $0.statsPeriodMilliseconds = 60_000 }
        let client = try connectClient(port: server.listenPort)
        defer { close(client) }
        #expect(echoOnce(client))
        #expect(eventually { server.currentFrame().connections.count == 1 })
        _ = server.drain()
        let closed = server.currentFrame().connections.filter { $0.state == .closed }
        #expect(closed.map(\.closeReason) == [.byServer], "\(closed)")
        #expect(closed.first?.closeErrno == 0)
    }

    private func echoOnce(_ fd: CInt) -> Bool {
        send(fd, "ping") && read(fd, count: 4) == Array("ping".utf8)
    }

    @Test func aRefusedConnectionIsAClosedRow() throws {
        let server = try makeEngine(.auto, workers: 2) {
            $0.maxConnections = 1
            $0.statsPeriodMilliseconds = 50
        }
        defer { _ = server.drain() }
        let first = try connectClient(port: server.listenPort)
        defer { close(first) }
        #expect(eventually { server.currentFrame().engine.openConnections == 1 })
        let second = try connectClient(port: server.listenPort)
        defer { close(second) }
        #expect(read(second, count: 1).isEmpty)
        #expect(eventually {
            server.stats.recent(20).contains { $0.connections.contains { $0.closeReason == .refused && $0.peer.port == localPort(second) } }
        })
    }
}
