import EngineStats

extension DashboardView {
    /// The selected worker in full: its completions by kind, bytes, time by state, and its
    /// queue-wait and service-time histograms as bars with their percentiles. Over the interval
    /// when it served anything in it, else since it started.
    func drawDetail(_ model: DashboardModel, into screen: inout Screen) {
        let width = min(screen.width - 4, 78)
        let height = min(screen.height - 2, 24)
        let left = (screen.width - width) / 2, top = (screen.height - height) / 2
        let box = drawBox(left: left, top: top, width: width, height: height, into: &screen)
        guard let (rates, sample) = model.detail else {
            screen.put(" worker \(model.detailID ?? 0) ", x: left + 2, y: top, style: box)
            screen.put("this worker is gone (its slot was reused)", x: left + 2, y: top + 2)
            screen.put(" Esc closes ", x: left + width - 14, y: top + height - 1, style: box)
            return
        }
        screen.put(" worker \(sample.id) · \(sample.state) · slot \(sample.slot) ", x: left + 2, y: top, style: box)
        screen.put(" Esc closes ", x: left + width - 14, y: top + height - 1, style: box)
        let inner = width - 4
        var y = top + 1
        let label = CellStyle(.label, bold: true)
        func line(_ title: String, _ text: String) {
            let x = screen.put(Format.left(title, 12), x: left + 2, y: y, style: label)
            screen.put(text, x: x, y: y, limit: inner - 12)
            y += 1
        }
        let counts = sample.counts
        line("completions", "\(counts.accepts) accepts · \(counts.receives) receives · \(counts.sends) sends · \(counts.posted) posted")
        line("bytes", "in \(Format.bytes(counts.bytesIn)) · out \(Format.bytes(counts.bytesOut)) · \(sample.pending) in flight · \(sample.connections) connections")
        if let frame = model.frame {
            let oldest = frame.port.queueDepth > 0
                ? " · oldest \(Format.duration(UInt64(max(0, frame.port.queueOldestMicroseconds)) &* 1000))" : ""
            line("port", "queue \(frame.port.queueDepth)\(oldest) · \(frame.port.runningThreads)/\(frame.port.concurrency) running · \(frame.port.parkedThreads) parked")
        }
        line("time", "running \(Format.duration(sample.runningNs)) · waiting \(Format.duration(sample.waitingNs)) · blocked \(Format.duration(sample.blockedNs)) · cpu \(Format.duration(sample.cpuNs))")
        if !model.handler.metrics.isEmpty {
            // This worker's share of the protocol's own figures, since it started.
            line("handler", Self.describeShare(model.handler, row: sample.handler))
        }
        let rows = max(1, (top + height - 1 - y - 2) / 2)
        for (title, interval, total) in [("queue wait", rates.queueWaitHistogram, sample.queueWait),
                                         ("service", rates.serviceHistogram, sample.service)] {
            let histogram = interval.total > 0 ? interval : total
            let scope = interval.total > 0 ? "interval" : "since start"
            let summary = Percentiles(histogram).map {
                "p50 \(Format.latency($0.p50))  p90 \(Format.latency($0.p90))  p99 \(Format.latency($0.p99))  p99.9 \(Format.latency($0.p999))  (\($0.count), \(scope))"
            } ?? "nothing counted yet"
            line(title, summary)
            y = drawBars(histogram, rows: rows, left: left + 4, top: y, width: inner - 2, into: &screen)
        }
    }

    /// A worker's handler figures since it started: counters and gauges as numbers (bytes
    /// as sizes), histograms as count and p99.
    static func describeShare(_ schema: HandlerSchema, row: [UInt64]) -> String {
        let values = schema.values(of: [row])
        return schema.metrics.enumerated().map { index, metric in
            switch metric.kind {
            case .counter:
                metric.unit == .bytes ? "\(metric.name) \(Format.bytes(values.counters[index]))" : "\(metric.name) \(values.counters[index])"
            case .gauge:
                "\(metric.name) \(values.gauges[index])"
            case .histogram:
                "\(metric.name) \(values.histograms[index].total)× p99 \(Format.latency(values.histograms[index].percentile(0.99)))"
            }
        }.joined(separator: " · ")
    }

    /// Histogram bars, one per power of two that holds counts (at most `rows`, around the
    /// busiest); returns the next free row.
    private func drawBars(_ histogram: LatencyHistogram, rows: Int, left: Int, top: Int, width: Int, into screen: inout Screen) -> Int {
        guard histogram.total > 0 else { return top }
        // Octaves: bucket 0 alone (below 1 µs), then 8 buckets each.
        var octaves: [(upper: UInt64, count: UInt64)] = [(1024, histogram[0])]
        var index = 1
        while index < LatencyBuckets.count {
            let end = min(LatencyBuckets.count, index + 8)
            let count = (index..<end).reduce(UInt64(0)) { $0 &+ histogram[$1] }
            octaves.append((LatencyBuckets.bounds(end - 1).upper, count))
            index = end
        }
        guard let first = octaves.firstIndex(where: { $0.count > 0 }),
              let last = octaves.lastIndex(where: { $0.count > 0 }) else { return top }
        var range = first...last
        if range.count > rows {
            let busiest = octaves.indices.max { octaves[$0].count < octaves[$1].count } ?? first
            let start = max(first, min(busiest - rows / 2, last - rows + 1))
            range = start...(start + rows - 1)
        }
        let peak = max(1, octaves[range].map(\.count).max() ?? 1)
        let barWidth = max(1, width - 22)
        var y = top
        for octave in octaves[range] {
            let bound = octave.upper == UInt64.max ? "> 17s" : "< " + Format.duration(octave.upper)
            var x = screen.put(Format.right(bound, 8) + " ", x: left, y: y, style: CellStyle(.muted))
            let cells = Int((Double(octave.count) / Double(peak) * Double(barWidth)).rounded(.up))
            x = screen.put(String(repeating: unicode ? "█" : "#", count: octave.count > 0 ? max(1, cells) : 0), x: x, y: y, style: CellStyle(.good))
            screen.put(" \(octave.count)", x: x, y: y)
            y += 1
        }
        return y
    }
}
