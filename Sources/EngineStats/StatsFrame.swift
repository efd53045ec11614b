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
    /// Counts of workers whose slots have been reused; `totals` adds them in.
    public var retired = WorkerCounts()
    /// Every worker that has a slot, live or exited, in slot order.
    public var workers: [WorkerSample] = []

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

    /// Words of the fixed part in the ring.
    static let headerWordCount = 24

    func writeHeader(to words: UnsafeMutablePointer<UInt64>, _ store: (UnsafeMutablePointer<UInt64>, UInt64) -> Void) {
        store(words + 0, number)
        store(words + 1, timestampNs)
        store(words + 2, uptimeNs)
        store(words + 3, processCPUNs)
        store(words + 4, UInt64(port.queueDepth))
        store(words + 5, UInt64(port.runningThreads))
        store(words + 6, UInt64(port.concurrency))
        store(words + 7, UInt64(port.parkedThreads))
        store(words + 8, UInt64(port.pendingOperations))
        store(words + 9, UInt64(engine.openConnections))
        store(words + 10, UInt64(engine.peakConnections))
        store(words + 11, engine.accepted)
        store(words + 12, engine.refused)
        store(words + 13, engine.closedByError)
        store(words + 14, engine.acceptErrors)
        store(words + 15, (engine.draining ? 1 : 0) | (engine.drained ? 2 : 0))
        store(words + 16, retired.accepts)
        store(words + 17, retired.receives)
        store(words + 18, retired.sends)
        store(words + 19, retired.posted)
        store(words + 20, retired.bytesIn)
        store(words + 21, retired.bytesOut)
        store(words + 22, UInt64(workers.count))
        store(words + 23, 0)
    }

    /// Reads the fixed part and returns the worker count it names.
    mutating func readHeader(from words: UnsafeMutablePointer<UInt64>, _ load: (UnsafeMutablePointer<UInt64>) -> UInt64) -> Int {
        number = load(words + 0)
        timestampNs = load(words + 1)
        uptimeNs = load(words + 2)
        processCPUNs = load(words + 3)
        port.queueDepth = Int(truncatingIfNeeded: load(words + 4))
        port.runningThreads = Int(truncatingIfNeeded: load(words + 5))
        port.concurrency = Int(truncatingIfNeeded: load(words + 6))
        port.parkedThreads = Int(truncatingIfNeeded: load(words + 7))
        port.pendingOperations = Int(truncatingIfNeeded: load(words + 8))
        engine.openConnections = Int(truncatingIfNeeded: load(words + 9))
        engine.peakConnections = Int(truncatingIfNeeded: load(words + 10))
        engine.accepted = load(words + 11)
        engine.refused = load(words + 12)
        engine.closedByError = load(words + 13)
        engine.acceptErrors = load(words + 14)
        let flags = load(words + 15)
        engine.draining = flags & 1 != 0
        engine.drained = flags & 2 != 0
        retired.accepts = load(words + 16)
        retired.receives = load(words + 17)
        retired.sends = load(words + 18)
        retired.posted = load(words + 19)
        retired.bytesIn = load(words + 20)
        retired.bytesOut = load(words + 21)
        return Int(truncatingIfNeeded: load(words + 22))
    }
}
