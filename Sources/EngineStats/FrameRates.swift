/// Percentiles of the durations counted over one interval, in ns.
public struct Percentiles: Sendable, Hashable {
    public var p50: UInt64
    public var p90: UInt64
    public var p99: UInt64
    public var p999: UInt64
    /// Durations counted in the interval.
    public var count: UInt64

    /// Nil when `histogram` is empty.
    public init?(_ histogram: LatencyHistogram) {
        guard let p50 = histogram.percentile(0.5) else { return nil }
        self.p50 = p50
        p90 = histogram.percentile(0.9) ?? p50
        p99 = histogram.percentile(0.99) ?? p50
        p999 = histogram.percentile(0.999) ?? p50
        count = histogram.total
    }
}

/// One worker's activity between two frames.
public struct WorkerRates: Sendable, Hashable {
    public var slot = 0
    public var id = 0
    public var state: WorkerState = .unused
    /// Share of the interval the worker was not waiting in dequeue (running or blocked), 0…100:
    /// its saturation.
    public var busyPercent = 0.0
    /// CPU the worker thread used over the interval, in percent of one core (user and kernel:
    /// on io_uring much of the I/O runs inside the worker's `io_uring_enter`).
    public var cpuPercent = 0.0
    public var completionsPerSecond = 0.0
    public var bytesInPerSecond = 0.0
    public var bytesOutPerSecond = 0.0
    public var totalCompletions: UInt64 = 0
    public var pending = 0
    public var connections = 0
    /// Time since its last completion at the current frame (nil: never had one).
    public var sinceLastCompletionNs: UInt64?
    /// For an exited worker, how long ago it exited.
    public var exitedForNs: UInt64?
    /// Queue wait of the packets it started in the interval (nil: none).
    public var queueWait: Percentiles?
    /// Its service times in the interval (nil: none).
    public var service: Percentiles?
    /// The interval's histograms behind those percentiles.
    public var queueWaitHistogram = LatencyHistogram()
    public var serviceHistogram = LatencyHistogram()

    public init() {}
}

/// Rates and saturation derived from two frames (`previous` nil: since the start).
public struct FrameRates: Sendable, Hashable {
    public var intervalSeconds = 0.0
    public var completionsPerSecond = 0.0
    public var bytesInPerSecond = 0.0
    public var bytesOutPerSecond = 0.0
    /// Busy share of the live workers together, 0…100.
    public var poolBusyPercent = 0.0
    /// CPU used by the process over the interval, in percent of one core.
    public var processCPUPercent = 0.0
    /// Queue wait and service time of the whole pool over the interval (nil: nothing counted).
    public var queueWait: Percentiles?
    public var service: Percentiles?
    /// The pool's interval histograms behind them.
    public var queueWaitHistogram = LatencyHistogram()
    public var serviceHistogram = LatencyHistogram()
    /// The built-in load over the interval: messages per second and round-trip percentiles
    /// (nil: no round trip completed).
    public var loadMessagesPerSecond = 0.0
    public var loadRoundTrip: Percentiles?
    public var workers: [WorkerRates] = []

    public init() {}

