@testable import CompletionPort
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Scheduling semantics with posted packets: FIFO, LIFO release, the gate, blocking scopes,
/// timeouts, close. Every test runs on each available backend.
@Suite struct PostedPacketTests {
    @Test(arguments: availableBackends)
    func postedPacketsLeaveInFIFOOrder(backend: BackendChoice) throws {
        let port = try CompletionPort(concurrency: 1, backend: backend)
        for i in 0..<1000 { try port.post(bytes: Int32(i), key: 7, context: UInt64(i)) }
        #expect(port.queueDepth == 1000)
        for i in 0..<1000 {
            let packet = try expectCompletion(port)
            #expect(packet.operation == .posted)
            #expect(packet.context == UInt64(i))
            #expect(packet.bytes == i)
            #expect(packet.key == 7)
        }
        #expect(port.dequeue(timeout: .milliseconds(1)) == .timeout)
    }

    @Test(arguments: availableBackends)
    func batchDequeueTakesSeveralInOrder(backend: BackendChoice) throws {
        let port = try CompletionPort(concurrency: 1, backend: backend)
        for i in 0..<10 { try port.post(key: 1, context: UInt64(i)) }
        var buffer = [Completion](repeating: Completion(operation: .posted, result: 0, key: 0, context: 0), count: 4)
        var seen: [UInt64] = []
        while seen.count < 10 {
            let result = buffer.withUnsafeMutableBufferPointer { port.dequeue(into: $0, timeout: .seconds(5)) }
            guard case .completions(let n) = result else { Issue.record("got \(result)"); return }
            #expect(n <= 4)
            seen += buffer[0..<n].map(\.context)
        }
        #expect(seen == Array(0..<10))
    }

    @Test(arguments: availableBackends)
    func waitersAreReleasedLastInFirstOut(backend: BackendChoice) throws {
        let port = try CompletionPort(concurrency: 8, backend: backend)
        let order = Mutex<[Int]>([])
        var threads: [TestThread] = []
        for id in 0..<4 {
            threads.append(TestThread {
                if case .completion = port.dequeue(timeout: .seconds(20)) {
                    order.withLock { $0.append(id) }
                }
            })
            // Thread 0 becomes the leader (it waits in the kernel); the others park in order.
            if id == 0 {
                #expect(eventually { port.scheduler.leaderGauge.load(ordering: .relaxed) })
            } else {
                #expect(eventually { port.parkedThreads == id })
            }
        }
        for released in 1...4 {
            try port.post(key: 1)
            #expect(eventually { order.withLock { $0.count } == released })
        }
        threads.forEach { $0.join() }
        // Most recently parked first; the leader, the first to arrive, last.
        #expect(order.withLock { $0 } == [3, 2, 1, 0])
    }

    @Test(arguments: availableBackends)
    func gateCapsRunningThreads(backend: BackendChoice) throws {
        let port = try CompletionPort(concurrency: 2, backend: backend)
        let active = Atomic<Int>(0)
        let maximum = Atomic<Int>(0)
        let handled = Atomic<Int>(0)
        let packets = 4000
        let threads = (0..<8).map { _ in
            TestThread {
                while case .completion = port.dequeue(timeout: .seconds(20)) {
                    let now = active.add(1, ordering: .sequentiallyConsistent).newValue
                    maximum.max(now, ordering: .sequentiallyConsistent)
                    #expect(port.runningThreads <= 2)
                    // Hold the packet a little so threads overlap.
                    let spinUntil = ContinuousClock.now + .microseconds(20)
                    while ContinuousClock.now < spinUntil {}
                    active.subtract(1, ordering: .sequentiallyConsistent)
                    if handled.add(1, ordering: .sequentiallyConsistent).newValue == packets { port.close() }
                }
            }
        }
        for i in 0..<packets { try port.post(key: 1, context: UInt64(i)) }
        threads.forEach { $0.join() }
        #expect(handled.load(ordering: .sequentiallyConsistent) == packets)
        #expect(maximum.load(ordering: .sequentiallyConsistent) <= 2)
        #expect(maximum.load(ordering: .sequentiallyConsistent) == 2)
    }

