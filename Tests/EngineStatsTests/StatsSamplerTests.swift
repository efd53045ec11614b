@testable import EngineStats
import CIOURing
import Loopback
import Synchronization
import Testing

@Suite struct StatsSamplerTests {
    @Test func publishesOnePeriodicFrameAndStopsAtOnce() {
        let ring = StatsRing(capacity: 64, workerCapacity: 2)
        let calls = Atomic<Int>(0)
        let sampler = StatsSampler(ring: ring, periodNs: 50_000_000) { frame in
            frame.timestampNs = UInt64(CIOURing_now_ns())
            frame.uptimeNs = UInt64(calls.add(1, ordering: .relaxed).newValue)
            return true
        }
        sampler.start()
        #expect(eventually { ring.newest >= 4 })
        let stopping = ContinuousClock.now
        sampler.stop()
        #expect(ContinuousClock.now - stopping < .milliseconds(45), "stop wakes the sampler, it does not wait out the period")
        let frames = ring.recent(64)
        #expect(frames.map(\.number) == Array(1...UInt64(frames.count)))
        #expect(zip(frames, frames.dropFirst()).allSatisfy { $0.timestampNs < $1.timestampNs })
        let newest = ring.newest
        sampler.stop()
        #expect(ring.newest == newest, "nothing is published after stop")
    }

    @Test func periodIsClampedAndChangeable() {
        let sampler = StatsSampler(ring: StatsRing(capacity: 4, workerCapacity: 1), periodNs: 1) { _ in false }
        #expect(sampler.periodNs == 50_000_000)
        sampler.periodNs = 200_000_000
        #expect(sampler.periodNs == 200_000_000)
    }
}
