/// Something wrong with the engine, and which key helps.
public struct Warning: Sendable, Hashable {
    /// Stable names (JSON `kind`).
    public enum Kind: String, Sendable, CaseIterable {
        /// Every live worker is blocked while packets wait: add workers (`+`).
        case workersBlocked = "workers_blocked"
        /// Packets wait long while the running threads fill the limit and CPU is left: raise the
        /// concurrency limit (`C`).
        case raiseConcurrency = "raise_concurrency"
        /// A worker has been inside one completion for over a second.
        case stuckWorker = "stuck_worker"
        /// Accepts fail (EMFILE, ENFILE, …): the descriptor limit is reached.
        case acceptFailing = "accept_failing"
        /// Connections are refused at `--max-connections`.
        case connectionsRefused = "connections_refused"
    }

    public var kind: Kind
    public var message: String

    public init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }
}

/// The warning rules, on two frames and the rates between them. Pure: the dashboard, `--batch`
/// JSON and (later) other viewers get the same warnings from the same frames.
///
/// Thresholds (documented in README.md) are chosen so that a healthy engine raises none: a
/// queue wait counts as long from `longQueueWaitNs` at the 99th percentile, and only with at
/// least `minimumSamples` packets in the interval.
public enum Warnings {
    /// Queue wait p99 from which packets "wait" (10 ms).
    public static let longQueueWaitNs: UInt64 = 10_000_000
    /// Packets an interval needs before its percentiles count.
    public static let minimumSamples: UInt64 = 20
    /// Time in one completion from which a worker is stuck (1 s).
    public static let stuckNs: UInt64 = 1_000_000_000
    /// Share of the machine's CPU below which "CPU is left" (75 %).
    public static let cpuLeftShare = 0.75

    public static func evaluate(previous: StatsFrame?, current: StatsFrame, rates: FrameRates) -> [Warning] {
        var warnings: [Warning] = []
        let live = current.liveWorkers
        let blocked = current.workers(in: .blocked)
        let wait = rates.queueWait.flatMap { $0.count >= minimumSamples ? $0 : nil }
        let queued = current.port.queueDepth
        let oldestNs = UInt64(max(0, current.port.queueOldestMicroseconds)) &* 1000
        // Packets wait long: those started in the interval did (p99), or one still queued has
        // (its age shows a stall while it lasts, before any stalled packet starts).
        let waitsLong = (wait?.p99 ?? 0) >= longQueueWaitNs || oldestNs >= longQueueWaitNs
        // Auto mode on and not held back by the operator: it adds the workers itself.
        let autoAdds = current.auto.enabled && !current.auto.isPaused(at: current.timestampNs)
        // The figure that shows the problem: what waits now, else what waited.
        let waitText = queued > 0
            ? "\(queued) queued" + (oldestNs > 0 ? ", oldest \(milliseconds(oldestNs))" : "")
            : wait.map { "queue wait p99 \(milliseconds($0.p99))" } ?? "nothing queued"
        if live > 0, blocked == live, queued > 0 || waitsLong {
            warnings.append(Warning(kind: .workersBlocked,
                                    message: "all \(live) workers blocked, \(waitText): "
                                        + (autoAdds ? "auto mode is adding workers" : "press + to add a worker")))
        } else if waitsLong, current.port.runningThreads >= current.port.concurrency {
            let cpus = min(max(1, current.settings.onlineCPUs), 1 << 16)
            if rates.processCPUPercent < Double(cpus) * 100 * cpuLeftShare {
                warnings.append(Warning(kind: .raiseConcurrency,
                                        message: "\(waitText) with \(current.port.runningThreads)/\(current.port.concurrency) running and CPU left (\(Int(min(rates.processCPUPercent, 1e6))) % of \(cpus) cores): press C to raise the limit"))
            }
        }
        for worker in current.workers where worker.state == .running || worker.state == .blocked {
            let inState = current.timestampNs > worker.stateSinceNs ? current.timestampNs - worker.stateSinceNs : 0
            if inState > stuckNs {
                warnings.append(Warning(kind: .stuckWorker,
                                        message: "worker \(worker.id) \(worker.state) in one completion for \(seconds(inState))"))
            }
        }
        if let previous {
            let failed = current.engine.acceptErrors &- previous.engine.acceptErrors
            if current.engine.acceptErrors > previous.engine.acceptErrors {
                warnings.append(Warning(kind: .acceptFailing,
                                        message: "\(failed) accepts failed (descriptor limit reached?): connections wait in the backlog"))
            }
            let refused = current.engine.refused &- previous.engine.refused
            if current.engine.refused > previous.engine.refused {
                warnings.append(Warning(kind: .connectionsRefused,
                                        message: "\(refused) connections refused at --max-connections (\(current.engine.openConnections) open)"))
            }
        }
        return warnings
    }

    static func milliseconds(_ ns: UInt64) -> String {
        let ms = Double(ns) / 1e6
        return ms >= 100 ? "\(Int(ms.rounded())) ms" : ms >= 1 ? "\((ms * 10).rounded() / 10) ms" : "\(Int((Double(ns) / 1000).rounded())) µs"
    }

    static func seconds(_ ns: UInt64) -> String { "\((Double(ns) / 1e8).rounded() / 10) s" }
}
