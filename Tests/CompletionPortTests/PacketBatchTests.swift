@testable import CompletionPort
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `PacketBatch`: a thread that blocks, gives back or dequeues again hands the packets it has not
/// started back to the head of the port's FIFO, in order, with their queue stamps.
@Suite struct PacketBatchTests {
    /// The rest of a batch must not wait behind a blocked thread while another thread waits:
    /// without the give-back, the other thread gets nothing until the block ends, and the
    /// blocked thread's deadline passes with nothing taken.
    @Test(arguments: availableBackends)
    func blockedThreadGivesItsUnstartedPacketsToAWaitingThread(backend: BackendChoice) throws {
        let port = try CompletionPort(concurrency: 2, backend: backend)
        for i in 0..<5 { try port.post(key: 1, context: UInt64(i)) }
        let taken = Mutex<[UInt64]>([])
        let holderReady = Atomic<Bool>(false)
        let finished = Atomic<Bool>(false)
        let holderRest = Atomic<Int>(-1)
        let startedFirst = Atomic<Int>(-1)
        let holder = TestThread {
            let batch = PacketBatch(capacity: 8)
            guard case .completions(5) = port.dequeue(into: batch, timeout: .seconds(10)) else { return }
            holderReady.store(true, ordering: .sequentiallyConsistent)
            startedFirst.store(batch.next().map { Int($0.context) } ?? -1, ordering: .sequentiallyConsistent)
            // Block until the other thread has served the rest, or give up after 10 s.
            port.blocking {
                _ = eventually { taken.withLock { $0.count } == 4 }
            }
            holderRest.store(batch.unstarted, ordering: .sequentiallyConsistent)
            #expect(batch.next() == nil)
        }
        #expect(eventually { holderReady.load(ordering: .sequentiallyConsistent) })
        let other = TestThread {
            let batch = PacketBatch(capacity: 8)
            while !finished.load(ordering: .sequentiallyConsistent) {
                guard case .completions = port.dequeue(into: batch, timeout: .milliseconds(50)) else { continue }
                while let packet = batch.next() { taken.withLock { $0.append(packet.context) } }
            }
        }
        holder.join()
        finished.store(true, ordering: .sequentiallyConsistent)
        other.join()
        #expect(startedFirst.load(ordering: .sequentiallyConsistent) == 0)
        #expect(holderRest.load(ordering: .sequentiallyConsistent) == 0)
        #expect(taken.withLock { $0 } == [1, 2, 3, 4])
    }

    /// Given-back packets go in front of packets queued after them, in their own order, with
    /// the stamp they entered the FIFO with.
    @Test(arguments: availableBackends)
    func givenBackPacketsKeepTheirOrderAheadOfLaterOnes(backend: BackendChoice) throws {
        let port = try CompletionPort(concurrency: 1, backend: backend)
        for i in 0..<3 { try port.post(key: 1, context: UInt64(i)) }
        let batch = PacketBatch(capacity: 3)
        #expect(port.dequeue(into: batch, timeout: .seconds(5)) == .completions(3))
        #expect(port.queueDepth == 0)
        #expect(port.oldestQueuedAtNs == 0)
        let first = try #require(batch.next())
        #expect(first.context == 0)
        let stamps = batch.storage[1..<3].map(\.queuedAtNs)
        try port.post(key: 1, context: 3)
        try port.post(key: 1, context: 4)
        port.blocking {}
        #expect(batch.unstarted == 0)
        #expect(batch.next() == nil)
        #expect(port.queueDepth == 4)
        #expect(port.oldestQueuedAtNs == stamps[0])
        var seen: [UInt64] = [], seenStamps: [Int64] = []
        while seen.count < 4 {
            guard case .completions = port.dequeue(into: batch, timeout: .seconds(5)) else {
                Issue.record("the given-back packets were lost")
                return
            }
            while let packet = batch.next() {
                seen.append(packet.context)
                seenStamps.append(packet.queuedAtNs)
            }
        }
        #expect(seen == [1, 2, 3, 4])
        #expect(Array(seenStamps[0..<2]) == stamps)
        #expect(port.queueDepth == 0 && port.oldestQueuedAtNs == 0)
    }

    /// `giveBack` and a new dequeue return the unstarted rest, nothing else.
    @Test(arguments: availableBackends)
    func giveBackAndDequeueAgainReturnOnlyTheUnstartedRest(backend: BackendChoice) throws {
        let port = try CompletionPort(concurrency: 1, backend: backend)
        for i in 0..<6 { try port.post(key: 1, context: UInt64(i)) }
        let batch = PacketBatch(capacity: 4)
        #expect(port.dequeue(into: batch, timeout: .seconds(5)) == .completions(4))
        #expect(batch.next()?.context == 0)
        #expect(batch.next()?.context == 1)
        port.giveBack(batch)
        #expect(batch.next() == nil)
        #expect(port.queueDepth == 4)
        // Dequeue again with one packet started and one not: the unstarted one comes back first.
        #expect(port.dequeue(into: batch, timeout: .seconds(5)) == .completions(4))
        #expect(batch.next()?.context == 2)
        #expect(port.dequeue(into: batch, timeout: .seconds(5)) == .completions(3))
        var rest: [UInt64] = []
        while let packet = batch.next() { rest.append(packet.context) }
        #expect(rest == [3, 4, 5])
        port.giveBack(batch)  // nothing left: no change
        #expect(port.queueDepth == 0)
        #expect(port.dequeue(into: batch, timeout: .milliseconds(5)) == .timeout)
    }

    /// The oldest-packet stamp follows the head of the FIFO.
    @Test(arguments: availableBackends)
    func oldestQueuedStampIsTheHeads(backend: BackendChoice) throws {
        let port = try CompletionPort(concurrency: 1, backend: backend)
        #expect(port.oldestQueuedAtNs == 0)
        try port.post(key: 1, context: 0)
        let firstStamp = port.oldestQueuedAtNs
        #expect(firstStamp > 0)
        usleep(1000)
        try port.post(key: 1, context: 1)
        #expect(port.oldestQueuedAtNs == firstStamp)
        let packet = try expectCompletion(port)
        #expect(packet.queuedAtNs == firstStamp)
        #expect(port.oldestQueuedAtNs > firstStamp)
        _ = try expectCompletion(port)
        #expect(port.oldestQueuedAtNs == 0)
    }
}
