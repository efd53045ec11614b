@testable import EngineStats
import CIOURing
import Loopback
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct StatsSamplerTests {
    @Test func publishesOnePeriodicFrameAndStopsAtOnce() throws {
        let ring = StatsRing(capacity: 64, workerCapacity: 2)
        let calls = Atomic<Int>(0)
        let sampler = StatsSampler(ring: ring, periodNs: 50_000_000) { frame in
            frame.timestampNs = UInt64(CIOURing_now_ns())
            frame.uptimeNs = UInt64(calls.add(1, ordering: .relaxed).newValue)
            return true
        }
        try sampler.start()
        #expect(eventually { ring.newest >= 4 })
        let frames = ring.recent(64)
        #expect(frames.map(\.number) == Array(1...UInt64(frames.count)))
        #expect(zip(frames, frames.dropFirst()).allSatisfy { $0.timestampNs < $1.timestampNs })
        sampler.stop()

        // A minute's period: after the first frame, published at once, the sampler sleeps a
        // minute, and `stop` must wake it rather than wait it out.
        let slow = StatsSampler(ring: ring, periodNs: 60_000_000_000) { _ in true }
        let before = ring.newest
        try slow.start()
        #expect(eventually { ring.newest > before })
        let stopping = ContinuousClock.now
        slow.stop()
        #expect(ContinuousClock.now - stopping < .seconds(20), "stop wakes the sampler, it does not wait out the period")
    }

    @Test func nothingIsPublishedOnceStopReturns() throws {
        let ring = StatsRing(capacity: 64, workerCapacity: 2)
        let filling = Atomic<Bool>(false)
        // Each fill takes 100 ms, twice the period: `stop` lands in the middle of one.
        let sampler = StatsSampler(ring: ring, periodNs: 50_000_000) { frame in
            filling.store(true, ordering: .relaxed)
            usleep(100_000)
            frame.timestampNs = UInt64(CIOURing_now_ns())
            filling.store(false, ordering: .relaxed)
            return true
        }
        try sampler.start()
        // In the middle of a fill (not the first: one frame is out, so publishing works).
        #expect(eventually { ring.newest >= 1 && filling.load(ordering: .relaxed) })
        sampler.stop()
        let newest = ring.newest
        // Long enough for a fill in progress to publish, had `stop` not waited for it.
        usleep(300_000)
        #expect(ring.newest == newest, "nothing is published after stop returns")
    }

    @Test func periodIsClampedAndChangeable() {
        let sampler = StatsSampler(ring: StatsRing(capacity: 4, workerCapacity: 1), periodNs: 1) { _ in false }
        #expect(sampler.periodNs == 50_000_000)
        sampler.periodNs = 200_000_000
        #expect(sampler.periodNs == 200_000_000)
    }
}
