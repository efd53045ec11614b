import CIOURing
import CompletionPort
import EngineStats
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A TCP server on a completion port, speaking any `ServerProtocol` (echo by default): the
/// seed's server, done right, with the protocol as a seam.
///
/// Workers dequeue completions and run each connection's strand: a receive fills the
/// connection's input, its handler turns input into output (for echo, the input is the
/// output, sent from where it arrived), a send drains it (resubmitted until every byte is
/// sent), and a 0-byte receive ends the connection once everything owed is sent. A failed
/// completion (reset, broken pipe, …) closes that one connection; the worker keeps serving.
/// Connection objects, their handlers and their buffers are pooled; nothing is allocated per
/// completion.
///
/// The pool of workers can change while serving: `addWorker`, `retireWorker` (a shutdown
/// packet: whichever worker dequeues it gives the rest of its batch back and exits),
/// `setConcurrency`, and `drain` (the seed's shutdown protocol, bounded in time).
public final class PortServer: @unchecked Sendable {
    // @unchecked: `tally` is guarded by `tallyLock`, `lastSweepNs` belongs to the maintenance thread; every other stored property is a `let` of a Sendable type, an Atomic or a Mutex.
    /// The configuration the engine was started with.
    public let configuration: EngineConfiguration
    /// The protocol served.
    public let serving: any ServerProtocol
    /// The completion port the workers serve.
    public let port: CompletionPort
    /// "address:port" actually listened on.
    public let address: String
    /// The TCP port actually listened on (useful with `configuration.port` = 0).
    public let listenPort: UInt16

    /// The stats ring: one frame per sampling period (`configuration.statsPeriodMilliseconds`).
    public let stats: StatsRing
    /// The thread that fills `stats`; its period can change while serving.
    public let sampler: StatsSampler
    /// The housekeeping thread (harvest when nobody leads, the buffer sweep); stopped by `drain`.
    let maintenance = Mutex<MaintenanceTicker?>(nil)

    let listener: Listener
    let connections: ConnectionTable
    /// Large buffers lent to connections while data flows (nil when `ioBufferSize` is small).
    let bufferPool: BufferPool?
    /// Where multishot arrivals wait for their connection (nil: one-shot receives only).
    let arrivals: Arrivals?
    /// Whether connections receive with one multishot receive over provided buffers (io_uring,
    /// kernel 6.0+, `providedBuffers` > 0) rather than one receive per message.
    public var receivesMultishot: Bool { arrivals != nil }
    /// Bytes of every connection's own buffer: what an idle connection keeps.
    static let smallBufferSize = 1024
    /// Address space reserved for large buffers at most: 4 GiB (16 384 × 256 KiB), reserved,
    /// not committed. Connections beyond what it holds stay on their small buffers.
    static let poolBytes = 1 << 32
    /// Large buffers kept resident in the pool, the rest handed back to the kernel by the sweep.
    static let warmReserve = 32
    /// CLOCK_MONOTONIC of the last buffer sweep (maintenance thread only).
    var lastSweepNs: Int64 = 0
    let slots: WorkerSlots
    /// The protocol's handler metrics, as workers keep them and frames carry them.
    public let handlerSchema: HandlerSchema
    /// Each metric's kind and word offset, flat: what a handler's update checks and uses.
    let handlerTable: [(kind: HandlerMetric.Kind, offset: Int)]
    /// CLOCK_MONOTONIC at start, in ns.
    let startedNs = UInt64(CIOURing_now_ns())
    /// Process CPU time at start, in ns: frames count CPU from here.
    let startedCPUNs = PortServer.processCPUNanoseconds()
    /// Per-slot tallies for the sampler's connection scan (sampler thread only).
    let tally = UnsafeMutablePointer<Int>.allocate(capacity: 2 * EngineConfiguration.maxWorkers)
    /// Guards `tally` (frames can be filled by the sampler and by `currentFrame` at once).
    let tallyLock = Mutex<Void>(())
    private let workers = Mutex<[Worker]>([])
    private let nextWorkerID = Atomic<Int>(0)
    let draining = Atomic<Bool>(false)
    /// Simulated CPU work per completion, in µs; changeable while serving.
    /// relaxed: a setting read once per completion, ordered with nothing else.
    let workMicroseconds: Atomic<Int>
    /// Simulated blocking per completion, in µs; changeable while serving.
    /// relaxed: a setting read once per completion, ordered with nothing else.
    let blockMicroseconds: Atomic<Int>
    private let drained = Atomic<Bool>(false)
    /// The report of the one drain, once it has finished.
    private let drainResult = Mutex<DrainReport?>(nil)
    /// Shutdown packets posted and not yet taken by a worker: `retireWorker` retires only
    /// workers that no queued packet will retire already.
    /// acquiring/releasing: a worker marks itself retiring before it takes its packet off this
    /// count, so `apply` never counts a worker as both live and still to be retired.
    let shutdownsQueued = Atomic<Int>(0)
    /// What the built-in load generator in this process reports, for the frames (nil: none).
    let loadProbe = Mutex<(@Sendable () -> LoadSample)?>(nil)
    /// Serialises retiring: the live count and the queued packets are read and changed under it.
    private let commandLock = Mutex<Void>(())
    /// Serialises `apply`: a relative command reads and sets under it.
    let applyLock = Mutex<Void>(())
    /// Auto mode's state as frames publish it (the sampler reads it once per frame).
    let autoState = Mutex(AutoSample())
    /// Auto mode's thread, started the first time auto mode is turned on; stopped by `drain`.
    let autoSizer = Mutex<AutoSizer?>(nil)

