import Dashboard
import EngineStats

/// One `--batch` block: a totals line and a worker table (text), or one JSON object.
struct BatchReport {
    let identity: EngineIdentity
    let frame: StatsFrame
    /// The frame before (rates and the handler's interval figures are against it).
    let previous: StatsFrame?
    let rates: FrameRates
    let warnings: [Warning]

    // MARK: text

    var text: String {
        let totals = frame.totals
        var lines: [String] = []
        let states = "\(frame.workers(in: .running)) running, \(frame.workers(in: .waiting)) waiting, \(frame.workers(in: .blocked)) blocked"
        lines.append("iocptop - up \(Format.uptime(frame.uptimeNs)) · \(identity.backend) · \(identity.address)"
            + " · workers \(frame.liveWorkers) (\(states)) · port \(frame.port.runningThreads)/\(frame.port.concurrency) running,"
            + " queue \(frame.port.queueDepth)"
            + (frame.port.queueDepth > 0 ? " (oldest \(Format.duration(UInt64(max(0, frame.port.queueOldestMicroseconds)) &* 1000)))" : "")
            + ", pending \(frame.port.pendingOperations)"
            + " · busy \(Format.fixed(rates.poolBusyPercent))% · cpu \(Format.fixed(rates.processCPUPercent))%"
            + (frame.engine.drained ? " · drained" : frame.engine.draining ? " · draining" : ""))
        lines.append("connections \(frame.engine.openConnections) open, \(frame.engine.peakConnections) peak,"
            + " \(frame.engine.accepted) accepted, \(frame.engine.refused) refused, \(frame.engine.closedByError) errors"
            + (frame.engine.acceptErrors > 0 ? ", \(frame.engine.acceptErrors) accept failures" : "")
            + " · \(Format.rate(rates.completionsPerSecond)) completions/s (\(totals.completions) total)"
            + " · in \(Format.fixed(rates.bytesInPerSecond / 1e6)) MB/s · out \(Format.fixed(rates.bytesOutPerSecond / 1e6)) MB/s")
        lines.append("queue wait p50 \(Format.latency(rates.queueWait?.p50)) p99 \(Format.latency(rates.queueWait?.p99))"
            + " · service p50 \(Format.latency(rates.service?.p50)) p99 \(Format.latency(rates.service?.p99))")
        for warning in warnings { lines.append("warning: \(warning.message)") }
        lines.append("")
        lines.append(Self.header)
        for worker in rates.workers {
            lines.append(Self.pad(String(worker.id), 5) + "  " + Format.left(worker.state.description, 7)
                + Self.pad(Format.fixed(worker.busyPercent), 7)
                + Self.pad(Format.fixed(worker.cpuPercent), 7)
                + Self.pad(Format.rate(worker.completionsPerSecond), 9)
                + Self.pad(String(worker.totalCompletions), 12)
                + Self.pad(Format.fixed(worker.bytesInPerSecond / 1e6, decimals: 2), 9)
                + Self.pad(Format.fixed(worker.bytesOutPerSecond / 1e6, decimals: 2), 9)
                + Self.pad(String(worker.pending), 8)
                + Self.pad(String(worker.connections), 7)
                + Self.pad(Format.latency(worker.queueWait?.p99), 10)
                + Self.pad(Format.latency(worker.service?.p99), 10))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static let header = "   ID  STATE    BUSY%   CPU%  COMPL/S       TOTAL  IN MB/s OUT MB/s PENDING  CONNS  WAIT p99   SVC p99"

    static func pad(_ text: String, _ width: Int) -> String { Format.right(text, width) }

    // MARK: JSON

    /// Auto mode: on or off, held back by an operator's key (seconds left), pool changes so far,
    /// and the last decision with its reason, message and engine uptime.
    var autoObject: JSONLine {
        let auto = frame.auto
        var object = JSONLine()
        object.add("enabled", auto.enabled)
        object.add("paused_s", Double(auto.pausedUntilNs > frame.timestampNs ? auto.pausedUntilNs - frame.timestampNs : 0) / 1e9, decimals: 1)
        object.add("changes", auto.changes)
        if auto.reason != .none {
            object.add("decision", auto.action.name)
            object.add("reason", auto.reason.name)
            object.add("message", auto.message ?? "")
            let ago = frame.timestampNs > auto.decidedAtNs ? frame.timestampNs - auto.decidedAtNs : 0
            object.add("at_uptime_s", Double(frame.uptimeNs > ago ? frame.uptimeNs - ago : 0) / 1e9, decimals: 3)
        }
        return object
    }

    /// The protocol's handler metrics: each counter's total and `_per_s`, each gauge's level,
    /// each histogram's interval percentiles (`NAME_p50_us` …), named as the server declared them.
    private var handlerObject: JSONLine {
        var object = JSONLine()
        let values = identity.handler.values(of: frame.handlerRows)
        let figures = identity.handler.figures(previous: previous, current: frame)
        for (field, figure) in zip(identity.handler.fields, figures) {
            switch figure.metric.kind {
            case .counter:
                object.add(field, of: values)
                object.add("\(field.name)_per_s", figure.perSecond ?? 0)
            case .gauge:
                object.add(field, of: values)
            case .histogram:
                object.add(percentiles: figure.percentiles, prefix: field.name)
            }
        }
        return object
    }

    /// One row of the connections table: its fields as `FrameLayout` names them, then its
    /// state, why it closed, its peer, its age, idle and waiting times, and the handler's
    /// own figure under the protocol's name (`requests`, `requests_per_s`).
    private func connectionObject(_ row: ConnectionSample) -> JSONLine {
        var object = JSONLine()
        for field in FrameLayout.connectionFields { object.add(field, of: row) }
        object.add("state", row.state.description)
        if row.state == .closed { object.add("close_reason", row.closeReason.description) }
        object.add("peer", row.peer.description)
        object.add("age_s", Double(row.ageNs(at: frame.timestampNs)) / 1e9, decimals: 3)
        object.add("idle_s", Double(row.idleNs(at: frame.timestampNs)) / 1e9, decimals: 3)
        object.add("waiting_s", Double(row.waitingNs(at: frame.timestampNs)) / 1e9, decimals: 3)
        if !identity.connectionFigure.isEmpty {
            object.add(identity.connectionFigure, row.handlerFigure)
            object.add("\(identity.connectionFigure)_per_s", row.figurePerSecond)
        }
        return object
    }

    /// The stable schema documented in README.md: the frame's fields as `FrameLayout` names
    /// them, then what is derived from two frames; keys are only ever appended.
    var json: String {
        let totals = frame.totals
        var line = JSONLine()
        for field in FrameLayout.frameFields { line.add(field, of: frame) }
        line.add("interval_s", rates.intervalSeconds, decimals: 3)
        line.add("backend", identity.backend)
        line.add("address", identity.address)
        line.add("pid", Int(identity.pid))
        line.add("workers_live", frame.liveWorkers)
        line.add("workers_running", frame.workers(in: .running))
        line.add("workers_waiting", frame.workers(in: .waiting))
        line.add("workers_blocked", frame.workers(in: .blocked))
        line.add("busy_pct", rates.poolBusyPercent)
        line.add("cpu_pct", rates.processCPUPercent)
        line.add("completions", totals.completions)
        line.add("completions_per_s", rates.completionsPerSecond)
        line.add("bytes_in", totals.bytesIn)
        line.add("bytes_out", totals.bytesOut)
        line.add("mb_in_per_s", rates.bytesInPerSecond / 1e6, decimals: 3)
        line.add("mb_out_per_s", rates.bytesOutPerSecond / 1e6, decimals: 3)
        line.add(percentiles: rates.queueWait, prefix: "queue_wait")
        line.add(percentiles: rates.service, prefix: "service")
        if frame.load.connections > 0 || rates.loadMessagesPerSecond > 0 {
            var load = JSONLine()
            load.add("connections", frame.load.connections)
            load.add("messages_per_s", rates.loadMessagesPerSecond)
            load.add(percentiles: rates.loadRoundTrip, prefix: "round_trip")
            line.add("load", object: load)
        }
        line.add("auto", object: autoObject)
        if !identity.handler.metrics.isEmpty { line.add("handler", object: handlerObject) }
        line.add("warnings", objects: warnings.map { warning in
            var object = JSONLine()
            object.add("kind", warning.kind.rawValue)
            object.add("message", warning.message)
            return object
        })
        line.add("connections", objects: frame.connections.map(connectionObject))
        line.add("workers", objects: zip(rates.workers, frame.workers).map { worker, sample in
            var object = JSONLine()
            for field in FrameLayout.workerFields { object.add(field, of: sample) }
            object.add("busy_pct", worker.busyPercent)
            object.add("cpu_pct", worker.cpuPercent)
            object.add("completions_per_s", worker.completionsPerSecond)
            object.add("completions", worker.totalCompletions)
            object.add("mb_in_per_s", worker.bytesInPerSecond / 1e6, decimals: 3)
            object.add("mb_out_per_s", worker.bytesOutPerSecond / 1e6, decimals: 3)
            object.add(percentiles: worker.queueWait, prefix: "queue_wait")
            object.add(percentiles: worker.service, prefix: "service")
            // The worker's share of the handler's counters and gauges.
            if !identity.handler.metrics.isEmpty {
                let values = identity.handler.values(of: [sample.handler])
                // The same keys and units as the `handler` object, prefixed.
                for field in identity.handler.fields where field.kind != .histogram {
                    object.add(field, of: values, prefix: "handler_")
                }
            }
            return object
        })
        return line.string
    }
}
