import CIOURing
import CompletionPort
import Loopback
@testable import ServerCore
import EngineStats
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The echo engine on real loopback sockets, on each available backend.
@Suite struct EchoTests {
    @Test(arguments: availableBackends, EchoPath.allCases)
    func echoIntegrity(backend: BackendChoice, path: EchoPath) throws {
        let engine = try makeEngine(backend, path: path)
        defer { _ = engine.drain() }
        let outcome = try EchoDriver.run(port: engine.listenPort, connections: 200, messages: 1000, maxLength: 1024)
        #expect(outcome.mismatches == 0)
        #expect(outcome.closedEarly == 0)
        #expect(outcome.completedMessages == 200 * 1000)
        // Every byte counted: what the server received it sent back.
        #expect(eventually { engine.currentFrame().engine.openConnections == 0 })
        let frame = engine.currentFrame()
        #expect(frame.totals.bytesIn == UInt64(outcome.bytesEchoed))
        #expect(frame.totals.bytesOut == UInt64(outcome.bytesEchoed))
        #expect(frame.engine.accepted == 200)
        #expect(frame.engine.closedByError == 0)
    }

    @Test(arguments: availableBackends, EchoPath.allCases)
    func aClientThatDoesNotReadIsBoundedThenServedExactly(backend: BackendChoice, path: EchoPath) throws {
        let engine = try makeEngine(backend, path: path, workers: 2)
        defer { _ = engine.drain() }
        let client = try connectClient(port: engine.listenPort)
        defer { close(client) }
        // A fixed receive buffer (no autotuning), and more data than every kernel buffer on
        // the way can hold, so the server must end up with a full ring.
        var receiveBuffer: CInt = 65536
        setsockopt(client, SOL_SOCKET, SO_RCVBUF, &receiveBuffer, socklen_t(MemoryLayout<CInt>.size))
        let size = 16 << 20
        var generator = SplitMix64(state: 7)
        let payload = (0..<size).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        let writer = TestThread {
            _ = payload.withUnsafeBytes { writeAll(client, $0) }
        }
        // Nobody reads yet: the kernel buffers fill, the server's send stalls, and it stops
        // receiving — its ring full, or (a short receive while the send was in flight) partly
        // full: no receive in flight, only the stalled send, and never more than one ring held
        // (in place) or one input and one output buffer (through a handler).
        let held = UInt64(engine.configuration.ioBufferSize) * (path == .inPlace ? 1 : 2)
        #expect(eventually {
            let frame = engine.currentFrame()
            let totals = frame.totals
            let inFlight = frame.workers.reduce(0) { $0 + $1.pending }
            // Counters are sampled one by one: bytesOut may be read after a send that bytesIn's
            // read missed the receive of — compare without subtracting past zero.
            return totals.bytesIn > totals.bytesOut && inFlight == 1
                && totals.bytesIn <= totals.bytesOut &+ held
        })
        let stalled = engine.currentFrame().totals
        #expect(stalled.bytesIn <= stalled.bytesOut &+ held)
        // Now read everything back, in small pieces (partial sends on the server side).
        var received = [UInt8](repeating: 0, count: size)
        var offset = 0
        while offset < size {
            let n = received[offset...].withUnsafeMutableBytes { read(client, $0.baseAddress, min(4096, $0.count)) }
            if n <= 0 { break }
            offset += n
        }
        writer.join()
        #expect(offset == size)
        #expect(received == payload)
    }

    @Test(arguments: availableBackends, EchoPath.allCases)
    func peerResetsCloseOnlyTheirConnection(backend: BackendChoice, path: EchoPath) throws {
        let engine = try makeEngine(backend, path: path)
        defer { _ = engine.drain() }
        let workersBefore = engine.liveWorkers
        for _ in 0..<100 {
            let fd = try connectClient(port: engine.listenPort)
            _ = [UInt8](repeating: 1, count: 100).withUnsafeBytes { writeAll(fd, $0) }
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            close(fd)
        }
        #expect(eventually { engine.currentFrame().engine.openConnections == 0 && engine.currentFrame().engine.accepted == 100 })
        #expect(engine.liveWorkers == workersBefore)
        // Still serving.
        let outcome = try EchoDriver.run(port: engine.listenPort, connections: 4, messages: 50, maxLength: 512)
        #expect(outcome.completedMessages == 200)
        #expect(outcome.mismatches == 0)
    }

    @Test(arguments: availableBackends, EchoPath.allCases)
    func halfCloseGetsEveryByteThenEOF(backend: BackendChoice, path: EchoPath) throws {
        let engine = try makeEngine(backend, path: path)
        defer { _ = engine.drain() }
        let client = try connectClient(port: engine.listenPort)
        defer { close(client) }
        var generator = SplitMix64(state: 3)
        let payload = (0..<100_000).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        let writer = TestThread {
            _ = payload.withUnsafeBytes { writeAll(client, $0) }
            shutdown(client, Int32(SHUT_WR))
        }
        var received = [UInt8](repeating: 0, count: payload.count)
        let n = received.withUnsafeMutableBytes { readExactly(client, into: $0) }
        writer.join()
        #expect(n == payload.count)
        #expect(received == payload)
        var byte: UInt8 = 0
        #expect(read(client, &byte, 1) == 0, "expected EOF after the echo")
        #expect(eventually { engine.currentFrame().engine.openConnections == 0 })
        #expect(engine.currentFrame().engine.closedByError == 0)
    }

    @Test(arguments: availableBackends, EchoPath.allCases)
    func addRetireAndDrainUnderLoad(backend: BackendChoice, path: EchoPath) throws {
        let engine = try makeEngine(backend, path: path, workers: 3)
        let outcome = Mutex<EchoDriver.Outcome?>(nil)
        let port = engine.listenPort
        let client = TestThread {
            let result = try? EchoDriver.run(port: port, connections: 100, messages: 1_000_000, maxLength: 2048,
                                             deadlineSeconds: 30)
            outcome.withLock { $0 = result }
        }
        #expect(eventually { engine.currentFrame().engine.openConnections == 100 && engine.currentFrame().totals.completions > 2000 })
        try engine.addWorker()
        try engine.addWorker()
        #expect(eventually { engine.liveWorkers == 5 })
        #expect(try engine.retireWorker())
        #expect(try engine.retireWorker())
        #expect(try engine.retireWorker())
        #expect(eventually { engine.liveWorkers == 2 })
        try engine.setConcurrency(1)
        #expect(engine.port.concurrency == 1)
        let before = engine.currentFrame().totals.completions
        #expect(eventually { engine.currentFrame().totals.completions > before + 2000 }, "still serving after the changes")
        let report = engine.drain(timeout: .seconds(5))
        #expect(!report.timedOut)
        #expect(report.connectionsClosed == 100)
        #expect(report.pendingAbandoned == 0)
        #expect(engine.liveWorkers == 0)
        client.join()
        let result = try #require(outcome.withLock { $0 })
        // Every byte the client got back before the drain was its own, in order.
        #expect(result.mismatches == 0)
        #expect(result.completedMessages > 0)
        #expect(result.closedEarly == 100)
        #expect(throws: EngineError.drained) { try engine.addWorker() }
    }

    @Test(arguments: availableBackends)
    func maxConnectionsRefusesTheSurplus(backend: BackendChoice) throws {
        let engine = try makeEngine(backend) { $0.maxConnections = 5 }
        defer { _ = engine.drain() }
        let clients = try (0..<8).map { _ in try connectClient(port: engine.listenPort) }
        defer { clients.forEach { close($0) } }
        #expect(eventually { engine.currentFrame().engine.accepted == 8 })
        #expect(engine.currentFrame().engine.refused == 3)
        #expect(engine.currentFrame().engine.openConnections == 5)
        #expect(engine.currentFrame().engine.peakConnections == 5)
    }

    @Test func portInUseIsAClearError() throws {
        let first = try makeEngine(.epoll, workers: 1)
        defer { _ = first.drain() }
        var configuration = EngineConfiguration()
        configuration.port = first.listenPort
        configuration.workers = 1
        #expect(throws: EngineError.addressInUse("127.0.0.1:\(first.listenPort)")) {
            try PortServer(configuration: configuration)
        }
    }

    @Test func badConfigurationIsAnErrorNotATrap() {
        var configuration = EngineConfiguration()
        configuration.port = 0
        configuration.bindAddress = "not-an-address"
        #expect(throws: EngineError.invalidAddress("not-an-address")) { try PortServer(configuration: configuration) }
        configuration.bindAddress = "127.0.0.1"
        configuration.ioBufferSize = 1
        #expect(throws: EngineError.self) { try PortServer(configuration: configuration) }
    }
}

