import CompletionPort
import ServerCore
import Loopback
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Connections on their own buffers receive with one multishot receive over provided buffers
/// (io_uring, kernel 6.0+); their arrivals may reach several workers in any order.
@Suite struct MultishotEchoTests {
    @Test func ioURingEnginesReceiveMultishotAndOthersOneShot() throws {
        if testedBackends.contains(.ioURing) {
            let engine = try makeEngine(.ioURing, workers: 1) { $0.providedBuffers = 2048 }
            defer { _ = engine.drain() }
            if !engine.receivesMultishot && getenv("IOCPTOP_ALLOW_NO_URING") == nil {
                Issue.record("io_uring without multishot receive (kernel before 6.0?); IOCPTOP_ALLOW_NO_URING=1 allows it")
            }
            // The default: one-shot receives (they measured cheaper).
            let without = try makeEngine(.ioURing, workers: 1)
            defer { _ = without.drain() }
            #expect(!without.receivesMultishot)
        }
        let epoll = try makeEngine(.epoll, workers: 1) { $0.providedBuffers = 2048 }
        defer { _ = epoll.drain() }
        #expect(!epoll.receivesMultishot)
        #expect(throws: EngineError.self) { try makeEngine(.auto, workers: 1) { $0.providedBuffers = 1000 } }
    }

    /// Clients write bursts of small pieces (separate segments) and read the whole burst back:
    /// a burst arrives as several completions, which eight workers serve in any order.
    @Test(arguments: availableBackends)
    func burstsOfSmallPiecesComeBackWholeAndInOrder(backend: BackendChoice) throws {
        let engine = try makeEngine(backend, workers: 8) {
            $0.concurrency = 4
            $0.providedBuffers = 2048
        }
        defer { _ = engine.drain() }
        let port = engine.listenPort
        let failures = Atomic<Int>(0)
        let threads = (0..<4).map { threadIndex in
            TestThread {
                var generator = SplitMix64(state: UInt64(threadIndex) &+ 77)
                guard let fds = try? (0..<8).map({ _ in try Loopback.connect(port: port, noDelay: true) }) else {
                    failures.add(1, ordering: .relaxed)
                    return
                }
                defer { fds.forEach { close($0) } }
                var back = [UInt8](repeating: 0, count: 1024)
                for _ in 0..<150 {
                    for fd in fds {
                        // Under 1 KiB per burst: the connection stays on its own buffer.
                        var sent: [UInt8] = []
                        for _ in 0..<(2 + Int(generator.next() % 6)) {
                            let piece = (0..<(1 + Int(generator.next() % 120))).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
                            sent += piece
                            guard piece.withUnsafeBytes({ Loopback.writeAll(fd, $0) }) else {
                                failures.add(1, ordering: .relaxed)
                                return
                            }
                        }
                        let n = back.withUnsafeMutableBytes {
                            Loopback.readExactly(fd, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<sent.count]))
                        }
                        if n != sent.count || Array(back[0..<n]) != sent { failures.add(1, ordering: .relaxed) }
                    }
                }
            }
        }
        threads.forEach { $0.join() }
        #expect(failures.load(ordering: .relaxed) == 0)
        let frame = engine.currentFrame()
        #expect(frame.engine.closedByError == 0)
        #expect(engine.largeBuffersLent == 0)
    }

    /// Four provided buffers for forty connections: arrivals find none free (ENOBUFS), and
    /// those connections go on with one-shot receives into their own buffers.
    @Test func tooFewProvidedBuffersFallBackToOneShotReceives() throws {
        guard testedBackends.contains(.ioURing) else { return }
        let engine = try makeEngine(.ioURing, workers: 4) { $0.providedBuffers = 4 }
        defer { _ = engine.drain() }
        let outcome = try EchoDriver.run(port: engine.listenPort, connections: 40, messages: 150, maxLength: 1000)
        #expect(outcome.mismatches == 0)
        #expect(outcome.closedEarly == 0)
        #expect(outcome.completedMessages == 40 * 150)
        #expect(engine.currentFrame().engine.closedByError == 0)
    }

    /// From a multishot receive on the small ring to one-shot receives into a large buffer
    /// (more arrives than the ring holds) and back once quiet, every byte in order.
    @Test func bulkTransferGrowsOutOfMultishotAndComesBack() throws {
        guard testedBackends.contains(.ioURing) else { return }
        let engine = try makeEngine(.ioURing, workers: 2) {
            $0.providedBuffers = 2048
            $0.statsPeriodMilliseconds = 50
        }
        defer { _ = engine.drain() }
        let clients = try (0..<6).map { _ in try connectClient(port: engine.listenPort) }
        defer { clients.forEach { close($0) } }
        var generator = SplitMix64(state: 9)
        let payload = (0..<65536).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        var back = [UInt8](repeating: 0, count: payload.count)
        /// Each client echoes 64 KiB, every byte checked. Right after an echo the connection
        /// usually holds a large buffer (the sweep takes one back only after a whole quiet
        /// second) — unless the ring kept up with every arrival (a loaded machine's timing):
        /// the bulk transfer is then repeated, at most 20 times, until one grew. Returns what
        /// went wrong, nil when nothing did.
        func echoUntilGrown() -> String? {
            var grew = false
            for _ in 0..<20 {
                for (index, client) in clients.enumerated() {
                    guard payload.withUnsafeBytes({ writeAll(client, $0) }) else { return "client \(index): write failed" }
                    let n = back.withUnsafeMutableBytes { readExactly(client, into: $0) }
                    guard n == payload.count else { return "client \(index): \(n) bytes back" }
                    guard back == payload else { return "client \(index): bytes differ" }
                    grew = grew || engine.largeBuffersLent >= 1
                }
                if grew { return nil }
            }
            return "no connection grew out of its small ring in 20 bulk transfers"
        }
        #expect(echoUntilGrown() == nil)
        #expect(eventually(within: 15) { engine.largeBuffersLent == 0 })
        #expect(echoUntilGrown() == nil)
        #expect(engine.currentFrame().engine.closedByError == 0)
    }
}