    // Engine-wide counters: one update per connection event, never per completion.
    // relaxed: independent monotonic counters and gauges, read for display only.
    let openCount = Atomic<Int>(0)
    let peakCount = Atomic<Int>(0)
    let acceptedCount = Atomic<UInt64>(0)
    let refusedCount = Atomic<UInt64>(0)
    let closedByErrorCount = Atomic<UInt64>(0)
    let operatorCloseCount = Atomic<UInt64>(0)
    /// The sampler's memory of the connections (rates, candidates), under `tallyLock`.
    let connectionSampling = ConnectionSampling()
    let acceptErrorCount = Atomic<UInt64>(0)

    /// Completion keys that are not connection slots.
    static let listenerKey = UInt64.max
    static let controlKey = UInt64.max - 1
    /// Key of the packets the buffer sweep posts: "connection `context`, give your large
    /// buffer back if you are still quiet".
    static let shrinkKey = UInt64.max - 2
    /// Key of the packets handlers post (`ConnectionContext.post`), served by
    /// `ServerProtocol.posted`.
    static let protocolKey = UInt64.max - 3
    /// Key of the packets the deadline check posts: "connection `context`, your deadline has
    /// passed" (see `expireDeadlines`).
    static let deadlineKey = UInt64.max - 4
    /// Key of the packets an operator's close posts: "connection `context`, close if you are
    /// still `Connection.operatorCloseID`" (see `closeConnection`).
    static let operatorCloseKey = UInt64.max - 5
    /// Context of the shutdown packet posted on `controlKey`.
    static let shutdownContext: UInt64 = 1
    /// Contexts of a connection's operations.
    static let receiveContext: UInt64 = 0
    static let sendContext: UInt64 = 1
    static let multishotContext: UInt64 = 2

