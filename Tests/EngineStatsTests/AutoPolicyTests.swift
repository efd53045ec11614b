@testable import EngineStats
import Testing

/// Auto mode's policy on synthetic frame sequences: what it does, and what it refrains from.
@Suite struct AutoPolicyTests {
    /// A pool to simulate: workers by state, the port's gauges, and the rates of one interval.
    struct Pool {
        var live: Int
        var concurrency = 2
        var blocked = 0
        var running = 0
        var queueDepth = 0
        var queueOldestMicroseconds = 0
        var waitP99Ns: UInt64 = 50_000
        var rate = 1000.0
        /// Workers (by index) that dequeue nothing.
        var idle: Set<Int> = []
    }

    /// Feeds `seconds` of frames (every `periodNs`) to a policy, applying its decisions to the
    /// pool; `shape` sets the pool's state before each frame. Returns the decisions.
    func run(seconds: Int, periodNs: UInt64 = 500_000_000, start: Pool, maxWorkers: Int = 256,
             shape: (inout Pool, Int) -> Void = { _, _ in }) -> (decisions: [AutoSample], pool: Pool) {
        var policy = AutoPolicy(maxWorkers: maxWorkers)
        var pool = start
        var decisions: [AutoSample] = []
        var totals = [UInt64](repeating: 0, count: 256)
        let steps = Int(UInt64(seconds) * 1_000_000_000 / periodNs)
        for step in 1...steps {
            shape(&pool, step)
            let now = UInt64(step) * periodNs + 1_000_000_000
            var frame = StatsFrame()
            frame.number = UInt64(step)
            frame.timestampNs = now
            frame.port.concurrency = pool.concurrency
            frame.port.queueDepth = pool.queueDepth
            frame.port.queueOldestMicroseconds = pool.queueOldestMicroseconds
            let blocked = min(pool.blocked, pool.live)
            let running = min(pool.running, pool.live - blocked)
            frame.port.runningThreads = running
            frame.workers = (0..<pool.live).map { index in
                var worker = WorkerSample()
                worker.id = index
                worker.slot = index
                worker.state = index < blocked ? .blocked : index < blocked + running ? .running : .waiting
                worker.stateSinceNs = now - 1_000_000
                if !pool.idle.contains(index) { totals[index] += 10 }
                worker.counts.receives = totals[index]
                return worker
            }
            var rates = FrameRates()
            rates.intervalSeconds = Double(periodNs) / 1e9
            rates.completionsPerSecond = pool.rate
            var histogram = LatencyHistogram()
            for _ in 0..<100 { histogram.record(pool.waitP99Ns) }
            rates.queueWait = Percentiles(histogram)
            guard let decision = policy.decide(frame: frame, rates: rates) else { continue }
            decisions.append(decision)
            pool.live += decision.action == .add ? 1 : -1
        }
        return (decisions, pool)
    }

    @Test func starvationAddsWorkersAtTheBoundedRate() {
        // Every worker blocked, packets queued: one worker per 500 ms, frames every 100 ms.
        let (decisions, pool) = run(seconds: 5, periodNs: 100_000_000, start: Pool(live: 2)) { pool, _ in
            pool.blocked = pool.live
            pool.queueDepth = 40
            pool.queueOldestMicroseconds = 210_000
            pool.waitP99Ns = 180_000_000
        }
        #expect(decisions.allSatisfy { $0.action == .add && $0.reason == .starvation })
        #expect((9...11).contains(decisions.count), "\(decisions.count) adds in 5 s")
        #expect(pool.live == 2 + decisions.count)
        let first = decisions[0]
        // Packets are queued: the message quotes what waits now, not a percentile.
        #expect(first.message == "auto: +1 worker — 2 of 2 blocked, 40 queued, oldest 210 ms", "\(first.message ?? "")")
        let gaps = zip(decisions.dropFirst(), decisions).map { $0.decidedAtNs - $1.decidedAtNs }
        #expect(gaps.allSatisfy { $0 >= 450_000_000 }, "\(gaps)")
    }

    @Test func starvationStopsAtTheMaximum() {
        let (decisions, pool) = run(seconds: 20, start: Pool(live: 2), maxWorkers: 6) { pool, _ in
            pool.blocked = pool.live
            pool.queueDepth = 40
        }
        #expect(pool.live == 6)
        #expect(decisions.count == 4)
    }

    @Test func aHealthyPoolIsLeftAlone() {
        // Four workers all serving, nobody blocked, short waits.
        let (decisions, _) = run(seconds: 60, start: Pool(live: 4)) { pool, step in
            pool.running = 2
            pool.rate = 20_000 + Double(step % 3) * 100
        }
        #expect(decisions.isEmpty, "\(decisions.compactMap(\.message))")
    }

