@testable import EngineStats
import Synchronization
import Testing

/// A frame whose every field is a function of `seed`: a reader that gets a mix of two frames
/// (a torn read) finds a field that disagrees with the others.
func coupledFrame(seed: UInt64, workers: Int) -> StatsFrame {
    var frame = StatsFrame()
    frame.timestampNs = seed
    frame.uptimeNs = seed &* 3
    frame.processCPUNs = seed &* 5
    frame.port.queueDepth = Int(seed % 1000)
    frame.port.runningThreads = Int(seed % 7)
    frame.port.concurrency = Int(seed % 11)
    frame.port.parkedThreads = Int(seed % 13)
    frame.port.pendingOperations = Int(seed % 17)
    frame.engine.openConnections = Int(seed % 19)
    frame.engine.peakConnections = Int(seed % 23)
    frame.engine.accepted = seed &* 7
    frame.engine.refused = seed &* 9
    frame.engine.closedByError = seed &* 11
    frame.engine.acceptErrors = seed &* 13
    frame.engine.draining = seed % 2 == 0
    frame.engine.drained = seed % 3 == 0
    frame.retired.accepts = seed &+ 1
    frame.retired.receives = seed &+ 2
    frame.retired.sends = seed &+ 3
    frame.retired.posted = seed &+ 4
    frame.retired.bytesIn = seed &+ 5
    frame.retired.bytesOut = seed &+ 6
    for index in 0..<workers {
        let base = seed &* 1000 &+ UInt64(index) &* 16
        var worker = WorkerSample()
        worker.slot = index
        worker.id = Int(base % 100_000)
        worker.state = WorkerState(rawValue: base % 5)!
        worker.counts.accepts = base &+ 1
        worker.counts.receives = base &+ 2
        worker.counts.sends = base &+ 3
        worker.counts.posted = base &+ 4
        worker.counts.bytesIn = base &+ 5
        worker.counts.bytesOut = base &+ 6
        worker.runningNs = base &+ 7
        worker.waitingNs = base &+ 8
        worker.blockedNs = base &+ 9
        worker.lastCompletionNs = base &+ 10
        worker.stateSinceNs = base &+ 11
        worker.pending = Int(base % 1009)
        worker.connections = Int(base % 1013)
        worker.cpuNs = base &+ 12
        frame.workers.append(worker)
    }
    return frame
}

/// The frame a writer publishes as frame `number` in these tests.
func expectedFrame(number: UInt64) -> StatsFrame {
    var frame = coupledFrame(seed: number &* 2654435761, workers: Int(number % 9))
    frame.number = number
    return frame
}

@Suite struct StatsRingTests {
    @Test func framesComeBackAsPublished() {
        let ring = StatsRing(capacity: 8, workerCapacity: 8)
        #expect(ring.latest() == nil)
        for number in 1...5 as ClosedRange<UInt64> {
            #expect(ring.publish(expectedFrame(number: number)) == number)
        }
        #expect(ring.newest == 5)
        #expect(ring.oldest == 1)
        #expect(ring.latest() == expectedFrame(number: 5))
        var reader = ring.reader()
        var frame = StatsFrame()
        for number in 1...5 as ClosedRange<UInt64> {
            let got = reader.next(into: &frame)
            #expect(got && frame == expectedFrame(number: number))
        }
        let more = reader.next(into: &frame)
        #expect(!more, "a caught-up reader gets nothing")
        #expect(reader.missed == 0)
    }

    @Test func wrapAroundKeepsTheNewestCapacityFrames() {
        let ring = StatsRing(capacity: 16, workerCapacity: 8)
        for number in 1...50 as ClosedRange<UInt64> { ring.publish(expectedFrame(number: number)) }
        #expect(ring.newest == 50)
        #expect(ring.oldest == 35)
        var frame = StatsFrame()
        let overwritten = ring.read(34, into: &frame)
        #expect(!overwritten)
        let unpublished = ring.read(51, into: &frame)
        #expect(!unpublished)
        let held = ring.read(35, into: &frame)
        #expect(held && frame == expectedFrame(number: 35))
        let recent = ring.recent(5)
        #expect(recent.map(\.number) == [46, 47, 48, 49, 50])
        #expect(ring.recent(100).map(\.number) == Array(35...50))
        #expect(recent.allSatisfy { $0 == expectedFrame(number: $0.number) })
    }

    @Test func aSlowReaderResynchronisesAndCountsWhatItMissed() {
        let ring = StatsRing(capacity: 16, workerCapacity: 8)
        for number in 1...5 as ClosedRange<UInt64> { ring.publish(expectedFrame(number: number)) }
        var reader = ring.reader()
        var frame = StatsFrame()
        var got = reader.next(into: &frame)
        #expect(got && frame.number == 1)
        got = reader.next(into: &frame)
        #expect(got && frame.number == 2)
        for number in 6...45 as ClosedRange<UInt64> { ring.publish(expectedFrame(number: number)) }
        // Frames 3…29 are gone; the reader lands on a frame still held and goes on in order.
        got = reader.next(into: &frame)
        #expect(got)
        let resumed = frame.number
        #expect(resumed >= 30 && resumed <= 45)
        #expect(frame == expectedFrame(number: resumed))
        #expect(reader.missed == resumed - 3)
        var expected = resumed + 1
        while reader.next(into: &frame) {
            #expect(frame.number == expected)
            expected += 1
        }
        #expect(expected == 46)
    }

    @Test func workersBeyondCapacityAreLeftOut() {
        let ring = StatsRing(capacity: 4, workerCapacity: 3)
        ring.publish(coupledFrame(seed: 9, workers: 8))
        #expect(ring.latest()?.workers.count == 3)
    }

    /// One writer laps a small ring as fast as it can while readers copy frames; every frame
    /// a reader accepts must be exactly the frame of its number (180+ fields coupled by seed).
    @Test func readersNeverSeeATornFrame() {
        let ring = StatsRing(capacity: 3, workerCapacity: 8)
        let frames: UInt64 = 150_000
        let done = Atomic<Bool>(false)
        let checked = Atomic<Int>(0)
        let torn = Atomic<Int>(0)
        // Reader 0 takes the newest frame, reader 1 every frame in order, readers 2 and 3 the
        // oldest frame held: the entry the writer overwrites next, where tearing happens.
        let readers = (0..<4).map { index in
            TestThread {
                var reader = ring.reader()
                var frame = StatsFrame()
                var local = 0, bad = 0
                while true {
                    let finished = done.load(ordering: .acquiring)
                    let got: Bool
                    switch index {
                    case 0: got = ring.latest().map { frame = $0; return true } ?? false
                    case 1: got = reader.next(into: &frame)
                    default: got = ring.read(ring.oldest, into: &frame)
                    }
                    if got {
                        local += 1
                        if frame != expectedFrame(number: frame.number) { bad += 1 }
                    }
                    if finished && (index != 1 || !got) { break }
                }
                checked.add(local, ordering: .relaxed)
                torn.add(bad, ordering: .relaxed)
            }
        }
        for number in 1...frames { ring.publish(expectedFrame(number: number)) }
        done.store(true, ordering: .releasing)
        for reader in readers { reader.join() }
        #expect(torn.load(ordering: .relaxed) == 0)
        #expect(checked.load(ordering: .relaxed) > 1000, "readers raced the writer")
    }
}