    /// Starts listening and serving `serving`.
    /// - Throws: `EngineError.addressInUse` when the address is taken; other `EngineError`s
    ///   for bad settings or a port that cannot be created.
    public init(configuration: EngineConfiguration, serving: any ServerProtocol = EchoProtocol()) throws(EngineError) {
        guard configuration.ioBufferSize >= 64, configuration.ioBufferSize <= 1 << 24 else {
            throw EngineError.invalidConfiguration("the I/O buffer size must be between 64 bytes and 16 MiB")
        }
        guard configuration.largeBuffers >= 0, configuration.largeBuffers <= 1 << 22 else {
            throw EngineError.invalidConfiguration("large buffers must be between 0 and 4194304")
        }
        let provided = configuration.providedBuffers
        guard provided == 0 || (provided <= 32768 && provided & (provided - 1) == 0) else {
            throw EngineError.invalidConfiguration("provided buffers must be 0 or a power of two up to 32768")
        }
        guard configuration.maxConnections > 0, configuration.maxConnections <= 1 << 22 else {
            throw EngineError.invalidConfiguration("max connections must be between 1 and 4194304")
        }
        guard (1...EngineConfiguration.maxConnectionRows).contains(configuration.connectionRows) else {
            throw EngineError.invalidConfiguration("connections shown per frame must be between 1 and \(EngineConfiguration.maxConnectionRows)")
        }
        guard configuration.workers >= 0, configuration.resolvedWorkers <= EngineConfiguration.maxWorkers else {
            throw EngineError.invalidConfiguration("workers must be between 0 and \(EngineConfiguration.maxWorkers)")
        }
        guard configuration.statsHistoryFrames >= 2, configuration.statsHistoryFrames <= 100_000,
              (50...60_000).contains(configuration.statsPeriodMilliseconds) else {
            throw EngineError.invalidConfiguration("the stats period must be 50 to 60000 ms, the history 2 to 100000 frames")
        }
        guard (1...EngineConfiguration.maxWorkers).contains(configuration.autoMaxWorkers) else {
            throw EngineError.invalidConfiguration("--max-workers must be between 1 and \(EngineConfiguration.maxWorkers)")
        }
        guard configuration.concurrency >= 0, configuration.workMicroseconds >= 0,
              configuration.blockMicroseconds >= 0 else {
            throw EngineError.invalidConfiguration("concurrency and simulated work must not be negative")
        }
        do throws(HandlerSchema.Invalid) {
            handlerSchema = try HandlerSchema(serving.metrics)
        } catch {
            throw EngineError.invalidConfiguration("\(serving.name): \(error)")
        }
        handlerTable = zip(handlerSchema.metrics, handlerSchema.offsets).map { ($0.kind, $1) }
        slots = WorkerSlots(capacity: EngineConfiguration.maxWorkers, handler: handlerSchema)
        self.configuration = configuration
        self.serving = serving
        workMicroseconds = Atomic(configuration.workMicroseconds)
        blockMicroseconds = Atomic(configuration.blockMicroseconds)
        Listener.raiseDescriptorLimit()
        listener = try Listener(bindAddress: configuration.bindAddress, port: configuration.port)
        address = listener.address
        listenPort = listener.port
        let small = min(Self.smallBufferSize, configuration.ioBufferSize)
        // One large buffer per connection for echo (its ring); two with a handler (input and
        // output). Reserved address space, not memory.
        let largePerConnection = serving.repliesWithInput ? 1 : 2
        let largeCount = configuration.largeBuffers > 0 ? configuration.largeBuffers
            : min(largePerConnection * configuration.maxConnections, max(16, Self.poolBytes / configuration.ioBufferSize))
        let pool = configuration.ioBufferSize > small ? BufferPool(count: largeCount, size: configuration.ioBufferSize) : nil
        guard let table = ConnectionTable(capacity: configuration.maxConnections, bufferSize: small,
                                          outputSize: serving.repliesWithInput ? 0 : small),
              pool != nil || configuration.ioBufferSize <= small else {
            close(listener.fd)
            throw EngineError.invalidConfiguration(
                "cannot reserve \(configuration.maxConnections) connections' buffers; lower --max-connections or --buffer-size")
        }
        connections = table
        bufferPool = pool
        stats = StatsRing(capacity: configuration.statsHistoryFrames, workerCapacity: EngineConfiguration.maxWorkers,
                          handler: handlerSchema,
                          connectionCapacity: configuration.connectionRows + EngineConfiguration.closedRows)
        // Not strong: the sampler must not keep a dropped engine alive. unowned(unsafe), not
        // weak: a weak reference gives the engine a side table, and every retain and release
        // of it — workers make them per completion — then takes the slow path. Sound because
        // `deinit` stops (joins) the sampler before the engine goes away.
        final class WeakEngine: @unchecked Sendable { unowned(unsafe) var engine: PortServer? }
        let reference = WeakEngine()
        sampler = StatsSampler(ring: stats, periodNs: UInt64(configuration.statsPeriodMilliseconds) * 1_000_000) { frame in
            guard let engine = reference.engine else { return false }
            engine.fill(&frame)
            return true
        }
        do {
            // Two operations per connection, plus the accept and room for cancellations.
            port = try CompletionPort(concurrency: configuration.concurrency, backend: configuration.backend,
                                      maxOperations: 2 * configuration.maxConnections + 64,
                                      // Multishot arrivals are copied into an echo ring only.
                                      providedBuffers: serving.repliesWithInput ? configuration.providedBuffers : 0,
                                      providedBufferSize: small)
            try port.associate(listener.fd, key: Self.listenerKey)
        } catch {
            close(listener.fd)
            throw EngineError.port(error)
        }
        arrivals = port.receivesMultishot ? Arrivals(count: configuration.providedBuffers) : nil
        reference.engine = self
        var identity = EngineIdentity()
        identity.pid = getpid()
        identity.processStartTicks = ProcessStart.ticks(of: getpid()) ?? 0
        identity.backend = "\(port.backend)"
        identity.protocolName = serving.name
        identity.connectionFigure = serving.connectionFigure ?? ""
        identity.handler = handlerSchema
        identity.address = address
        identity.note = port.fallbackReason.map { "io_uring unavailable: \($0)" } ?? ""
        identity.periodNs = sampler.periodNs
        stats.describe(identity)
        for _ in 0..<configuration.resolvedWorkers { _ = try? startWorker() }
        // Before the first frame, so that every frame of an --auto engine says so.
        if configuration.auto { _ = apply(.setAuto(true), origin: .auto) }
        do {
            let ticker = try MaintenanceTicker {
                guard let engine = reference.engine else { return }
                // Every worker may be blocked: nobody would move the kernel's completions into
                // the FIFO, and frames would show an empty queue exactly when it is longest.
                engine.port.harvestIfNobodyLeads()
                engine.sweepIdleBuffers()
                engine.expireDeadlines()
            }
            maintenance.withLock { $0 = ticker }
        } catch {
            _ = drain(timeout: .seconds(1))
            throw EngineError.thread("the maintenance thread not started: \(error)")
        }
        if configuration.countsWorkerActivity || bufferPool != nil {
            do {
                try sampler.start()
            } catch {
                _ = drain(timeout: .seconds(1))
                throw EngineError.thread("the stats sampler not started: \(error)")
            }
        }
        do {
            try port.acceptMultishot(on: listener.fd, context: 0)
        } catch {
            _ = drain(timeout: .seconds(1))
            throw EngineError.port(error)
        }
    }

