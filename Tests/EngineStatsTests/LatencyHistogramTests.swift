@testable import EngineStats
import Testing

@Suite struct LatencyHistogramTests {
    /// Every value from 1 µs to 17 s lands in a bucket whose bounds hold it, and the bucket's
    /// representative is within 6.25 % of it. Exhaustive at the bucket edges, and every value
    /// of the first octaves.
    @Test func everyValueFallsInsideItsBucket() {
        var values: [UInt64] = Array(0...70_000)
        for index in 0..<LatencyBuckets.count {
            let (lower, upper) = LatencyBuckets.bounds(index)
            values += [lower, upper &- 1]
            if upper != .max { values.append(lower + (upper - lower) / 2) }
        }
        values += [1 << 34, (1 << 34) + 1, 1 << 40, .max]
        for value in values {
            let index = LatencyBuckets.index(value)
            #expect(index >= 0 && index < LatencyBuckets.count)
            let (lower, upper) = LatencyBuckets.bounds(index)
            #expect(lower <= value && (value < upper || upper == .max), "\(value) in bucket \(index) [\(lower), \(upper))")
            if value >= 1024 && value < 1 << 34 {
                let error = abs(Double(LatencyBuckets.representative(index)) - Double(value)) / Double(value)
                #expect(error <= 0.0625 + 1e-9, "\(value): \(error)")
            }
        }
        // Buckets tile the line: each starts where the previous ends.
        for index in 1..<LatencyBuckets.count {
            #expect(LatencyBuckets.bounds(index).lower == LatencyBuckets.bounds(index - 1).upper)
        }
    }

    @Test func percentilesOfSyntheticHistograms() {
        var histogram = LatencyHistogram()
        #expect(histogram.percentile(0.5) == nil)
        for _ in 0..<900 { histogram.record(10_000) }      // 10 µs
        for _ in 0..<90 { histogram.record(1_000_000) }    // 1 ms
        for _ in 0..<10 { histogram.record(100_000_000) }  // 100 ms
        func near(_ value: UInt64?, _ expected: Double) -> Bool {
            guard let value else { return false }
            return abs(Double(value) - expected) / expected <= 0.0625
        }
        #expect(near(histogram.percentile(0.5), 10_000))
        #expect(near(histogram.percentile(0.9), 10_000))
        #expect(near(histogram.percentile(0.95), 1_000_000))
        #expect(near(histogram.percentile(0.99), 1_000_000))
        #expect(near(histogram.percentile(0.999), 100_000_000))
        #expect(histogram.total == 1000)
    }

    @Test func snapshotsDiffIntoTheInterval() {
        var before = LatencyHistogram()
        for _ in 0..<10 { before.record(5_000) }
        var after = before
        for _ in 0..<4 { after.record(2_000_000) }
        let interval = after.since(before)
        #expect(interval.total == 4)
        #expect(interval.percentile(0.5).map { $0 > 1_800_000 && $0 < 2_200_000 } == true)
        // A counter that went backwards (another worker in the slot) counts from zero.
        var fresh = LatencyHistogram()
        fresh.record(7_000)
        #expect(fresh.since(after).total == 1)
        // Prometheus-style cumulative buckets.
        let cumulative = after.cumulative(atOrBelow: [4_096, 8_192, 4_194_304, UInt64.max])
        #expect(cumulative == [0, 10, 14, 14])
    }
}

@Suite struct WarningTests {
    func frames(workers: Int = 4, configure: (inout StatsFrame, inout StatsFrame) -> Void) -> (StatsFrame, StatsFrame, FrameRates) {
        var first = StatsFrame()
        first.timestampNs = 10_000_000_000
        first.processCPUNs = 0
        first.port.concurrency = 2
        first.settings.onlineCPUs = 2
        first.workers = (0..<workers).map { index in
            var worker = WorkerSample()
            worker.id = index
            worker.slot = index
            worker.state = .waiting
            worker.stateSinceNs = first.timestampNs
            return worker
        }
        var second = first
        second.timestampNs = 11_000_000_000
        second.processCPUNs = 500_000_000
        for index in second.workers.indices { second.workers[index].stateSinceNs = second.timestampNs - 300_000_000 }
        configure(&first, &second)
        return (first, second, FrameRates(previous: first, current: second))
    }