    public init(previous: StatsFrame?, current: StatsFrame) {
        let start = previous ?? StatsFrame()
        let elapsedNs = previous == nil ? current.uptimeNs : current.timestampNs &- start.timestampNs
        intervalSeconds = Double(elapsedNs) / 1e9
        let seconds = max(intervalSeconds, 1e-9)
        let now = current.totals, before = start.totals
        completionsPerSecond = Double(now.completions &- before.completions) / seconds
        bytesInPerSecond = Double(now.bytesIn &- before.bytesIn) / seconds
        bytesOutPerSecond = Double(now.bytesOut &- before.bytesOut) / seconds
        processCPUPercent = Double(current.processCPUNs &- start.processCPUNs) / Double(max(elapsedNs, 1)) * 100

        var busyNs: UInt64 = 0, totalNs: UInt64 = 0
        workers.reserveCapacity(current.workers.count)
        for worker in current.workers {
            let earlier = start.workers.first { $0.slot == worker.slot && $0.id == worker.id } ?? WorkerSample()
            var rates = WorkerRates()
            rates.slot = worker.slot
            rates.id = worker.id
            rates.state = worker.state
            let busy = (worker.runningNs &+ worker.blockedNs) &- (earlier.runningNs &+ earlier.blockedNs)
            let total = busy &+ (worker.waitingNs &- earlier.waitingNs)
            rates.busyPercent = total == 0 ? 0 : min(100, Double(busy) / Double(total) * 100)
            if worker.state != .exited {
                busyNs &+= busy
                totalNs &+= total
            }
            let cpu = worker.cpuNs >= earlier.cpuNs ? worker.cpuNs - earlier.cpuNs : 0
            rates.cpuPercent = min(100, Double(cpu) / 1e9 / seconds * 100)
            rates.completionsPerSecond = Double(worker.counts.completions &- earlier.counts.completions) / seconds
            rates.bytesInPerSecond = Double(worker.counts.bytesIn &- earlier.counts.bytesIn) / seconds
            rates.bytesOutPerSecond = Double(worker.counts.bytesOut &- earlier.counts.bytesOut) / seconds
            rates.totalCompletions = worker.counts.completions
            rates.pending = worker.pending
            rates.connections = worker.connections
            if worker.lastCompletionNs > 0 {
                rates.sinceLastCompletionNs = current.timestampNs > worker.lastCompletionNs ? current.timestampNs - worker.lastCompletionNs : 0
            }
            if worker.state == .exited {
                rates.exitedForNs = current.timestampNs > worker.stateSinceNs ? current.timestampNs - worker.stateSinceNs : 0
            }
            rates.queueWaitHistogram = worker.queueWait.since(earlier.queueWait)
            rates.serviceHistogram = worker.service.since(earlier.service)
            rates.queueWait = Percentiles(rates.queueWaitHistogram)
            rates.service = Percentiles(rates.serviceHistogram)
            workers.append(rates)
        }
        // The pool's totals (live and retired workers) only grow: their difference is the
        // interval exactly, across slot reuse too.
        queueWaitHistogram = current.poolQueueWait.since(start.poolQueueWait)
        serviceHistogram = current.poolService.since(start.poolService)
        queueWait = Percentiles(queueWaitHistogram)
        service = Percentiles(serviceHistogram)
        if current.load.messages >= start.load.messages {
            loadMessagesPerSecond = Double(current.load.messages - start.load.messages) / seconds
        }
        loadRoundTrip = Percentiles(current.load.roundTrip.since(start.load.roundTrip))
        poolBusyPercent = totalNs == 0 ? 0 : Double(busyNs) / Double(totalNs) * 100
    }
}

/// Series of rates over consecutive frames, oldest first, for sparklines.
public struct RateHistory: Sendable, Hashable {
    public var completionsPerSecond: [Double] = []
    public var bytesInPerSecond: [Double] = []
    public var bytesOutPerSecond: [Double] = []

    public init() {}

    /// Rates between each pair of consecutive frames (`frames` oldest first).
    public init(frames: [StatsFrame]) {
        guard frames.count >= 2 else { return }
        for index in 1..<frames.count {
            let a = frames[index - 1], b = frames[index]
            let seconds = max(Double(b.timestampNs &- a.timestampNs) / 1e9, 1e-9)
            let ta = a.totals, tb = b.totals
            completionsPerSecond.append(Double(tb.completions &- ta.completions) / seconds)
            bytesInPerSecond.append(Double(tb.bytesIn &- ta.bytesIn) / seconds)
            bytesOutPerSecond.append(Double(tb.bytesOut &- ta.bytesOut) / seconds)
        }
    }
}