    deinit {
        sampler.stop()
        if !drained.load(ordering: .acquiring) { _ = drain(timeout: .seconds(5)) }
        tally.deallocate()
    }

    // MARK: worker pool

    /// Starts one more worker thread on the port. Returns its id.
    /// - Throws: `EngineError.tooManyWorkers` when `EngineConfiguration.maxWorkers` are alive,
    ///   `EngineError.drained` after a drain.
    @discardableResult
    public func addWorker() throws(EngineError) -> Int {
        guard !draining.load(ordering: .relaxed) else { throw EngineError.drained }
        return try startWorker()
    }

    private func startWorker() throws(EngineError) -> Int {
        try workers.withLock { list throws(EngineError) -> Int in
            // Checked under the lock the drain takes to list the workers: a worker is either in
            // that list (and is stopped and joined) or never starts.
            guard !draining.load(ordering: .acquiring) else { throw EngineError.drained }
            // Forget workers that have exited (their slots keep their counters until reused).
            list.removeAll { worker in
                guard worker.hasExited else { return false }
                worker.join()
                return true
            }
            let id = nextWorkerID.add(1, ordering: .relaxed).oldValue
            guard let slot = slots.claim(workerID: id, now: UInt64(CIOURing_now_ns())) else {
                throw EngineError.tooManyWorkers(EngineConfiguration.maxWorkers)
            }
            let worker = Worker(id: id, slot: slot, engine: self)
            do {
                try worker.start()
            } catch {
                // The slot is free again once it says so.
                slot.enter(.exited, at: UInt64(CIOURing_now_ns()))
                throw EngineError.thread("worker not started: \(error)")
            }
            list.append(worker)
            return id
        }
    }

