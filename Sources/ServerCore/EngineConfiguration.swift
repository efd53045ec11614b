import CompletionPort

/// How an echo engine is set up. Defaults follow the seed's server.
public struct EngineConfiguration: Sendable, Hashable {
    /// TCP port to listen on (0: an ephemeral port, reported by `PortServer.address`).
    public var port: UInt16 = 5150
    /// IPv4 or IPv6 address to bind. Loopback by default: an open echo port can reflect traffic.
    public var bindAddress = "127.0.0.1"
    /// Worker threads; 0 means 2 × online CPUs.
    public var workers = 0
    /// The port's concurrency limit; 0 means one per online CPU.
    public var concurrency = 0
    public var backend: BackendChoice = .auto
    /// Largest echo buffer per connection, in bytes (receives and sends share it as a ring):
    /// lent from a shared pool while data flows; an idle connection keeps 1 KiB (see `Connection`).
    /// 1 KiB or less: no pool, every connection keeps a ring of this size.
    public var ioBufferSize = 262_144
    /// Large buffers in the shared pool; 0: one per connection, at most 4 GiB of address space
    /// (16 384 of the default 256 KiB).
    /// Connections that find the pool empty stay on their 1 KiB buffers until one comes back.
    public var largeBuffers = 0
    /// Buffers the kernel picks from for multishot receives (io_uring on a 6.0+ kernel), each
    /// as large as a connection's own buffer, shared by all connections: a connection on its
    /// own buffer keeps one multishot receive armed instead of submitting a receive per
    /// message. A power of two up to 32768; 0: one-shot receives only (`PortServer.receivesMultishot`).
    ///
    /// Off by default: measured, it costs more CPU per message than one-shot receives on this
    /// port — every arrival is task work the kernel signals to the worker that armed the
    /// receive, waking it even while it is parked (3.5× the context switches; see
    /// Benchmarks/README.md, "Multishot receive").
    public var providedBuffers = 0
    /// Connections beyond this are accepted and closed at once, and counted as refused.
    public var maxConnections = 10_000
    /// Simulated CPU work per completion, in microseconds (a spin).
    public var workMicroseconds = 0
    /// Simulated blocking per completion, in microseconds (a sleep inside the port's blocking
    /// scope, so the port lets another worker run meanwhile).
    public var blockMicroseconds = 0

    /// How often the sampler publishes a stats frame, in milliseconds (50 to 60000).
    public var statsPeriodMilliseconds = 500
    /// Frames of history the stats ring keeps (128 × 500 ms: a minute). Viewers keep their own
    /// history; the ring only has to cover a reader that falls behind. Each frame holds every
    /// worker's two histograms (3.2 KiB per worker), so the ring is kept short.
    public var statsHistoryFrames = 128
    /// Connections each frame carries in full (`--connections`, 1 to 256): the interval's
    /// longest waiting and busiest (`ConnectionRanking`); up to `closedRows` of the ones that
    /// closed in it come on top.
    public var connectionRows = 32
    public static let maxConnectionRows = 256
    /// Closed connections a frame carries at most (the newest of the interval).
    public static let closedRows = 16

    /// Whether workers count their completions and time. Off only to measure what counting
    /// costs: frames then show no per-worker activity.
    public var countsWorkerActivity = true

    /// Workers that can be alive at once (one counter slot each).
    public static let maxWorkers = 256

    /// Auto mode from the start (`--auto`): the pool sizes itself (`AutoPolicy`).
    public var auto = false
    /// Auto mode never grows the pool past this many live workers (`--max-workers`).
    public var autoMaxWorkers = 256

    public init() {}

    /// `workers` with 0 resolved.
    public var resolvedWorkers: Int { workers == 0 ? 2 * CompletionPort.onlineCPUs : workers }
}
