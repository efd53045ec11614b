/// The completion port's gauges at one moment.
public struct PortSample: Sendable, Hashable {
    /// Packets queued and not yet handed to a worker.
    public var queueDepth = 0
    /// Workers counted against the concurrency limit (running, not blocked).
    public var runningThreads = 0
    /// The concurrency limit.
    public var concurrency = 0
    /// Workers parked in dequeue.
    public var parkedThreads = 0
    /// Overlapped operations submitted and not yet completed.
    public var pendingOperations = 0
    /// Age of the oldest packet still queued, in µs (0: none queued). Unlike a queue-wait
    /// percentile, which counts packets once they are dequeued, it shows a stall while it lasts.
    public var queueOldestMicroseconds = 0

    public init() {}
}

/// The engine's connection counters at one moment.
public struct EngineSample: Sendable, Hashable {
    public var openConnections = 0
    public var peakConnections = 0
    public var accepted: UInt64 = 0
    /// Accepted and closed at once (over `--max-connections`, or draining).
    public var refused: UInt64 = 0
    /// Connections closed because an operation failed (reset, broken pipe, …).
    public var closedByError: UInt64 = 0
    /// Accepts that failed (EMFILE and the like).
    public var acceptErrors: UInt64 = 0
    /// The drain has started.
    public var draining = false
    /// The drain has finished: workers joined, port closed.
    public var drained = false
    /// Open connections in each `ConnectionState` (every connection, not only the rows shown).
    public var receiving = 0
    public var sending = 0
    public var blocked = 0
    public var paused = 0
    public var closing = 0
    /// Large buffers open connections borrowed (input and output counted apart).
    public var largeBuffers = 0
    /// How long the connection waiting longest (blocked or paused) has waited, in µs.
    public var longestWaitingMicroseconds = 0
    /// Connections closed by an operator.
    public var operatorCloses: UInt64 = 0

    public init() {}
}

/// The engine's settings that the operator can change while it serves (the concurrency limit
/// is in `PortSample`).
public struct EngineSettings: Sendable, Hashable {
    /// Simulated CPU work per completion, in µs.
    public var workMicroseconds = 0
    /// Simulated blocking per completion, in µs.
    public var blockMicroseconds = 0
    /// Workers asked for: started, plus added, minus retired (shutdown packets posted).
    public var workersTarget = 0
    /// CPUs the engine may run on (its affinity mask).
    public var onlineCPUs = 0

    public init() {}
}

/// The built-in load generator running against the engine, as it counts itself: what every
/// viewer shows of the client's side (zero when no load runs in the engine's process).
public struct LoadSample: Sendable, Hashable {
    /// Open client connections.
    public var connections = 0
    /// Messages echoed back completely since the load first started.
    public var messages: UInt64 = 0
    /// Round trips since the load first started.
    public var roundTrip = LatencyHistogram()

    public init() {}
}

/// One sample of the whole engine: what the ring stores and readers get back.
public struct StatsFrame: Sendable, Hashable {
    /// 1 for the first frame published, then consecutive.
    public var number: UInt64 = 0
    /// CLOCK_MONOTONIC when sampled, in ns.
    public var timestampNs: UInt64 = 0
    /// Time since the engine started, in ns.
    public var uptimeNs: UInt64 = 0
    /// CPU time used by the whole process (all threads) since the engine started, in ns.
    public var processCPUNs: UInt64 = 0
    public var port = PortSample()
    public var engine = EngineSample()
    /// The engine's live settings.
    public var settings = EngineSettings()
    /// The built-in load, when one runs in the engine's process.
    public var load = LoadSample()
    /// Auto mode: on or off, paused, and its last decision.
    public var auto = AutoSample()
    /// Counts of workers whose slots have been reused; `totals` adds them in.
    public var retired = WorkerCounts()
    /// Queue-wait and service histograms of workers whose slots have been reused.
    public var retiredQueueWait = LatencyHistogram()
    public var retiredService = LatencyHistogram()
    /// Handler counters and histograms of workers whose slots have been reused (laid out by the
    /// engine's `HandlerSchema`, which its identity carries; empty: none).
    public var retiredHandler: [UInt64] = []
    /// Every worker that has a slot, live or exited, in slot order.
    public var workers: [WorkerSample] = []
    /// The interval's top connections (`ConnectionRanking`: the longest waiting, then by
    /// bytes per second), then the ones that closed in the interval (state `closed`).
    public var connections: [ConnectionSample] = []

    public init() {}

    /// Engine-wide counters: every worker that ever ran.
    public var totals: WorkerCounts {
        workers.reduce(retired) { $0 + $1.counts }
    }

    /// Workers in each state.
    public func workers(in state: WorkerState) -> Int {
        workers.reduce(0) { $0 + ($1.state == state ? 1 : 0) }
    }

    /// Workers not exited.
    public var liveWorkers: Int { workers.count - workers(in: .exited) }

    /// Writes the fixed part (every field of `FrameLayout.frameFields`, then the worker count).
    func writeHeader(to words: UnsafeMutablePointer<UInt64>, _ store: (UnsafeMutablePointer<UInt64>, UInt64) -> Void) {
        var at = words
        for field in FrameLayout.frameFields { at += field.store(self, to: at, store) }
        store(at, UInt64(workers.count))
    }

    /// Reads the fixed part and returns the worker count it names.
    mutating func readHeader(from words: UnsafeMutablePointer<UInt64>, _ load: (UnsafeMutablePointer<UInt64>) -> UInt64) -> Int {
        var at = words
        for field in FrameLayout.frameFields { at += field.load(into: &self, from: at, load) }
        return Int(truncatingIfNeeded: load(at))
    }

    /// Queue waits of every worker that ever ran (retired ones included).
    public var poolQueueWait: LatencyHistogram { workers.reduce(retiredQueueWait) { $0 + $1.queueWait } }

    /// Service times of every worker that ever ran (retired ones included).
    public var poolService: LatencyHistogram { workers.reduce(retiredService) { $0 + $1.service } }

    /// Every row of handler words: the retired workers', then each worker's.
    public var handlerRows: [[UInt64]] { [retiredHandler] + workers.map(\.handler) }
}