    /// Posts one shutdown packet: whichever worker dequeues it gives the packets it has not
    /// started back to the port and exits. Returns false when every live worker already has a shutdown packet queued for it.
    @discardableResult
    public func retireWorker() throws(EngineError) -> Bool {
        try commandLock.withLock { _ throws(EngineError) -> Bool in try retireWorkerLocked() }
    }

    private func retireWorkerLocked() throws(EngineError) -> Bool {
        guard !draining.load(ordering: .relaxed) else { throw EngineError.drained }
        // The queued count first: acquiring, it pairs with the worker's releasing decrement made
        // after it marked itself retiring, so a worker whose packet left the count is no longer
        // counted live below. (Read the other way round, a worker could be counted live and its
        // packet gone from the count: one packet too many.) The worst case is a refused retire.
        let queued = shutdownsQueued.load(ordering: .acquiring)
        let live = workers.withLock { list in list.filter { !$0.hasExited && !$0.retiring }.count }
        guard live > queued else { return false }
        do { try postShutdown() } catch { throw EngineError.port(error) }
        return true
    }

    /// Posts one shutdown packet and counts it as queued.
    private func postShutdown() throws(PortError) {
        // relaxed increment: read under `commandLock`, or by the drain, which does not care.
        shutdownsQueued.add(1, ordering: .relaxed)
        do { try port.post(key: Self.controlKey, context: Self.shutdownContext) } catch {
            shutdownsQueued.subtract(1, ordering: .relaxed)
            throw error
        }
    }

    /// Workers asked for: live workers that no queued shutdown packet will retire.
    public var workersTarget: Int {
        // acquiring, and first: see `retireWorkerLocked`.
        let queued = shutdownsQueued.load(ordering: .acquiring)
        return max(0, liveWorkers - queued)
    }

    /// Changes the port's concurrency limit while serving (0: one per online CPU).
    public func setConcurrency(_ limit: Int) throws(EngineError) {
        guard !draining.load(ordering: .relaxed) else { throw EngineError.drained }
        do { try port.setConcurrency(limit) } catch { throw EngineError.port(error) }
    }

    /// Simulated CPU work per completion, in µs (0 to 1 000 000), changeable while serving.
    public var simulatedWorkMicroseconds: Int {
        get { workMicroseconds.load(ordering: .relaxed) }
        set { workMicroseconds.store(min(1_000_000, max(0, newValue)), ordering: .relaxed) }
    }

    /// Simulated blocking per completion, in µs (0 to 1 000 000), changeable while serving.
    public var simulatedBlockMicroseconds: Int {
        get { blockMicroseconds.load(ordering: .relaxed) }
        set { blockMicroseconds.store(min(1_000_000, max(0, newValue)), ordering: .relaxed) }
    }

