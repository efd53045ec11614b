import CAtomicWords
import EngineStats
import Histogram
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// An echo load generator: connects, drives the connections on its own threads, verifies every
/// echoed byte, and measures round trips.
///
/// `start()` connects (synchronously, bounded by the connect timeout) and starts the client
/// threads; the run ends by itself at the duration or message count, or on `stop()`.
/// `progress` can be read at any time from any thread; `report()` after the run ends.
public final class LoadGenerator: @unchecked Sendable {
    // @unchecked: `loops` is set by `start` before the threads run and read after they are joined; the rest are `let`s and Mutexes.
    public let configuration: LoadConfiguration
    private let control: RunControl
    private let pattern: PayloadPattern
    private var loops: [ClientLoop] = []
    private var connectFailures: [ErrorCount] = []
    private let state = Mutex<(started: Bool, joined: Bool)>((false, false))

    public init(configuration: LoadConfiguration) throws(LoadError) {
        if let problem = configuration.problem { throw LoadError.invalidConfiguration(problem) }
        self.configuration = configuration
        control = RunControl(messages: configuration.messages)
        pattern = configuration.httpRequest.map { PayloadPattern(fixed: $0) } ?? PayloadPattern(messageSize: configuration.messageSize)
    }

    deinit {
        stop()
        loops.removeAll()
        pattern.deallocate()
    }

    /// Connects and starts the client threads. Returns how many connections were made and why
    /// the others failed.
    /// - Throws: `LoadError.unresolvable`, or `LoadError.noConnection` when none connected.
    @discardableResult
    public func start() throws(LoadError) -> (connected: Int, failures: [ErrorCount]) {
        let address = try Connector.resolve(configuration.host, port: configuration.port)
        let (sockets, failures) = Connector.connect(to: address, count: configuration.connections,
                                                    timeout: configuration.connectTimeout)
        connectFailures = failures
        guard !sockets.isEmpty else {
            throw LoadError.noConnection(host: configuration.host, port: configuration.port, failures: failures)
        }
        let threads = min(configuration.threads, sockets.count)
        var shares = [[(fd: CInt, index: Int)]](repeating: [], count: threads)
        for (index, fd) in sockets.enumerated() { shares[index % threads].append((fd, index)) }
        loops = shares.map {
            ClientLoop(sockets: $0, pattern: pattern, configuration: configuration, control: control)
        }
        state.withLock { $0.started = true }
        loops.forEach { $0.start() }
        return (sockets.count, failures)
    }

    /// Asks the client threads to stop and joins them. Idempotent.
    public func stop() {
        control.requestStop()
        join()
    }

    /// Waits until the run ends by itself (duration or message count reached, or every
    /// connection closed).
    public func wait() { join() }

    private func join() {
        let mustJoin = state.withLock { state -> Bool in
            guard state.started, !state.joined else { return false }
            state.joined = true
            return true
        }
        if mustJoin { loops.forEach { $0.join() } }
    }

    /// Whether every client thread has finished.
    public var isFinished: Bool { loops.allSatisfy { $0.finished.load(ordering: .acquiring) } }

    /// Live counters, summed over the client threads.
    public var progress: LoadProgress {
        var progress = LoadProgress()
        for loop in loops {
            // relaxed: display counters, each read on its own.
            progress.messages &+= loop.messagesDone.load(ordering: .relaxed)
            progress.bytes &+= loop.bytesDone.load(ordering: .relaxed)
            progress.errors += loop.errorCount.load(ordering: .relaxed)
            progress.openConnections += loop.openConnections.load(ordering: .relaxed)
        }
        return progress
    }

    /// Round trips so far, all client threads, per `LatencyBuckets` bucket.
    public func roundTrips() -> LatencyHistogram {
        var counts = [UInt64](repeating: 0, count: LatencyBuckets.count)
        for loop in loops {
            // relaxed: each bucket is a monotonic counter read on its own.
            for index in 0..<LatencyBuckets.count { counts[index] &+= AtomicWord_loadRelaxed(loop.roundTrips + index) }
        }
        return LatencyHistogram(counts: counts)
    }

    /// The summary of a finished run (call after `stop()` or `wait()`).
    public func report() -> LoadReport {
        join()
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
        var errors: [String: Int] = [:]
        var report = LoadReport()
        report.connectionsRequested = configuration.connections
        report.connectFailures = connectFailures
        var first = Int64.max, last = Int64.min
        for loop in loops {
            histogram.add(loop.histogram)
            for (kind, count) in loop.errors { errors[kind, default: 0] += count }
            report.mismatches += loop.mismatches
            report.stalledConnections += loop.stalledConnections
            report.messages &+= loop.messagesDone.load(ordering: .relaxed)
            report.bytes &+= loop.bytesDone.load(ordering: .relaxed)
            report.connected += loop.connectionCount
            first = min(first, loop.startedNs)
            last = max(last, loop.endedNs)
        }
        report.seconds = last > first ? Double(last - first) / 1e9 : 0
        report.errors = errors.map { ErrorCount(kind: $0.key, count: $0.value) }.sorted { $0.count > $1.count }
        if histogram.totalCount > 0 {
            report.latency = LatencySummary(
                p50: histogram.valueAtPercentile(50), p90: histogram.valueAtPercentile(90),
                p99: histogram.valueAtPercentile(99), p999: histogram.valueAtPercentile(99.9),
                max: histogram.max)
        }
        return report
    }
}

/// Live counters of a running load.
public struct LoadProgress: Sendable, Hashable {
    /// Messages echoed back completely.
    public var messages: UInt64 = 0
    /// Payload bytes echoed back (one direction).
    public var bytes: UInt64 = 0
    public var errors = 0
    public var openConnections = 0

    public init() {}
}

/// What the client threads share: the stop request and the message budget.
final class RunControl: Sendable {
    private let stop = Atomic<Bool>(false)
    private let budget: Atomic<Int>
    private let limited: Bool

    init(messages: Int?) {
        budget = Atomic(messages ?? 0)
        limited = messages != nil
    }

    /// relaxed: a flag polled by the loops; nothing is published through it.
    var stopRequested: Bool { stop.load(ordering: .relaxed) }

    func requestStop() { stop.store(true, ordering: .relaxed) }

    /// Takes one message from the budget; false when it is spent. relaxed: a counter only.
    func takeMessage() -> Bool {
        guard limited else { return true }
        return budget.subtract(1, ordering: .relaxed).newValue >= 0
    }
}