    @Test func aCPUBoundPoolDoesNotGrow() {
        // Running = the limit, nobody blocked, a long queue: more threads could not run.
        let (decisions, pool) = run(seconds: 60, start: Pool(live: 2)) { pool, _ in
            pool.running = 2
            pool.queueDepth = 30
            pool.waitP99Ns = 50_000_000
            pool.rate = 4000
        }
        #expect(decisions.isEmpty)
        #expect(pool.live == 2)
    }

    @Test func noisyThroughputDoesNotMakeItOscillate() {
        // One worker blocked on average and waits of 5 ms invite probes; completions/s is noise
        // (±10 %) whatever the pool: every probe must be judged useless, with growing pauses.
        var generator = SeededGenerator(seed: 7)
        let (decisions, pool) = run(seconds: 300, start: Pool(live: 3)) { pool, _ in
            pool.blocked = 1
            pool.running = 1
            pool.waitP99Ns = 5_000_000
            pool.rate = 10_000 * Double.random(in: 0.9...1.1, using: &generator)
        }
        #expect(decisions.count <= 16, "\(decisions.count) changes in 300 s: \(decisions.compactMap(\.message))")
        #expect((3...5).contains(pool.live), "\(pool.live)")
        let adds = decisions.filter { $0.action == .add }.count
        let retires = decisions.count - adds
        #expect(adds - retires <= 2, "probes were reverted: \(adds) adds, \(retires) retires")
    }

    @Test func aStallStillQueuedInvitesAProbe() {
        // The packets started in each interval waited little (p99 50 µs), but one still queued
        // is 20 ms old: a stall in progress. Blocking-bound, so the probe helps and is kept.
        let (decisions, pool) = run(seconds: 20, start: Pool(live: 3)) { pool, _ in
            pool.blocked = 1
            pool.running = 2
            pool.queueDepth = 5
            pool.queueOldestMicroseconds = 20_000
            pool.waitP99Ns = 50_000
            pool.rate = 100 * Double(pool.live)
        }
        #expect(!decisions.isEmpty && decisions.allSatisfy { $0.reason == .probe }, "\(decisions.compactMap(\.message))")
        #expect(pool.live > 3)
    }

    @Test func aProbeThatHelpsIsKeptAndClimbingGoesOn() {
        // Blocking-bound: each worker adds 100 completions/s.
        let (decisions, pool) = run(seconds: 60, start: Pool(live: 3)) { pool, _ in
            pool.blocked = 1
            pool.running = 1
            pool.waitP99Ns = 20_000_000
            pool.rate = 100 * Double(pool.live)
        }
        #expect(decisions.allSatisfy { $0.reason == .probe }, "\(decisions.compactMap(\.message))")
        #expect(pool.live >= 8, "\(pool.live)")
    }

    @Test func idleWorkersRetireDownToTheLimitNeverBelow() {
        let (decisions, pool) = run(seconds: 30, start: Pool(live: 6)) { pool, _ in
            pool.running = 1
            // Worker 1 idle too: a policy without the floor would retire down to one.
            pool.idle = [1, 2, 3, 4, 5]
        }
        #expect(decisions.allSatisfy { $0.action == .retire && $0.reason == .idle })
        #expect(pool.live == 2, "down to the concurrency limit: \(pool.live)")
    }

    /// A worker that dequeued between the frame's clock read and the slot read carries a state
    /// start after the frame's time: it is not "stuck" for 584 years, and a CPU-bound pool with
    /// such workers still does not grow.
    @Test func aStateStampedAfterTheFrameIsNotStuck() {
        var policy = AutoPolicy()
        var previousRates = FrameRates()
        previousRates.intervalSeconds = 0.5
        previousRates.completionsPerSecond = 4000
        var decisions = 0
        for step in 1...120 {
            var frame = StatsFrame()
            frame.timestampNs = UInt64(step) * 500_000_000
            frame.port.concurrency = 2
            frame.port.runningThreads = 2
            frame.port.queueDepth = 30
            frame.settings.workersTarget = 2
            frame.workers = (0..<2).map { index in
                var worker = WorkerSample()
                worker.id = index
                worker.state = .running
                worker.stateSinceNs = frame.timestampNs + 1
                worker.counts.receives = UInt64(step * 10)
                return worker
            }
            if policy.decide(frame: frame, rates: previousRates) != nil { decisions += 1 }
        }
        #expect(decisions == 0)
    }

    @Test func drainingStopsDecisions() {
        var policy = AutoPolicy()
        var frame = StatsFrame()
        frame.timestampNs = 10_000_000_000
        frame.engine.draining = true
        frame.port.queueDepth = 10
        frame.port.concurrency = 2
        var worker = WorkerSample()
        worker.state = .blocked
        frame.workers = [worker]
        var rates = FrameRates()
        rates.intervalSeconds = 0.5
        #expect(policy.decide(frame: frame, rates: rates) == nil)
    }
}

/// A small deterministic generator (SplitMix64) for reproducible noise.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