    @Test(arguments: availableBackends)
    func blockingScopeLetsAnotherWaiterRun(backend: BackendChoice) throws {
        let port = try CompletionPort(concurrency: 1, backend: backend)
        let secondTaken = Atomic<Bool>(false)
        let firstInScope = Atomic<Bool>(false)
        let holder = TestThread {
            guard case .completion = port.dequeue(timeout: .seconds(20)) else { return }
            port.blocking {
                firstInScope.store(true, ordering: .sequentiallyConsistent)
                _ = eventually { secondTaken.load(ordering: .sequentiallyConsistent) }
            }
        }
        try port.post(key: 1)
        #expect(eventually { firstInScope.load(ordering: .sequentiallyConsistent) })
        let other = TestThread {
            if case .completion = port.dequeue(timeout: .seconds(20)) {
                secondTaken.store(true, ordering: .sequentiallyConsistent)
            }
        }
        try port.post(key: 2)
        #expect(eventually { secondTaken.load(ordering: .sequentiallyConsistent) })
        holder.join()
        other.join()
    }

    @Test(arguments: availableBackends)
    func withoutBlockingScopeTheSurplusWaiterStaysParked(backend: BackendChoice) throws {
        let port = try CompletionPort(concurrency: 1, backend: backend)
        let release = Atomic<Bool>(false)
        let holding = Atomic<Bool>(false)
        let holder = TestThread {
            guard case .completion = port.dequeue(timeout: .seconds(20)) else { return }
            holding.store(true, ordering: .sequentiallyConsistent)
            _ = eventually { release.load(ordering: .sequentiallyConsistent) }
            // The thread exits while counted as running: its place goes to the parked thread.
        }
        try port.post(key: 1)
        #expect(eventually { holding.load(ordering: .sequentiallyConsistent) })
        let taken = Atomic<Bool>(false)
        let other = TestThread {
            if case .completion = port.dequeue(timeout: .seconds(20)) { taken.store(true, ordering: .sequentiallyConsistent) }
        }
        try port.post(key: 2)
        // The packet is queued, the other thread is parked, and the gate is full.
        #expect(eventually { port.parkedThreads == 1 && port.queueDepth == 1 })
        #expect(taken.load(ordering: .sequentiallyConsistent) == false)
        release.store(true, ordering: .sequentiallyConsistent)
        #expect(eventually { taken.load(ordering: .sequentiallyConsistent) })
        holder.join()
        other.join()
    }

    @Test(arguments: availableBackends)
    func raisingConcurrencyReleasesParkedThreads(backend: BackendChoice) throws {
        let port = try CompletionPort(concurrency: 1, backend: backend)
        let release = Atomic<Bool>(false)
        let holder = TestThread {
            guard case .completion = port.dequeue(timeout: .seconds(20)) else { return }
            _ = eventually { release.load(ordering: .sequentiallyConsistent) }
        }
        try port.post(key: 1)
        #expect(eventually { port.runningThreads == 1 })
        let taken = Atomic<Bool>(false)
        let other = TestThread {
            if case .completion = port.dequeue(timeout: .seconds(20)) { taken.store(true, ordering: .sequentiallyConsistent) }
        }
        try port.post(key: 2)
        #expect(eventually { port.parkedThreads == 1 && port.queueDepth == 1 })
        try port.setConcurrency(2)
        #expect(port.concurrency == 2)
        #expect(eventually { taken.load(ordering: .sequentiallyConsistent) })
        release.store(true, ordering: .sequentiallyConsistent)
        holder.join()
        other.join()
    }

    @Test(arguments: availableBackends)
    func timeoutIsHonoured(backend: BackendChoice) throws {
        let port = try CompletionPort(backend: backend)
        let clock = ContinuousClock()
        let started = clock.now
        #expect(port.dequeue(timeout: .milliseconds(60)) == .timeout)
        let elapsed = clock.now - started
        #expect(elapsed >= .milliseconds(60))
        #expect(elapsed < .seconds(5))
        // A parked (non-leader) waiter times out too.
        let leader = TestThread { _ = port.dequeue(timeout: .milliseconds(400)) }
        #expect(eventually { port.scheduler.leaderGauge.load(ordering: .relaxed) })
        let second = clock.now
        #expect(port.dequeue(timeout: .milliseconds(50)) == .timeout)
        #expect(clock.now - second >= .milliseconds(50))
        leader.join()
    }

