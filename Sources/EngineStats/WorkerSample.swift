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
    /// How long the packets this worker started had waited in the port's FIFO, since it started.
    public var queueWait = LatencyHistogram()
    /// How long each packet it served took (its start to the next packet's start), since it started.
    public var service = LatencyHistogram()
    /// Its handler metrics, as words laid out by the engine's `HandlerSchema` (empty: none).
    public var handler: [UInt64] = []

    public init() {}

    func write(to words: UnsafeMutablePointer<UInt64>, _ store: (UnsafeMutablePointer<UInt64>, UInt64) -> Void) {
        var at = words
        for field in FrameLayout.workerFields { at += field.store(self, to: at, store) }
    }

    mutating func read(from words: UnsafeMutablePointer<UInt64>, _ load: (UnsafeMutablePointer<UInt64>) -> UInt64) {
        var at = words
        for field in FrameLayout.workerFields { at += field.load(into: &self, from: at, load) }
    }
}