/// What the engine publishes about itself, checked against real traffic.
@Suite struct EngineStatsIntegrationTests {
    @Test(arguments: availableBackends)
    func countersMatchTheTrafficAndConnectionsAreAttributed(backend: BackendChoice) throws {
        let engine = try makeEngine(backend, workers: 3)
        defer { _ = engine.drain() }
        // Idle connections stay open while we look at the attribution.
        let idle = try (0..<10).map { _ in try connectClient(port: engine.listenPort) }
        defer { idle.forEach { close($0) } }
        #expect(eventually {
            let frame = engine.currentFrame()
            return frame.engine.openConnections == 10 && frame.workers.reduce(0) { $0 + $1.connections } == 10
        })
        // Each idle connection has its receive in flight, charged to the worker that armed it.
        #expect(eventually { engine.currentFrame().workers.reduce(0) { $0 + $1.pending } == 10 })

        let outcome = try EchoDriver.run(port: engine.listenPort, connections: 50, messages: 200, maxLength: 2048)
        #expect(outcome.mismatches == 0 && outcome.completedMessages == 50 * 200)
        #expect(eventually { engine.currentFrame().engine.openConnections == 10 })
        let frame = engine.currentFrame()
        let totals = frame.totals
        #expect(totals.bytesIn == UInt64(outcome.bytesEchoed))
        #expect(totals.bytesOut == UInt64(outcome.bytesEchoed))
        #expect(totals.accepts == 60)
        #expect(totals.receives >= 50 * 200)
        #expect(frame.workers.count == 3)
        #expect(frame.workers.allSatisfy { $0.state == .waiting || $0.state == .running })
        #expect(frame.workers.reduce(UInt64(0)) { $0 + $1.runningNs } > 0)
    }

    @Test func retiredWorkersStayVisibleAndTheirSlotsAreReused() throws {
        let engine = try makeEngine(.auto, workers: 2)
        defer { _ = engine.drain() }
        let outcome = try EchoDriver.run(port: engine.listenPort, connections: 8, messages: 100, maxLength: 512)
        #expect(outcome.mismatches == 0)
        // Quiet: every connection closed and its last completions served.
        #expect(eventually { engine.currentFrame().engine.openConnections == 0 })
        let before = engine.currentFrame().totals
        #expect(try engine.retireWorker())
        #expect(eventually { engine.currentFrame().workers(in: .exited) == 1 })
        var frame = engine.currentFrame()
        #expect(frame.workers.count == 2 && frame.liveWorkers == 1)
        #expect(frame.totals.completions == before.completions + 1, "the shutdown packet is counted")
        // Slots are reused only when no unused one is left: a new worker takes a fresh slot.
        let added = try engine.addWorker()
        frame = engine.currentFrame()
        #expect(frame.workers.count == 3)
        #expect(frame.workers.contains { $0.id == added && $0.state != .exited })
        #expect(frame.totals.bytesIn == UInt64(outcome.bytesEchoed))
    }

    @Test func theSamplerPublishesFramesOnItsPeriod() throws {
        let engine = try makeEngine(.auto, workers: 2) { $0.statsPeriodMilliseconds = 50 }
        defer { _ = engine.drain() }
        #expect(eventually { engine.stats.newest >= 3 })
        let frames = engine.stats.recent(3)
        #expect(frames.count == 3)
        #expect(frames.allSatisfy { $0.workers.count == 2 })
        #expect(zip(frames, frames.dropFirst()).allSatisfy { $1.uptimeNs > $0.uptimeNs })
        engine.sampler.periodNs = 1_000_000_000
        #expect(engine.sampler.periodNs == 1_000_000_000)
    }

    /// Shutdown packets still queued count against the live workers: with every worker busy
    /// (blocked), five presses of `-` on two workers post two packets, not five, and workers
    /// added afterwards are not retired by a surplus packet.
    @Test(arguments: availableBackends)
    func retiringCountsQueuedShutdownPackets(backend: BackendChoice) throws {
        let engine = try makeEngine(backend, workers: 2) { $0.concurrency = 1 }
        defer { _ = engine.drain() }
        // Keep both workers inside a long completion so the packets stay queued.
        engine.simulatedBlockMicroseconds = 300_000
        let clients = try (0..<4).map { _ in try connectClient(port: engine.listenPort) }
        defer { clients.forEach { close($0) } }
        for client in clients {
            // A retired pool would leave the reads below waiting forever: bound them.
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            _ = "x".withCString { write(client, $0, 1) }
        }
        #expect(eventually { engine.currentFrame().workers.filter { $0.state == .blocked }.count == 2 })
        var posted = 0
        for _ in 0..<5 where try engine.retireWorker() { posted += 1 }
        #expect(posted == 2, "one packet per live worker, however often the key is pressed")
        #expect(engine.workersTarget == 0)
        engine.simulatedBlockMicroseconds = 0
        #expect(eventually { engine.liveWorkers == 0 })
        try engine.addWorker()
        try engine.addWorker()
        #expect(eventually(within: 2) { engine.liveWorkers == 2 && engine.workersTarget == 2 })
        // Served long enough to dequeue any surplus packet: nothing retires the new workers.
        for client in clients {
            var back = [UInt8](repeating: 0, count: 6)
            #expect(back.withUnsafeMutableBytes { readExactly(client, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<1])) } == 1)
            _ = "after".withCString { write(client, $0, 5) }
            #expect(back.withUnsafeMutableBytes { readExactly(client, into: UnsafeMutableRawBufferPointer(rebasing: $0[1..<6])) } == 5)
            #expect(String(decoding: back, as: UTF8.self) == "xafter")
        }
        #expect(engine.liveWorkers == 2)
    }

    @Test func commandsAreAppliedByTheEngine() throws {
        let engine = try makeEngine(.epoll, workers: 1) { $0.concurrency = 2 }
        defer { _ = engine.drain() }
        #expect(engine.apply(.changeConcurrency(by: 1)).message == "concurrency 2 → 3")
        #expect(engine.apply(.changeConcurrency(by: -10)).message == "concurrency 3 → 1")
        #expect(engine.apply(.stepWork(by: 1)).succeeded)
        #expect(engine.simulatedWorkMicroseconds == 1)
        #expect(engine.apply(.setBlockMicroseconds(-1)).succeeded == false)
        #expect(engine.apply(.addWorker).succeeded)
        #expect(eventually { engine.currentFrame().settings.workersTarget == 2 })
        #expect(engine.currentFrame().settings.workMicroseconds == 1)
        #expect(engine.apply(.drain).succeeded)
        #expect(eventually { engine.isDrained })
        #expect(engine.apply(.addWorker).succeeded == false)
        let report = engine.drain(timeout: .seconds(1))
        #expect(report.workersStopped == 2, "a later drain call returns the drain's own report")
    }

    @Test func workSteps() {
        #expect(EngineCommand.workStep(from: 0, 1) == 1)
        #expect(EngineCommand.workStep(from: 5, 1) == 10)
        #expect(EngineCommand.workStep(from: 5, -1) == 2)
        #expect(EngineCommand.workStep(from: 0, -1) == 0)
        #expect(EngineCommand.workStep(from: 1000, 1) == 1000)
        #expect(EngineCommand.workStep(from: 7, -1) == 5)
    }
}

