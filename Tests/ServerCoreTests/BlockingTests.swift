import CompletionPort
import Loopback
@testable import ServerCore
import EngineStats
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Handlers that block: the frames show the packets that wait, where they wait.
@Suite struct BlockingTests {
    /// 32 messages arrive at once and every completion blocks 20 ms. A worker that dequeued
    /// them in one batch gives back all but the one it blocks on: they wait in the port's
    /// FIFO, counted in the queue depth with their age, where the other workers take them.
    /// (Kept in the batch, the queue would read 0 while one worker served them one by one.)
    @Test(arguments: availableBackends)
    func packetsBehindABlockedHandlerWaitInThePortsQueue(backend: BackendChoice) throws {
        let engine = try makeEngine(backend, workers: 4) { $0.concurrency = 2; $0.blockMicroseconds = 20_000 }
        defer { _ = engine.drain() }
        var clients: [CInt] = []
        defer { for fd in clients { close(fd) } }
        for _ in 0..<32 { clients.append(try connectClient(port: engine.listenPort)) }
        #expect(eventually { engine.currentFrame().engine.openConnections == 32 })
        // Wait until the accepts' own blocking is over and nothing is queued.
        #expect(eventually { engine.currentFrame().port.queueDepth == 0 && engine.currentFrame().workers(in: .blocked) == 0 })
        let message = [UInt8](repeating: 7, count: 16)
        for fd in clients { _ = message.withUnsafeBytes { writeAll(fd, $0) } }
        var deepest = 0, oldest = 0
        #expect(eventually {
            let frame = engine.currentFrame()
            deepest = max(deepest, frame.port.queueDepth)
            oldest = max(oldest, frame.port.queueOldestMicroseconds)
            return deepest >= 16 && oldest >= 10_000
        }, "queue depth reached \(deepest), oldest \(oldest) µs")
        for fd in clients {
            var echoed = [UInt8](repeating: 0, count: 16)
            #expect(echoed.withUnsafeMutableBytes { readExactly(fd, into: $0) } == 16)
            #expect(echoed == message)
        }
    }

    /// Auto mode's decision keeps the figures it was taken on, the oldest packet's age too,
    /// and its message quotes them.
    @Test func autoDecisionsQuoteTheOldestQueuedPacket() throws {
        let engine = try makeEngine(.auto, workers: 2)
        defer { _ = engine.drain() }
        _ = engine.apply(.setAuto(true), origin: .auto)
        var decision = AutoSample()
        decision.actionCode = AutoAction.add.rawValue
        decision.reasonCode = AutoReason.starvation.rawValue
        decision.workers = 2
        decision.blocked = 2
        decision.queued = 12
        decision.queueOldestMicroseconds = 180_000
        #expect(engine.applyAutoDecision(decision))
        let auto = engine.currentFrame().auto
        #expect(auto.queueOldestMicroseconds == 180_000)
        #expect(auto.message == "auto: +1 worker — 2 of 2 blocked, 12 queued, oldest 180 ms")
    }
}
