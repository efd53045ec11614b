@testable import EngineStats
import Synchronization
import Testing

@Suite struct WorkerSlotsTests {
    @Test func slotsAreCacheLineSeparated() throws {
        let slots = WorkerSlots(capacity: 4)
        let a = try #require(slots.claim(workerID: 0, now: 1))
        let b = try #require(slots.claim(workerID: 1, now: 1))
        let distance = abs(UnsafeRawPointer(b.words) - UnsafeRawPointer(a.words))
        #expect(distance >= 128)
        #expect(Int(bitPattern: UnsafeRawPointer(a.words)) % 128 == 0)
    }

    @Test func countersAndStatesAreSampled() throws {
        let slots = WorkerSlots(capacity: 4)
        let slot = try #require(slots.claim(workerID: 7, now: 1_000))
        slot.countAccept()
        slot.countReceiveCompletion()
        slot.countBytesIn(100)
        slot.countSendCompletion()
        slot.countBytesOut(60)
        slot.countPosted()
        slot.enter(.running, at: 1_500)   // waited 500
        slot.enter(.blocked, at: 1_800)   // ran 300
        slot.enter(.running, at: 2_000)   // blocked 200
        var workers: [WorkerSample] = []
        _ = slots.sample(into: &workers, now: 2_400) // running 400 more, so far
        let worker = try #require(workers.first)
        #expect(workers.count == 1)
        #expect(worker.id == 7 && worker.slot == slot.index && worker.state == .running)
        #expect(worker.counts.completions == 4)
        #expect(worker.counts.bytesIn == 100 && worker.counts.bytesOut == 60)
        #expect(worker.waitingNs == 500 && worker.runningNs == 700 && worker.blockedNs == 200)
        #expect(worker.lastCompletionNs == 1_500, "only a return from waiting is a dequeue")
    }

    @Test func anExitedSlotIsReusedLastAndItsCountsKept() throws {
        let slots = WorkerSlots(capacity: 3)
        let first = try #require(slots.claim(workerID: 0, now: 10))
        let second = try #require(slots.claim(workerID: 1, now: 10))
        for _ in 0..<5 { first.countReceiveCompletion() }
        first.countBytesIn(1234)
        second.countSendCompletion()
        first.recordQueueWait(5_000)
        first.recordQueueWait(5_000)
        first.recordService(2_000_000)
        first.enter(.exited, at: 20)
        // An unused slot is taken before the exited one, which stays visible.
        let third = try #require(slots.claim(workerID: 2, now: 30))
        #expect(third.index != first.index)
        var workers: [WorkerSample] = []
        #expect(slots.sample(into: &workers, now: 40) == RetiredWork())
        #expect(workers[0].queueWait.total == 2 && workers[0].service.total == 1)
        #expect(workers[0].queueWait.percentile(0.5).map { abs(Int($0) - 5_000) <= 5_000 / 16 } == true)
        #expect(workers.map(\.id) == [0, 1, 2])
        #expect(workers[0].state == .exited && workers[0].counts.receives == 5)
        // Full now, but for the exited slot: it is reused, its counts move to `retired`.
        let before = slots.totals()
        let fourth = try #require(slots.claim(workerID: 3, now: 50))
        #expect(fourth.index == first.index)
        #expect(slots.claim(workerID: 4, now: 60) == nil, "every slot holds a live worker")
        let retired = slots.sample(into: &workers, now: 70)
        #expect(retired.counts.receives == 5 && retired.counts.bytesIn == 1234)
        #expect(retired.queueWait.total == 2 && retired.service.total == 1, "histograms fold into retired too")
        #expect(slots.totals() == before, "totals never go backwards")
        let reused = try #require(workers.first { $0.slot == fourth.index })
        #expect(reused.id == 3 && reused.state == .waiting && reused.counts == WorkerCounts())
        #expect(reused.queueWait.total == 0 && reused.service.total == 0, "a reused slot starts from zero")
    }

    /// A worker changes state as fast as it can while a reader samples: every sample's time
    /// fields must come from one transition. Each transition adds exactly the time since the
    /// previous one, so running + waiting + blocked == stateSince − start, always.
    @Test func timeFieldsAreNeverMixedAcrossTransitions() throws {
        let slots = WorkerSlots(capacity: 2)
        let slot = try #require(slots.claim(workerID: 0, now: 1_000))
        let done = Atomic<Bool>(false)
        // The writer keeps changing state until the reader has sampled enough (or a bound):
        // the two always overlap, however slow or loaded the machine.
        let sampled = Atomic<Int>(0)
        let writer = TestThread {
            var now: UInt64 = 1_000
            let states: [WorkerState] = [.running, .blocked, .running, .waiting]
            var step = 0
            while step < 400_000 || (sampled.load(ordering: .relaxed) < 500 && step < 100_000_000) {
                now += UInt64(step % 7 + 1)
                slot.enter(states[step % states.count], at: now)
                step += 1
            }
            done.store(true, ordering: .releasing)
        }
        var workers: [WorkerSample] = []
        var samples = 0, mixed = 0
        while !done.load(ordering: .acquiring) {
            _ = slots.sample(into: &workers, now: 0) // now 0: no time in progress is added
            let worker = workers[0]
            if worker.runningNs + worker.waitingNs + worker.blockedNs != worker.stateSinceNs - 1_000 { mixed += 1 }
            samples += 1
            sampled.store(samples, ordering: .relaxed)
        }
        writer.join()
        #expect(mixed == 0)
        #expect(samples >= 500)
    }
}