/// Buffers that grow while data flows and go back to the pool when it stops.
@Suite struct EchoBufferTests {
    /// Echoes `chunks` × 64 KiB on every client, verifying every byte.
    private func echoBulk(_ clients: [CInt], chunks: Int, seed: UInt64) -> Bool {
        var generator = SplitMix64(state: seed)
        let payload = (0..<65536).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        var back = [UInt8](repeating: 0, count: payload.count)
        for client in clients {
            for _ in 0..<chunks {
                guard payload.withUnsafeBytes({ writeAll(client, $0) }),
                      back.withUnsafeMutableBytes({ readExactly(client, into: $0) }) == payload.count,
                      back == payload else { return false }
            }
        }
        return true
    }

    @Test(arguments: availableBackends, EchoPath.allCases)
    func largeBuffersAreLentWhileDataFlowsAndReturnedWhenIdle(backend: BackendChoice, path: EchoPath) throws {
        let engine = try makeEngine(backend, path: path, workers: 2) { $0.statsPeriodMilliseconds = 50 }
        defer { _ = engine.drain() }
        // More connections than the pool keeps warm, so that trimming has something to do.
        let count = PortServer.warmReserve + 16
        let clients = try (0..<count).map { _ in try connectClient(port: engine.listenPort) }
        defer { clients.forEach { close($0) } }
        #expect(echoBulk(clients, chunks: 4, seed: 1))
        // Grown: a 1 KiB buffer would take 64 receives per 64 KiB; large buffers take a few.
        let totals = engine.currentFrame().totals
        #expect(totals.bytesIn == UInt64(count * 4 * 65536))
        #expect(totals.receives * 8192 < totals.bytesIn, "\(totals.receives) receives for \(totals.bytesIn) bytes")
        let pool = try #require(engine.bufferPool)
        let residentWhileLent = pool.residentBytes()
        #expect(residentWhileLent >= count * 65536)
        // Quiet for a sweep interval or two: every large buffer goes back, and the pool keeps
        // its warm reserve, handing the other buffers' pages back to the kernel.
        #expect(eventually(within: 15) { engine.largeBuffersLent == 0 })
        #expect(eventually(within: 15) { pool.warmBuffers <= PortServer.warmReserve })
        #expect(eventually { pool.residentBytes() <= residentWhileLent - 16 * 65536 })
        // The connections echo as before on their small buffers, and grow again.
        let receivesBefore = engine.currentFrame().totals.receives
        #expect(echoBulk(clients, chunks: 2, seed: 2))
        let after = engine.currentFrame().totals
        #expect((after.receives - receivesBefore) * 8192 < UInt64(count * 2 * 65536))
        #expect(eventually(within: 15) { engine.largeBuffersLent == 0 })
        // A send's completion may be counted just after the client has read its bytes.
        #expect(eventually {
            let totals = engine.currentFrame().totals
            return totals.bytesIn == totals.bytesOut && totals.bytesIn == UInt64(count * 6 * 65536)
        })
        #expect(engine.currentFrame().engine.closedByError == 0)
    }

    @Test(arguments: availableBackends, EchoPath.allCases)
    func messagesThatFitNeverBorrowALargeBuffer(backend: BackendChoice, path: EchoPath) throws {
        let engine = try makeEngine(backend, path: path, workers: 2)
        defer { _ = engine.drain() }
        // Up to 512 bytes echoed one at a time: the ring wraps but never fills.
        let outcome = try EchoDriver.run(port: engine.listenPort, connections: 50, messages: 400, maxLength: 512)
        #expect(outcome.mismatches == 0)
        #expect(outcome.completedMessages == 50 * 400)
        let pool = try #require(engine.bufferPool)
        #expect(pool.lent == 0)
        #expect(pool.residentBytes() == 0)
    }

    @Test(arguments: availableBackends, EchoPath.allCases)
    func anEmptyPoolLeavesConnectionsOnTheirSmallBuffers(backend: BackendChoice, path: EchoPath) throws {
        // 4 large buffers for 40 connections streaming at once; a size that is not a whole
        // number of pages (the pool spaces buffers by whole pages).
        let engine = try makeEngine(backend, path: path, workers: 2) {
            $0.largeBuffers = 4
            $0.ioBufferSize = 100_000
        }
        defer { _ = engine.drain() }
        let outcome = try EchoDriver.run(port: engine.listenPort, connections: 40, messages: 40, maxLength: 20_000)
        #expect(outcome.mismatches == 0)
        #expect(outcome.closedEarly == 0)
        #expect(outcome.completedMessages == 40 * 40)
        #expect(engine.bufferPool?.lent ?? -1 <= 4)
    }
}
