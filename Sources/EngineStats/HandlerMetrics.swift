/// A figure a protocol's handlers keep about their own work (requests served, bytes of bodies,
/// request latency), declared once when the server starts. Like the core's counters, it is
/// kept per worker by that worker alone (no shared read-modify-write), travels in every frame,
/// and is described in the stats ring's header, so every viewer — the dashboard, `--json`,
/// `/metrics`, an attached iocptop — shows it without being told about it.
public struct HandlerMetric: Sendable, Hashable {
    /// How the figure behaves.
    public enum Kind: UInt64, Sendable {
        /// Only grows (requests, bytes); viewers show its rate.
        case counter = 1
        /// Goes up and down (requests in progress); each worker adjusts its share, the total
        /// is their sum.
        case gauge = 2
        /// A distribution of durations in ns, in `LatencyBuckets` (request latency).
        case histogram = 3
    }

    /// snake_case, `[a-z0-9_]`, at most `maxNameBytes` bytes: the metric is exported as
    /// `iocptop_handler_<name>`, its unit and kind adding their suffixes — so a name may not end
    /// in one (`reservedSuffixes`), or two metrics could export the same series.
    public let name: String
    /// One sentence (at most `maxHelpBytes` bytes are kept).
    public let help: String
    public let kind: Kind
    /// `.bytes` or `.nanoseconds` for a counter or gauge; a histogram is in nanoseconds.
    public let unit: FieldUnit

    /// Endings the exporters add (units, `_total`, histogram series, JSON's rates and
    /// percentiles): a name ending in one is refused.
    public static let reservedSuffixes = ["_total", "_bytes", "_seconds", "_bucket", "_sum", "_count", "_per_s", "_us"]

    /// What the ring header's entry holds (3 and 10 words, each string zero-terminated).
    public static let maxNameBytes = 23
    public static let maxHelpBytes = 79

    public init(name: String, kind: Kind, unit: FieldUnit = .none, help: String) {
        self.name = name
        self.kind = kind
        self.unit = kind == .histogram ? .nanoseconds : unit
        var kept = help
        while kept.utf8.count > Self.maxHelpBytes { kept.removeLast() }
        self.help = kept
    }

    /// A counter (`ConnectionContext.count`).
    public static func counter(_ name: String, unit: FieldUnit = .none, help: String) -> HandlerMetric {
        HandlerMetric(name: name, kind: .counter, unit: unit, help: help)
    }

    /// A gauge (`ConnectionContext.adjust`).
    public static func gauge(_ name: String, unit: FieldUnit = .none, help: String) -> HandlerMetric {
        HandlerMetric(name: name, kind: .gauge, unit: unit, help: help)
    }

    /// A latency histogram (`ConnectionContext.record`).
    public static func histogram(_ name: String, help: String) -> HandlerMetric {
        HandlerMetric(name: name, kind: .histogram, help: help)
    }

    /// Words the metric takes per worker.
    public var width: Int { kind == .histogram ? LatencyBuckets.count : 1 }
}

/// The handler metrics of one server: their declarations and where each lives in a worker's
/// handler words (and in every frame's rows).
public struct HandlerSchema: Sendable, Hashable {
    public let metrics: [HandlerMetric]
    /// Word offset of each metric in a row of handler words.
    public let offsets: [Int]
    /// Words of one row (one worker's figures, or the retired workers').
    public let wordCount: Int

    /// At most this many metrics: their descriptions fit the ring header's page.
    public static let maxMetrics = 16

    /// No handler metrics (echo).
    public static let empty = HandlerSchema(unchecked: [])

    /// Why a declaration is refused.
    public struct Invalid: Error, Hashable, Sendable, CustomStringConvertible {
        public let reason: String
        public var description: String { "handler metrics: \(reason)" }
    }

    /// Checks the declarations: names unique, well-formed and short; at most `maxMetrics`.
    public init(_ metrics: [HandlerMetric]) throws(Invalid) {
        guard metrics.count <= Self.maxMetrics else { throw Invalid(reason: "at most \(Self.maxMetrics) metrics, not \(metrics.count)") }
        var seen = Set<String>()
        for metric in metrics {
            let bytes = Array(metric.name.utf8)
            guard !bytes.isEmpty, bytes.count <= HandlerMetric.maxNameBytes,
                  bytes.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }),
                  !(bytes[0] >= 0x30 && bytes[0] <= 0x39) else {
                throw Invalid(reason: "\"\(metric.name)\" is not a name of 1 to \(HandlerMetric.maxNameBytes) characters a-z, 0-9 and _, not starting with a digit")
            }
            if let suffix = HandlerMetric.reservedSuffixes.first(where: { metric.name.hasSuffix($0) }) {
                throw Invalid(reason: "\"\(metric.name)\" ends in \(suffix), which exporters add (declare the unit instead)")
            }
            guard seen.insert(metric.name).inserted else { throw Invalid(reason: "\"\(metric.name)\" is declared twice") }
        }
        self.init(unchecked: metrics)
    }

    init(unchecked metrics: [HandlerMetric]) {
        self.metrics = metrics
        var offsets: [Int] = []
        var at = 0
        for metric in metrics {
            offsets.append(at)
            at += metric.width
        }
        self.offsets = offsets
        wordCount = at
    }

    /// The total of metric `index` over `rows` of handler words (a gauge's words are signed).
    public func total(_ index: Int, in rows: [[UInt64]]) -> UInt64 {
        rows.reduce(0) { sum, row in sum &+ (offsets[index] < row.count ? row[offsets[index]] : 0) }
    }

    /// The histogram of metric `index` over `rows` of handler words.
    public func histogram(_ index: Int, in rows: [[UInt64]]) -> LatencyHistogram {
        let start = offsets[index]
        var counts = [UInt64](repeating: 0, count: LatencyBuckets.count)
        var any: UInt64 = 0
        for row in rows where start + LatencyBuckets.count <= row.count {
            for bucket in 0..<LatencyBuckets.count {
                counts[bucket] &+= row[start + bucket]
                any |= row[start + bucket]
            }
        }
        return any == 0 ? LatencyHistogram() : LatencyHistogram(counts: counts)
    }

    /// Adds every word of `row` into `total`: counters and histograms, and gauges too — a
    /// worker's gauge word is its net share (a connection may go up on one worker and down on
    /// another), so dropping a retired worker's share would leave the total off for good.
    func fold(_ row: [UInt64], into total: inout [UInt64]) {
        if total.count != wordCount { total = [UInt64](repeating: 0, count: wordCount) }
        for (index, metric) in metrics.enumerated() {
            let start = offsets[index]
            for word in start..<(start + metric.width) where word < row.count { total[word] &+= row[word] }
        }
    }
}