    /// Lets the frames carry the built-in load's figures (its connections, messages and round
    /// trips), so every viewer — JSON, an attached dashboard — sees the client's side too.
    public func setLoadProbe(_ probe: (@Sendable () -> LoadSample)?) {
        loadProbe.withLock { $0 = probe }
    }

    /// Workers currently alive (started and not exited).
    public var liveWorkers: Int { workers.withLock { $0.reduce(0) { $0 + ($1.hasExited ? 0 : 1) } } }

    /// Ids of workers that are alive.
    public var liveWorkerIDs: [Int] { workers.withLock { $0.filter { !$0.hasExited }.map(\.id) } }

    // MARK: drain

    /// The seed's shutdown protocol: stop accepting, close every connection, wait until no
    /// operation is pending, post one shutdown packet per worker, join them, close the port.
    ///
    /// Bounded: whatever is left when `timeout` passes is abandoned to `port.close()`, which
    /// cancels it. There is one drain: a call made while another thread drains waits for it
    /// (up to `timeout`) and returns its report; a call after it returns the same report.
    public func drain(timeout: Duration = .seconds(5)) -> DrainReport {
        let started = ContinuousClock.now
        let deadline = started + timeout
        var report = DrainReport()
        guard !draining.exchange(true, ordering: .acquiringAndReleasing) else {
            while !isDrained, ContinuousClock.now < deadline { usleep(1000) }
            if let finished = drainResult.withLock({ $0 }) { return finished }
            // The other thread's drain has not finished within our time.
            report.timedOut = true
            report.duration = ContinuousClock.now - started
            return report
        }
        // 0. Auto mode stops deciding.
        autoSizer.withLock { $0 }?.stop()
        // 1. Stop accepting: the multishot accept completes with ECANCELED.
        try? port.close(handle: listener.fd)
        // 2. Close every connection, through its strand.
        connections.forEachCreated { connection in
            guard connection.isOpen.load(ordering: .acquiring) else { return }
            report.connectionsClosed += 1
            let bits = connection.arrive(Connection.closeArrived)
            if bits != 0 { pump(connection, bits, worker: nil) }
        }
        // 3. Wait until nothing is in flight (the workers deliver the cancellations).
        report.pendingAtStart = port.pendingOperations
        while port.pendingOperations > 0 || openCount.load(ordering: .relaxed) > 0,
              ContinuousClock.now < deadline {
            usleep(1000)
        }
        report.pendingAbandoned = port.pendingOperations
        // 4. One shutdown packet per worker, then join them.
        let list = workers.withLock { $0 }
        let live = list.filter { !$0.hasExited }
        for _ in live { try? postShutdown() }
        while list.contains(where: { !$0.hasExited }), ContinuousClock.now < deadline {
            usleep(1000)
        }
        report.workersStopped = live.count
        // 5. Close the port: anything still waiting is woken with portClosed.
        maintenance.withLock { $0 }?.stop()
        port.close()
        for worker in list { worker.join() }
        report.timedOut = ContinuousClock.now >= deadline
        report.duration = ContinuousClock.now - started
        drainResult.withLock { $0 = report }
        drained.store(true, ordering: .releasing)
        return report
    }

    /// Whether `drain` has started.
    public var isDraining: Bool { draining.load(ordering: .relaxed) }

    /// Whether `drain` has finished.
    public var isDrained: Bool { drained.load(ordering: .acquiring) }
}

/// What `drain` did.
public struct DrainReport: Sendable, Hashable, CustomStringConvertible {
    public var connectionsClosed = 0
    public var pendingAtStart = 0
    public var pendingAbandoned = 0
    public var workersStopped = 0
    public var timedOut = false
    public var duration: Duration = .zero

    public var description: String {
        let ms = Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
        var text = "drained in \(ms) ms: \(connectionsClosed) connections closed, \(workersStopped) workers stopped"
        if pendingAbandoned > 0 { text += ", \(pendingAbandoned) operations abandoned" }
        if timedOut { text += " (timed out)" }
        return text
    }
}
