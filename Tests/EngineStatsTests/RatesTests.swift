@testable import EngineStats
import Testing

@Suite struct RatesTests {
    func worker(slot: Int, id: Int, state: WorkerState = .running, running: UInt64, waiting: UInt64,
                blocked: UInt64 = 0, receives: UInt64 = 0, bytesIn: UInt64 = 0) -> WorkerSample {
        var sample = WorkerSample()
        sample.slot = slot
        sample.id = id
        sample.state = state
        sample.runningNs = running
        sample.waitingNs = waiting
        sample.blockedNs = blocked
        sample.counts.receives = receives
        sample.counts.bytesIn = bytesIn
        return sample
    }

    @Test func ratesAndBusyShareBetweenTwoFrames() {
        var a = StatsFrame()
        a.timestampNs = 10_000_000_000
        a.processCPUNs = 1_000_000_000
        a.workers = [worker(slot: 0, id: 0, running: 1_000_000_000, waiting: 1_000_000_000, receives: 100, bytesIn: 1_000),
                     worker(slot: 1, id: 1, running: 0, waiting: 2_000_000_000)]
        var b = a
        b.timestampNs = 12_000_000_000                      // two seconds later
        b.processCPUNs = 2_500_000_000                      // 1.5 s of CPU: 75 %
        b.workers[0] = worker(slot: 0, id: 0, running: 2_000_000_000, waiting: 1_500_000_000, blocked: 500_000_000,
                              receives: 4_100, bytesIn: 2_001_000)
        b.workers[1] = worker(slot: 1, id: 1, running: 0, waiting: 4_000_000_000)
        b.workers[1].lastCompletionNs = 11_000_000_000
        let rates = FrameRates(previous: a, current: b)
        #expect(rates.intervalSeconds == 2)
        #expect(rates.completionsPerSecond == 2_000)
        #expect(rates.bytesInPerSecond == 1_000_000)
        #expect(rates.processCPUPercent == 75)
        #expect(rates.workers[0].busyPercent == 75)          // 1.5 s busy (1 running + 0.5 blocked) of 2
        #expect(rates.workers[0].completionsPerSecond == 2_000)
        #expect(rates.workers[1].busyPercent == 0)
        #expect(rates.workers[1].sinceLastCompletionNs == 1_000_000_000)
        #expect(rates.workers[0].sinceLastCompletionNs == nil)
        #expect(rates.poolBusyPercent == 37.5)              // 1.5 s of 4 s
    }

    @Test func aReusedSlotIsANewWorkerNotADifference() {
        var a = StatsFrame()
        a.timestampNs = 1_000_000_000
        a.workers = [worker(slot: 0, id: 0, running: 900_000_000, waiting: 0, receives: 1_000_000)]
        var b = StatsFrame()
        b.timestampNs = 2_000_000_000
        b.workers = [worker(slot: 0, id: 5, running: 250_000_000, waiting: 750_000_000, receives: 10)]
        let rates = FrameRates(previous: a, current: b)
        #expect(rates.workers[0].id == 5)
        #expect(rates.workers[0].completionsPerSecond == 10, "counted from zero, not from worker 0's total")
        #expect(rates.workers[0].busyPercent == 25)
    }

    @Test func exitedWorkersLeaveThePoolShareAndSayHowLongAgo() {
        var a = StatsFrame()
        a.timestampNs = 0
        a.workers = [worker(slot: 0, id: 0, running: 0, waiting: 0), worker(slot: 1, id: 1, running: 0, waiting: 0)]
        var b = StatsFrame()
        b.timestampNs = 3_000_000_000
        b.workers = [worker(slot: 0, id: 0, state: .exited, running: 1_000_000_000, waiting: 0),
                     worker(slot: 1, id: 1, running: 1_000_000_000, waiting: 3_000_000_000)]
        b.workers[0].stateSinceNs = 1_000_000_000
        let rates = FrameRates(previous: a, current: b)
        #expect(rates.workers[0].exitedForNs == 2_000_000_000)
        #expect(rates.poolBusyPercent == 25)
        #expect(b.liveWorkers == 1 && b.workers(in: .exited) == 1)
    }

    @Test func historySeriesFollowTheFrames() {
        let frames = (0..<4).map { index -> StatsFrame in
            var frame = StatsFrame()
            frame.timestampNs = UInt64(index) * 500_000_000
            frame.retired.sends = UInt64(index * index) * 100   // 0, 100, 400, 900
            frame.retired.bytesOut = UInt64(index) * 1_000
            return frame
        }
        let history = RateHistory(frames: frames)
        #expect(history.completionsPerSecond == [200, 600, 1_000])
        #expect(history.bytesOutPerSecond == [2_000, 2_000, 2_000])
        #expect(RateHistory(frames: [frames[0]]).completionsPerSecond.isEmpty)
    }
}
