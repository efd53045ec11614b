/// One worker as the sampler saw it.
public struct WorkerSample: Sendable, Hashable {
    /// Index of the counter slot (reused after the worker exits).
    public var slot = 0
    /// The engine's worker id (never reused).
    public var id = 0
    public var state: WorkerState = .unused
    public var counts = WorkerCounts()
    /// Time spent in each state since the worker started, including the current state so far.
    public var runningNs: UInt64 = 0
    public var waitingNs: UInt64 = 0
    public var blockedNs: UInt64 = 0
    /// When it last dequeued completions (monotonic ns; 0: never).
    public var lastCompletionNs: UInt64 = 0
    /// When its current state began (for `exited`: when it exited).
    public var stateSinceNs: UInt64 = 0
    /// Operations this worker submitted that have not completed yet.
    public var pending = 0
    /// Open connections whose most recent completion this worker served.
    public var connections = 0
    /// CPU time the worker thread has used (user + system), in ns.
    public var cpuNs: UInt64 = 0

    public init() {}

    /// Words a sample takes in a ring frame.
    static let wordCount = 17

    func write(to words: UnsafeMutablePointer<UInt64>, _ store: (UnsafeMutablePointer<UInt64>, UInt64) -> Void) {
        store(words + 0, UInt64(slot))
        store(words + 1, UInt64(id))
        store(words + 2, state.rawValue)
        store(words + 3, counts.accepts)
        store(words + 4, counts.receives)
        store(words + 5, counts.sends)
        store(words + 6, counts.posted)
        store(words + 7, counts.bytesIn)
        store(words + 8, counts.bytesOut)
        store(words + 9, runningNs)
        store(words + 10, waitingNs)
        store(words + 11, blockedNs)
        store(words + 12, lastCompletionNs)
        store(words + 13, stateSinceNs)
        store(words + 14, UInt64(pending))
        store(words + 15, UInt64(connections))
        store(words + 16, cpuNs)
    }

    mutating func read(from words: UnsafeMutablePointer<UInt64>, _ load: (UnsafeMutablePointer<UInt64>) -> UInt64) {
        slot = Int(truncatingIfNeeded: load(words + 0))
        id = Int(truncatingIfNeeded: load(words + 1))
        state = WorkerState(rawValue: load(words + 2)) ?? .unused
        counts.accepts = load(words + 3)
        counts.receives = load(words + 4)
        counts.sends = load(words + 5)
        counts.posted = load(words + 6)
        counts.bytesIn = load(words + 7)
        counts.bytesOut = load(words + 8)
        runningNs = load(words + 9)
        waitingNs = load(words + 10)
        blockedNs = load(words + 11)
        lastCompletionNs = load(words + 12)
        stateSinceNs = load(words + 13)
        pending = Int(truncatingIfNeeded: load(words + 14))
        connections = Int(truncatingIfNeeded: load(words + 15))
        cpuNs = load(words + 16)
    }
}
