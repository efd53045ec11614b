/// A frame in the Prometheus text exposition format 0.0.4, or OpenMetrics 1.0 — generated from
/// the frame field table, so the metrics and `--json` cannot drift apart.
///
/// Naming (Prometheus conventions): `iocptop_` + the field's name, then its base unit
/// (`_seconds` for ns and µs fields, `_bytes`), then `_total` for counters. Frame fields are
/// engine-wide series; worker fields are `iocptop_worker_…` series labelled `slot="N"` — the
/// worker's counter slot, 0 … 255, not its id: ids are never reused, so an id label would grow
/// without bound over a long life with workers added and retired, while slots bound every
/// per-worker metric at 256 series. A retired (exited) worker's series are absent from the next
/// scrape; a slot reused by a new worker starts its counters from zero, which `rate()` treats
/// as a counter reset. Identifiers and CLOCK_MONOTONIC instants are not exported. A server's
/// handler metrics (`HandlerSchema`) follow as `iocptop_handler_<name>`, engine-wide, by the
/// same rules.
///
/// Histograms become classic Prometheus histograms with `le` bounds at every power of two from
/// 1.024 µs to 17.2 s (exact bucket edges of `LatencyBuckets`), `_count` the total and `_sum`
/// from each bucket's representative value (within 6.25 %).
public enum MetricsExposition {
    /// `Content-Type` of the Prometheus text format.
    public static let textContentType = "text/plain; version=0.0.4; charset=utf-8"
    /// `Content-Type` of OpenMetrics, for scrapers whose `Accept` asks for it.
    public static let openMetricsContentType = "application/openmetrics-text; version=1.0.0; charset=utf-8"

    /// `le` bounds, ns: the upper edge of each octave of `LatencyBuckets`.
    static let bucketBounds: [UInt64] = (0...24).map { UInt64(1) << (10 + $0) }

    /// The exposition of `frame` (nil: only the engine's identity, before the first frame).
    public static func render(identity: EngineIdentity, frame: StatsFrame?, openMetrics: Bool) -> String {
        var out = Writer(openMetrics: openMetrics)
        out.family("iocptop_engine_info", type: "gauge", help: "The engine: backend and echo address (value 1).")
        out.sample("iocptop_engine_info", labels: [("backend", identity.backend), ("address", identity.address)], 1)
        if let frame {
            for field in FrameLayout.frameFields { out.field(field, name: "iocptop_\(field.name)", of: [([], frame)]) }
            let completions = openMetrics ? "iocptop_completions" : "iocptop_completions_total"
            out.family(completions, type: "counter", help: "Completions dequeued by every worker the engine ever had.")
            out.sample("iocptop_completions_total", labels: [], Double(frame.totals.completions))
            out.family("iocptop_workers", type: "gauge", help: "Live workers by state.")
            for state in [WorkerState.running, .waiting, .blocked] {
                out.sample("iocptop_workers", labels: [("state", state.description)], Double(frame.workers(in: state)))
            }
            let live = frame.workers.filter { $0.state != .exited && $0.state != .unused }
            let labelled = live.map { ([("slot", String($0.slot))], $0) }
            for field in FrameLayout.workerFields { out.field(field, name: "iocptop_worker_\(field.name)", of: labelled) }
            // The protocol's own figures, summed over every worker that ever ran.
            if !identity.handler.metrics.isEmpty {
                let values = identity.handler.values(of: frame.handlerRows)
                for field in identity.handler.fields { out.field(field, name: "iocptop_handler_\(field.name)", of: [([], values)]) }
            }
        }
        if openMetrics { out.text += "# EOF\n" }
        return out.text
    }

    /// The text being written, with the format's rules.
    struct Writer {
        let openMetrics: Bool
        var text = ""

        init(openMetrics: Bool) {
            self.openMetrics = openMetrics
            text.reserveCapacity(64 * 1024)
        }

        /// One field as a metric family over `records` (each with its labels).
        mutating func field<Record>(_ field: FrameField<Record>, name base: String, of records: [([(String, String)], Record)]) {
            switch field.kind {
            case .identifier, .state, .instant: return
            default: break
            }
            let (scale, unitSuffix): (Double, String) = switch field.unit {
            case .nanoseconds: (1e-9, "_seconds")
            case .microseconds: (1e-6, "_seconds")
            case .bytes: (1, "_bytes")
            case .none: (1, "")
            }
            let name = base + unitSuffix
            switch field.kind {
            case .counter:
                // The text format names the family as its samples (`…_total`); OpenMetrics names
                // the family without the suffix its samples carry.
                let sampleName = name + "_total"
                family(openMetrics ? name : sampleName, type: "counter", help: field.help)
                for (labels, record) in records { sample(sampleName, labels: labels, Double(field.word(of: record)) * scale) }
            case .histogram:
                family(name, type: "histogram", help: field.help)
                for (labels, record) in records {
                    guard let histogram = field.histogram(of: record) else { continue }
                    let cumulative = histogram.cumulative(atOrBelow: MetricsExposition.bucketBounds)
                    for (bound, count) in zip(MetricsExposition.bucketBounds, cumulative) {
                        sample(name + "_bucket", labels: labels + [("le", Self.number(Double(bound) * 1e-9))], Double(count))
                    }
                    sample(name + "_bucket", labels: labels + [("le", "+Inf")], Double(histogram.total))
                    var sum = 0.0
                    for index in 0..<LatencyBuckets.count where histogram[index] > 0 {
                        sum += Double(histogram[index]) * Double(LatencyBuckets.representative(index))
                    }
                    sample(name + "_sum", labels: labels, sum * 1e-9)
                    sample(name + "_count", labels: labels, Double(histogram.total))
                }
            default:
                family(name, type: "gauge", help: field.help)
                for (labels, record) in records {
                    let word = field.word(of: record)
                    // Signed fields are stored as two's complement words.
                    let value = field.isSigned ? Double(Int64(bitPattern: word)) : Double(word)
                    sample(name, labels: labels, value * scale)
                }
            }
        }

        mutating func family(_ name: String, type: String, help: String) {
            text += "# HELP \(name) \(Self.escapeHelp(help))\n# TYPE \(name) \(type)\n"
        }

        mutating func sample(_ name: String, labels: [(String, String)], _ value: Double) {
            text += name
            if !labels.isEmpty {
                text += "{" + labels.map { "\($0.0)=\"\(Self.escapeLabel($0.1))\"" }.joined(separator: ",") + "}"
            }
            text += " " + Self.number(value) + "\n"
        }

        static func number(_ value: Double) -> String {
            if value.isNaN { return "NaN" }
            if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
            if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
            return String(value)
        }

        static func escapeHelp(_ text: String) -> String {
            text.replacing("\\", with: "\\\\").replacing("\n", with: "\\n")
        }

        static func escapeLabel(_ text: String) -> String {
            text.replacing("\\", with: "\\\\").replacing("\n", with: "\\n").replacing("\"", with: "\\\"")
        }
    }
}