    @Test(arguments: availableBackends)
    func closeWakesEveryWaiter(backend: BackendChoice) throws {
        let port = try CompletionPort(concurrency: 2, backend: backend)
        let closed = Atomic<Int>(0)
        let threads = (0..<6).map { _ in
            TestThread {
                if port.dequeue() == .portClosed { closed.add(1, ordering: .relaxed) }
            }
        }
        #expect(eventually { port.parkedThreads == 5 })
        port.close()
        threads.forEach { $0.join() }
        #expect(closed.load(ordering: .relaxed) == 6)
        #expect(throws: PortError.portClosed) { try port.post(key: 1) }
        #expect(port.dequeue(timeout: .seconds(1)) == .portClosed)
    }

    @Test(arguments: availableBackends)
    func closeDeliversQueuedPacketsFirst(backend: BackendChoice) throws {
        let port = try CompletionPort(backend: backend)
        for i in 0..<5 { try port.post(key: 1, context: UInt64(i)) }
        port.close()
        for i in 0..<5 { #expect(try expectCompletion(port).context == UInt64(i)) }
        #expect(port.dequeue(timeout: .seconds(1)) == .portClosed)
    }

    @Test(arguments: availableBackends)
    func eachPacketExactlyOnce(backend: BackendChoice) throws {
        let port = try CompletionPort(concurrency: 0, backend: backend)
        let perThread = 100_000
        let threadCount = 4
        let total = perThread * threadCount
        let seen = UnsafeMutablePointer<Atomic<UInt8>>.allocate(capacity: total)
        for i in 0..<total { (seen + i).initialize(to: Atomic(0)) }
        defer { seen.deallocate() }
        nonisolated(unsafe) let seenTable = seen
        let duplicates = Atomic<Int>(0)
        let received = Atomic<Int>(0)
        let consumers = (0..<threadCount).map { _ in
            TestThread {
                var buffer = [Completion](repeating: .init(operation: .posted, result: 0, key: 0, context: 0), count: 16)
                while true {
                    let result = buffer.withUnsafeMutableBufferPointer { port.dequeue(into: $0, timeout: .seconds(30)) }
                    guard case .completions(let n) = result else { return }
                    for packet in buffer[0..<n] {
                        let index = Int(packet.key) * perThread + Int(packet.context)
                        if seenTable[index].add(1, ordering: .relaxed).newValue != 1 { duplicates.add(1, ordering: .relaxed) }
                    }
                    if received.add(n, ordering: .relaxed).newValue == perThread * threadCount { port.close() }
                }
            }
        }
        let producers = (0..<threadCount).map { producer in
            TestThread {
                for i in 0..<perThread { try? port.post(key: UInt64(producer), context: UInt64(i)) }
            }
        }
        producers.forEach { $0.join() }
        consumers.forEach { $0.join() }
        #expect(received.load(ordering: .relaxed) == perThread * threadCount)
        #expect(duplicates.load(ordering: .relaxed) == 0)
        #expect((0..<total).allSatisfy { seen[$0].load(ordering: .relaxed) == 1 })
    }

    @Test func invalidArgumentsAreErrorsNotTraps() throws {
        #expect(throws: PortError.self) { try CompletionPort(concurrency: -1) }
        let port = try CompletionPort(backend: .epoll)
        #expect(throws: PortError.self) { try port.setConcurrency(-3) }
        #expect(throws: PortError.notAssociated(12345)) {
            try port.receive(on: 12345, into: UnsafeMutableRawBufferPointer.allocate(byteCount: 8, alignment: 1), context: 0)
        }
    }

    @Test func autoReportsItsChoice() throws {
        let port = try CompletionPort(backend: .auto)
        if availableBackends.contains(.ioURing) {
            #expect(port.backend == .ioURing)
            #expect(port.fallbackReason == nil)
        } else {
            #expect(port.backend == .epoll)
            #expect(port.fallbackReason != nil)
        }
    }
}
