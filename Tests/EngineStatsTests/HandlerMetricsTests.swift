@testable import EngineStats
import Testing

/// Handler metrics: declarations, per-worker words, retired workers, interval figures.
@Suite struct HandlerMetricsTests {
    static let declared: [HandlerMetric] = [
        .counter("requests", help: "Requests answered."),
        .gauge("in_flight", help: "Requests in progress."),
        .histogram("latency", help: "Request latency."),
        .counter("body", unit: .bytes, help: "Request body bytes."),
    ]

    @Test func declarationsAreCheckedAndLaidOut() throws {
        let schema = try HandlerSchema(Self.declared)
        #expect(schema.offsets == [0, 1, 2, 2 + LatencyBuckets.count])
        #expect(schema.wordCount == 3 + LatencyBuckets.count)
        #expect(throws: HandlerSchema.Invalid.self) { try HandlerSchema([.counter("Requests", help: "")]) }
        #expect(throws: HandlerSchema.Invalid.self) { try HandlerSchema([.counter("9lives", help: "")]) }
        #expect(throws: HandlerSchema.Invalid.self) { try HandlerSchema([.counter("", help: "")]) }
        #expect(throws: HandlerSchema.Invalid.self) { try HandlerSchema([.counter(String(repeating: "a", count: 24), help: "")]) }
        #expect(throws: HandlerSchema.Invalid.self) { try HandlerSchema([.counter("a", help: ""), .gauge("a", help: "")]) }
        #expect(throws: HandlerSchema.Invalid.self) { try HandlerSchema((0..<17).map { .counter("m\($0)", help: "") }) }
        // Names that would export the same series as another's (or a unit's) are refused.
        for taken in ["req_total", "body_bytes", "lat_seconds", "lat_count", "req_per_s", "lat_p99_us", "lat_bucket", "lat_sum"] {
            #expect(throws: HandlerSchema.Invalid.self, "\(taken)") { try HandlerSchema([.gauge(taken, help: "")]) }
        }
        #expect(HandlerMetric.counter("x", help: String(repeating: "h", count: 200)).help.utf8.count == HandlerMetric.maxHelpBytes)
    }

    @Test func workersKeepTheirOwnAndRetiredWorkersKeepCountersNotGauges() throws {
        let schema = try HandlerSchema(Self.declared)
        let slots = WorkerSlots(capacity: 2, handler: schema)
        let first = try #require(slots.claim(workerID: 0, now: 1))
        let second = try #require(slots.claim(workerID: 1, now: 1))
        first.addHandler(at: schema.offsets[0], 5)
        first.addHandler(at: schema.offsets[1], 2)
        second.addHandler(at: schema.offsets[0], 3)
        second.addHandler(at: schema.offsets[1], UInt64(bitPattern: -1))
        second.recordHandler(at: schema.offsets[2], nanoseconds: 2_000_000)
        first.addHandler(at: schema.offsets[3], 1000)
        var workers: [WorkerSample] = []
        _ = slots.sample(into: &workers, now: 2)
        #expect(workers.map { $0.handler.count } == [schema.wordCount, schema.wordCount])
        var frame = StatsFrame()
        frame.workers = workers
        var values = schema.values(of: frame.handlerRows)
        #expect(values.counters[0] == 8)
        #expect(values.gauges[1] == 1, "a gauge is the sum of the workers' shares, signed")
        #expect(values.histograms[2].total == 1)
        #expect(values.counters[3] == 1000)
        // The second worker exits and its slot is reused: its counter and histogram are kept
        // with the retired workers, its share of the gauge is not.
        second.enter(.exited, at: 3)
        _ = slots.claim(workerID: 2, now: 4)
        #expect(slots.claim(workerID: 3, now: 5) == nil, "both slots are taken")
        var again: [WorkerSample] = []
        let retired = slots.sample(into: &again, now: 6)
        frame.workers = again
        frame.retiredHandler = retired.handler
        values = schema.values(of: frame.handlerRows)
        #expect(values.counters[0] == 8, "totals never go backwards")
        #expect(values.histograms[2].total == 1)
        #expect(values.gauges[1] == 1, "the retired worker's share of the gauge is kept")
        #expect(again.last?.handler.allSatisfy { $0 == 0 } == true, "the reused slot starts from zero")
    }

    @Test func figuresAreRatesLevelsAndIntervalPercentiles() throws {
        let schema = try HandlerSchema(Self.declared)
        var before = StatsFrame()
        before.timestampNs = 1_000_000_000
        var row = [UInt64](repeating: 0, count: schema.wordCount)
        row[schema.offsets[0]] = 100
        row[schema.offsets[2] + LatencyBuckets.index(1_000)] = 50
        before.workers = [WorkerSample()]
        before.workers[0].handler = row
        var after = before
        after.timestampNs = 3_000_000_000
        row[schema.offsets[0]] = 300
        row[schema.offsets[1]] = 4
        row[schema.offsets[2] + LatencyBuckets.index(5_000_000)] = 10
        after.workers[0].handler = row
        let figures = schema.figures(previous: before, current: after)
        #expect(figures[0].perSecond == 100, "200 requests in 2 s")
        #expect(figures[1].level == 4)
        let latency = try #require(figures[2].percentiles)
        #expect(latency.count == 10, "only the interval's durations")
        #expect(latency.p50 >= 4_500_000 && latency.p50 <= 5_500_000)
    }
}