/// A server's handler metrics added up (every worker that ever ran, or one worker): the record
/// the exporters read through `HandlerSchema.fields`, as they read frames through
/// `FrameLayout`. Arrays are indexed by metric; a metric's value sits in the array of its kind.
public struct HandlerValues: Sendable, Hashable {
    public var counters: [UInt64]
    public var gauges: [Int]
    public var histograms: [LatencyHistogram]

    public init(count: Int) {
        counters = [UInt64](repeating: 0, count: count)
        gauges = [Int](repeating: 0, count: count)
        histograms = [LatencyHistogram](repeating: LatencyHistogram(), count: count)
    }
}

/// One handler metric over an interval, for display: a rate, a level, or percentiles.
public struct HandlerFigure: Sendable, Hashable {
    public let metric: HandlerMetric
    /// Counter: per second over the interval.
    public var perSecond: Double?
    /// Gauge: its value now.
    public var level: Int?
    /// Histogram: the interval's percentiles (nil when nothing was counted).
    public var percentiles: Percentiles?
}

extension HandlerSchema {
    /// The totals of `rows` (`StatsFrame.handlerRows`: retired workers and each worker).
    public func values(of rows: [[UInt64]]) -> HandlerValues {
        var values = HandlerValues(count: metrics.count)
        for (index, metric) in metrics.enumerated() {
            switch metric.kind {
            case .counter: values.counters[index] = total(index, in: rows)
            case .gauge: values.gauges[index] = Int(truncatingIfNeeded: Int64(bitPattern: total(index, in: rows)))
            case .histogram: values.histograms[index] = histogram(index, in: rows)
            }
        }
        return values
    }

    /// The metrics as frame fields over `HandlerValues`: `--json`, `/metrics` and the
    /// dashboard read them as they read the core's.
    public var fields: [FrameField<HandlerValues>] {
        metrics.enumerated().map { index, metric in
            switch metric.kind {
            case .counter:
                FrameField(metric.name, json: metric.name, .counter, metric.unit, unsigned: \HandlerValues.counters[index], metric.help)
            case .gauge:
                FrameField(metric.name, json: metric.name, .gauge, metric.unit, signed: \HandlerValues.gauges[index], metric.help)
            case .histogram:
                FrameField(metric.name, histogram: \HandlerValues.histograms[index], metric.help)
            }
        }
    }

    /// Every metric between two frames: counters as rates, gauges as levels, histograms as
    /// the interval's percentiles (`previous` nil: since the start).
    public func figures(previous: StatsFrame?, current: StatsFrame) -> [HandlerFigure] {
        let now = values(of: current.handlerRows)
        let before = previous.map { values(of: $0.handlerRows) }
        let seconds = previous.map { Double(current.timestampNs &- $0.timestampNs) / 1e9 } ?? Double(current.uptimeNs) / 1e9
        return metrics.enumerated().map { index, metric in
            var figure = HandlerFigure(metric: metric)
            switch metric.kind {
            case .counter:
                let delta = now.counters[index] &- (before?.counters[index] ?? 0)
                figure.perSecond = seconds > 0 ? Double(delta) / seconds : 0
            case .gauge:
                figure.level = now.gauges[index]
            case .histogram:
                let interval = before.map { now.histograms[index].since($0.histograms[index]) } ?? now.histograms[index]
                figure.percentiles = Percentiles(interval)
            }
            return figure
        }
    }
}

extension HandlerMetric {
    /// The field kind a recording's column says.
    var fieldKind: FieldKind {
        switch kind {
        case .counter: .counter
        case .gauge: .gauge
        case .histogram: .histogram
        }
    }

    /// A metric from a recording's column (its help is not recorded); nil when the column
    /// does not describe one.
    init?(recordedName name: String, kind: String, unit: String, width: Int) {
        guard let unit = FieldUnit(rawValue: unit) else { return nil }
        switch (kind, width) {
        case (FieldKind.counter.rawValue, 1): self.init(name: name, kind: .counter, unit: unit, help: "")
        case (FieldKind.gauge.rawValue, 1): self.init(name: name, kind: .gauge, unit: unit, help: "")
        case (FieldKind.histogram.rawValue, LatencyBuckets.count): self.init(name: name, kind: .histogram, help: "")
        default: return nil
        }
    }
}