    func waits(_ frame: inout StatsFrame, nanoseconds: UInt64, count: Int = 100) {
        for _ in 0..<count { frame.workers[0].queueWait.record(nanoseconds) }
    }

    @Test func aHealthyEngineRaisesNothing() {
        let (first, second, rates) = frames { _, second in
            self.waits(&second, nanoseconds: 50_000)
            second.port.runningThreads = 2
            second.workers[0].state = .running
            second.engine.accepted = 100
        }
        #expect(Warnings.evaluate(previous: first, current: second, rates: rates).isEmpty)
        // A few slow packets are not a saturated pool.
        let (a, b, r) = frames { _, second in self.waits(&second, nanoseconds: 50_000_000, count: 5) }
        #expect(Warnings.evaluate(previous: a, current: b, rates: r).isEmpty)
    }

    @Test func blockedWorkersWithWaitingPacketsSayPlus() {
        let (first, second, rates) = frames { _, second in
            for index in second.workers.indices { second.workers[index].state = .blocked }
            second.port.queueDepth = 48
            second.port.queueOldestMicroseconds = 210_000
            // The packets that did start waited little: the figure to quote is what waits now.
            self.waits(&second, nanoseconds: 15_000)
        }
        let warnings = Warnings.evaluate(previous: first, current: second, rates: rates)
        #expect(warnings.map(\.kind) == [.workersBlocked])
        #expect(warnings.first?.message == "all 4 workers blocked, 48 queued, oldest 210 ms: press + to add a worker")
        // Blocked but nothing waits: quiet.
        let (a, b, r) = frames { _, second in
            for index in second.workers.indices { second.workers[index].state = .blocked }
        }
        #expect(Warnings.evaluate(previous: a, current: b, rates: r).isEmpty)
    }

    @Test func aStallStillQueuedIsALongWait() {
        // Nothing started in the interval waited long, but the oldest packet still queued is
        // 40 ms old, with the running threads at the limit and CPU left: raise the limit.
        let (first, second, rates) = frames { _, second in
            self.waits(&second, nanoseconds: 20_000)
            second.port.runningThreads = 2
            second.port.queueDepth = 12
            second.port.queueOldestMicroseconds = 40_000
        }
        let warnings = Warnings.evaluate(previous: first, current: second, rates: rates)
        #expect(warnings.map(\.kind) == [.raiseConcurrency])
        #expect(warnings.first?.message.hasPrefix("12 queued, oldest 40.0 ms with 2/2 running") == true, "\(warnings.first?.message ?? "")")
    }

    @Test func longWaitsAtTheLimitWithCPULeftSayC() {
        let (first, second, rates) = frames { _, second in
            self.waits(&second, nanoseconds: 40_000_000)
            second.port.runningThreads = 2
        }
        let warnings = Warnings.evaluate(previous: first, current: second, rates: rates)
        #expect(warnings.map(\.kind) == [.raiseConcurrency])
        #expect(warnings.first?.message.contains("press C") == true)
        // Every CPU busy: raising the limit would not help.
        let (a, b, r) = frames { _, second in
            self.waits(&second, nanoseconds: 40_000_000)
            second.port.runningThreads = 2
            second.processCPUNs = 1_900_000_000
        }
        #expect(Warnings.evaluate(previous: a, current: b, rates: r).isEmpty)
        // Below the limit: the wait has another cause.
        let (c, d, s) = frames { _, second in self.waits(&second, nanoseconds: 40_000_000) }
        #expect(Warnings.evaluate(previous: c, current: d, rates: s).isEmpty)
    }

    @Test func stuckWorkersAcceptFailuresAndRefusals() {
        let (first, second, rates) = frames { first, second in
            second.workers[1].state = .running
            second.workers[1].stateSinceNs = second.timestampNs - 2_500_000_000
            first.engine.acceptErrors = 3
            second.engine.acceptErrors = 5
            second.engine.refused = 7
        }
        let kinds = Warnings.evaluate(previous: first, current: second, rates: rates).map(\.kind)
        #expect(kinds == [.stuckWorker, .acceptFailing, .connectionsRefused])
    }
}
