/// What a frame field counts, for everyone who exports it (JSON, metrics, recordings).
public enum FieldKind: String, Sendable {
    /// Only ever grows while the engine runs (a rate is its difference over time).
    case counter
    /// A value at the moment of sampling.
    case gauge
    /// True or false (stored as 0 or 1).
    case flag
    /// A name for the record (frame number, worker id, slot), not a measurement.
    case identifier
    /// A CLOCK_MONOTONIC time (ns): meaningful against another of the same clock, not alone
    /// (not exported as a metric).
    case instant
    /// A `WorkerState` raw value.
    case state
    /// Counts per `LatencyBuckets` bucket since the start (`LatencyBuckets.count` words).
    case histogram
}

/// The unit a field is stored in. Exporters convert to base units (seconds, bytes).
public enum FieldUnit: String, Sendable {
    case none
    case nanoseconds
    case microseconds
    case bytes
}

/// One field of a frame: its names, meaning, and where it lives in the record and in the ring.
///
/// Its position in the ring (and in recordings) is its index in its table: `FrameLayout` is the
/// only place that says which fields exist and in which order.
public struct FrameField<Record>: @unchecked Sendable {
    // @unchecked: immutable after construction; the key path is an immutable value.
    /// Canonical snake_case name (also the base of the metric name).
    public let name: String
    /// The key in `--json` output, nil when JSON leaves the field out (raw clock readings).
    public let json: String?
    /// One sentence for help texts and metric HELP lines.
    public let help: String
    public let kind: FieldKind
    public let unit: FieldUnit
    private let access: Access

    private enum Access {
        case unsigned(WritableKeyPath<Record, UInt64>)
        case signed(WritableKeyPath<Record, Int>)
        case flag(WritableKeyPath<Record, Bool>)
        case state(WritableKeyPath<Record, WorkerState>)
        case histogram(WritableKeyPath<Record, LatencyHistogram>)
    }

    /// Whether the stored word is a two's-complement signed value.
    public var isSigned: Bool {
        if case .signed = access { return true }
        return false
    }

    /// Words the field takes in the ring.
    public var width: Int {
        if case .histogram = access { return LatencyBuckets.count }
        return 1
    }

    init(_ name: String, json: String?, _ kind: FieldKind, _ unit: FieldUnit = .none, unsigned path: WritableKeyPath<Record, UInt64>, _ help: String) {
        (self.name, self.json, self.kind, self.unit, self.help, access) = (name, json, kind, unit, help, .unsigned(path))
    }

    init(_ name: String, json: String?, _ kind: FieldKind, _ unit: FieldUnit = .none, signed path: WritableKeyPath<Record, Int>, _ help: String) {
        (self.name, self.json, self.kind, self.unit, self.help, access) = (name, json, kind, unit, help, .signed(path))
    }

    init(_ name: String, json: String?, flag path: WritableKeyPath<Record, Bool>, _ help: String) {
        (self.name, self.json, self.kind, self.unit, self.help, access) = (name, json, .flag, .none, help, .flag(path))
    }

    init(_ name: String, json: String?, state path: WritableKeyPath<Record, WorkerState>, _ help: String) {
        (self.name, self.json, self.kind, self.unit, self.help, access) = (name, json, .state, .none, help, .state(path))
    }

    init(_ name: String, histogram path: WritableKeyPath<Record, LatencyHistogram>, _ help: String) {
        (self.name, self.json, self.kind, self.unit, self.help, access) = (name, nil, .histogram, .nanoseconds, help, .histogram(path))
    }

    /// The histogram a `.histogram` field holds (nil for the other kinds).
    public func histogram(of record: Record) -> LatencyHistogram? {
        if case .histogram(let path) = access { return record[keyPath: path] }
        return nil
    }

    /// Stores the field at `words` and returns the words it took.
    func store(_ record: Record, to words: UnsafeMutablePointer<UInt64>, _ store: (UnsafeMutablePointer<UInt64>, UInt64) -> Void) -> Int {
        guard case .histogram(let path) = access else {
            store(words, word(of: record))
            return 1
        }
        let histogram = record[keyPath: path]
        for index in 0..<LatencyBuckets.count { store(words + index, histogram[index]) }
        return LatencyBuckets.count
    }

    /// Sets the field from `words` and returns the words it took.
    func load(into record: inout Record, from words: UnsafeMutablePointer<UInt64>, _ load: (UnsafeMutablePointer<UInt64>) -> UInt64) -> Int {
        guard case .histogram(let path) = access else {
            set(load(words), in: &record)
            return 1
        }
        var counts = [UInt64](repeating: 0, count: LatencyBuckets.count)
        var any: UInt64 = 0
        for index in 0..<LatencyBuckets.count {
            counts[index] = load(words + index)
            any |= counts[index]
        }
        record[keyPath: path] = any == 0 ? LatencyHistogram() : LatencyHistogram(counts: counts)
        return LatencyBuckets.count
    }

    /// The field's value as the ring stores it (a histogram: its total count).
    public func word(of record: Record) -> UInt64 {
        switch access {
        case .histogram(let path): record[keyPath: path].total
        case .unsigned(let path): record[keyPath: path]
        case .signed(let path): UInt64(bitPattern: Int64(record[keyPath: path]))
        case .flag(let path): record[keyPath: path] ? 1 : 0
        case .state(let path): record[keyPath: path].rawValue
        }
    }

    /// Sets a one-word field from a stored word (a histogram field is left as it is).
    public func set(_ word: UInt64, in record: inout Record) {
        switch access {
        case .histogram: break
        case .unsigned(let path): record[keyPath: path] = word
        case .signed(let path): record[keyPath: path] = Int(truncatingIfNeeded: Int64(bitPattern: word))
        case .flag(let path): record[keyPath: path] = word != 0
        case .state(let path): record[keyPath: path] = WorkerState(rawValue: word) ?? .unused
        }
    }
}

/// The one table of frame fields. The ring codec, `--json`, the metrics exposition and
/// recordings are all generated from it: adding a field is one line here (append it, and bump
/// `version` — positions are indices, so an older reader must refuse the new layout).
public enum FrameLayout {
    /// Layout version written in ring headers; a reader refuses any other.
    public static let version: UInt64 = 6

    /// The fixed part of a frame, in ring order.
    public static let frameFields: [FrameField<StatsFrame>] = [
        .init("frame", json: "frame", .identifier, unsigned: \StatsFrame.number, "Frame number: 1 for the first frame published, then consecutive."),
        .init("timestamp", json: nil, .instant, .nanoseconds, unsigned: \StatsFrame.timestampNs, "CLOCK_MONOTONIC when the frame was sampled."),
        .init("uptime", json: "uptime_s", .gauge, .nanoseconds, unsigned: \StatsFrame.uptimeNs, "Time since the engine started."),
        .init("process_cpu", json: "process_cpu_s", .counter, .nanoseconds, unsigned: \StatsFrame.processCPUNs, "CPU time used by the whole engine process since it started."),
        .init("queue_depth", json: "queue_depth", .gauge, signed: \StatsFrame.port.queueDepth, "Packets queued in the completion port, not yet handed to a worker."),
        .init("port_running", json: "port_running", .gauge, signed: \StatsFrame.port.runningThreads, "Workers counted against the concurrency limit (running, not blocked)."),
        .init("concurrency", json: "concurrency", .gauge, signed: \StatsFrame.port.concurrency, "The port's concurrency limit."),
        .init("parked", json: "parked", .gauge, signed: \StatsFrame.port.parkedThreads, "Workers parked in the port's dequeue."),
        .init("pending", json: "pending", .gauge, signed: \StatsFrame.port.pendingOperations, "Overlapped operations submitted and not yet completed."),
        .init("connections_open", json: "connections_open", .gauge, signed: \StatsFrame.engine.openConnections, "Connections open now."),
        .init("connections_peak", json: "connections_peak", .gauge, signed: \StatsFrame.engine.peakConnections, "Most connections open at once since the start."),
        .init("accepted", json: "accepted", .counter, unsigned: \StatsFrame.engine.accepted, "Connections accepted."),
        .init("refused", json: "refused", .counter, unsigned: \StatsFrame.engine.refused, "Connections accepted and closed at once (over --max-connections, or draining)."),
        .init("closed_by_error", json: "closed_by_error", .counter, unsigned: \StatsFrame.engine.closedByError, "Connections closed because an operation failed (reset, broken pipe, ...)."),
        .init("accept_errors", json: "accept_errors", .counter, unsigned: \StatsFrame.engine.acceptErrors, "Accepts that failed (EMFILE, ENFILE, ...)."),
        .init("draining", json: "draining", flag: \StatsFrame.engine.draining, "The drain has started."),
        .init("drained", json: "drained", flag: \StatsFrame.engine.drained, "The drain has finished: workers joined, port closed."),
        .init("retired_accepts", json: nil, .counter, unsigned: \StatsFrame.retired.accepts, "Accept completions of workers whose slots were reused."),
        .init("retired_receives", json: nil, .counter, unsigned: \StatsFrame.retired.receives, "Receive completions of workers whose slots were reused."),
        .init("retired_sends", json: nil, .counter, unsigned: \StatsFrame.retired.sends, "Send completions of workers whose slots were reused."),
        .init("retired_posted", json: nil, .counter, unsigned: \StatsFrame.retired.posted, "Posted packets dequeued by workers whose slots were reused."),
        .init("retired_bytes_in", json: nil, .counter, .bytes, unsigned: \StatsFrame.retired.bytesIn, "Bytes received by workers whose slots were reused."),
        .init("retired_bytes_out", json: nil, .counter, .bytes, unsigned: \StatsFrame.retired.bytesOut, "Bytes sent by workers whose slots were reused."),
        .init("work", json: "work_us", .gauge, .microseconds, signed: \StatsFrame.settings.workMicroseconds, "Simulated CPU work per completion."),
        .init("block", json: "block_us", .gauge, .microseconds, signed: \StatsFrame.settings.blockMicroseconds, "Simulated blocking per completion, inside the port's blocking scope."),
        .init("workers_target", json: "workers_target", .gauge, signed: \StatsFrame.settings.workersTarget, "Workers the operator asked for: started plus added minus retired."),
        .init("online_cpus", json: "online_cpus", .gauge, signed: \StatsFrame.settings.onlineCPUs, "CPUs the engine may run on (its affinity mask)."),
        .init("load_connections", json: nil, .gauge, signed: \StatsFrame.load.connections, "Open connections of the built-in load generator."),
        .init("load_messages", json: nil, .counter, unsigned: \StatsFrame.load.messages, "Messages the built-in load generator got back complete."),
        .init("load_round_trip", histogram: \StatsFrame.load.roundTrip, "Round trips the built-in load generator measured."),
        .init("retired_queue_wait", histogram: \StatsFrame.retiredQueueWait, "Queue waits of workers whose slots were reused."),
        .init("retired_service", histogram: \StatsFrame.retiredService, "Service times of workers whose slots were reused."),
        .init("auto_enabled", json: nil, flag: \StatsFrame.auto.enabled, "Auto mode sizes the pool (--auto, the a key)."),
        .init("auto_paused_until", json: nil, .instant, .nanoseconds, unsigned: \StatsFrame.auto.pausedUntilNs, "CLOCK_MONOTONIC until which an operator's key holds auto mode back."),
        .init("auto_changes", json: nil, .counter, unsigned: \StatsFrame.auto.changes, "Pool changes auto mode made."),
        .init("auto_action", json: nil, .identifier, unsigned: \StatsFrame.auto.actionCode, "Auto mode's last decision: 0 none, 1 add a worker, 2 retire one."),
        .init("auto_reason", json: nil, .identifier, unsigned: \StatsFrame.auto.reasonCode, "Why: 1 starvation, 2 probe, 3 revert, 4 idle."),
        .init("auto_decided_at", json: nil, .instant, .nanoseconds, unsigned: \StatsFrame.auto.decidedAtNs, "CLOCK_MONOTONIC of auto mode's last decision."),
        .init("auto_workers", json: nil, .gauge, signed: \StatsFrame.auto.workers, "Live workers when auto mode last decided."),
        .init("auto_blocked", json: nil, .gauge, signed: \StatsFrame.auto.blocked, "Blocked (or stuck) workers when auto mode last decided."),
        .init("auto_queue_wait_p99", json: nil, .gauge, .nanoseconds, unsigned: \StatsFrame.auto.queueWaitP99Ns, "Pool queue-wait p99 when auto mode last decided."),
        .init("auto_throughput", json: nil, .gauge, unsigned: \StatsFrame.auto.completionsPerSecond, "Completions per second when auto mode last decided."),
        .init("auto_queued", json: nil, .gauge, signed: \StatsFrame.auto.queued, "Packets queued in the port when auto mode last decided."),
        .init("auto_change_pct", json: nil, .gauge, signed: \StatsFrame.auto.changePercent, "A judged probe's completions/s against its baseline, in percent."),
        .init("queue_oldest", json: "queue_oldest_us", .gauge, .microseconds, signed: \StatsFrame.port.queueOldestMicroseconds, "Age of the oldest packet queued in the completion port (0 when none is): a stall shows here while it lasts."),
        .init("auto_queue_oldest", json: nil, .gauge, .microseconds, signed: \StatsFrame.auto.queueOldestMicroseconds, "Age of the oldest queued packet when auto mode last decided."),
        .init("connections_receiving", json: "connections_receiving", .gauge, signed: \StatsFrame.engine.receiving, "Open connections waiting for their client (a receive in flight, nothing owed)."),
        .init("connections_sending", json: "connections_sending", .gauge, signed: \StatsFrame.engine.sending, "Open connections with a send in flight."),
        .init("connections_blocked", json: "connections_blocked", .gauge, signed: \StatsFrame.engine.blocked, "Open connections whose handler runs inside the port's blocking scope."),
        .init("connections_paused", json: "connections_paused", .gauge, signed: \StatsFrame.engine.paused, "Open connections paused by back-pressure (their client does not read)."),
        .init("connections_closing", json: "connections_closing", .gauge, signed: \StatsFrame.engine.closing, "Open connections the server is closing."),
        .init("connections_large_buffers", json: "connections_large_buffers", .gauge, signed: \StatsFrame.engine.largeBuffers, "Large buffers borrowed from the shared pool by open connections."),
        .init("connections_waiting_longest", json: "connections_waiting_longest_us", .gauge, .microseconds, signed: \StatsFrame.engine.longestWaitingMicroseconds, "How long the connection that has waited longest (blocked or paused) has waited."),
        .init("operator_closes", json: "operator_closes", .counter, unsigned: \StatsFrame.engine.operatorCloses, "Connections an operator closed (the x key, close-connection)."),
    ]

    /// One worker row, in ring order.
    public static let workerFields: [FrameField<WorkerSample>] = [
        .init("slot", json: "slot", .identifier, signed: \WorkerSample.slot, "Index of the worker's counter slot (reused after it exits)."),
        .init("id", json: "id", .identifier, signed: \WorkerSample.id, "The engine's worker id (never reused)."),
        .init("state", json: "state", state: \WorkerSample.state, "unused, waiting, running, blocked or exited."),
        .init("accepts", json: "accepts", .counter, unsigned: \WorkerSample.counts.accepts, "Accept completions dequeued."),
        .init("receives", json: "receives", .counter, unsigned: \WorkerSample.counts.receives, "Receive completions dequeued."),
        .init("sends", json: "sends", .counter, unsigned: \WorkerSample.counts.sends, "Send completions dequeued."),
        .init("posted", json: "posted", .counter, unsigned: \WorkerSample.counts.posted, "Posted packets dequeued (shutdown and other control packets)."),
        .init("bytes_in", json: "bytes_in", .counter, .bytes, unsigned: \WorkerSample.counts.bytesIn, "Bytes completed receives brought in."),
        .init("bytes_out", json: "bytes_out", .counter, .bytes, unsigned: \WorkerSample.counts.bytesOut, "Bytes completed sends took out."),
        .init("running", json: "running_s", .counter, .nanoseconds, unsigned: \WorkerSample.runningNs, "Time spent serving completions."),
        .init("waiting", json: "waiting_s", .counter, .nanoseconds, unsigned: \WorkerSample.waitingNs, "Time spent waiting in dequeue."),
        .init("blocked", json: "blocked_s", .counter, .nanoseconds, unsigned: \WorkerSample.blockedNs, "Time spent inside the port's blocking scope."),
        .init("last_completion", json: nil, .instant, .nanoseconds, unsigned: \WorkerSample.lastCompletionNs, "CLOCK_MONOTONIC of the last dequeue (0: never)."),
        .init("state_since", json: nil, .instant, .nanoseconds, unsigned: \WorkerSample.stateSinceNs, "CLOCK_MONOTONIC when the current state began."),
        .init("pending", json: "pending", .gauge, signed: \WorkerSample.pending, "Operations this worker submitted that have not completed."),
        .init("connections", json: "connections", .gauge, signed: \WorkerSample.connections, "Open connections whose last completion this worker served."),
        .init("cpu", json: "cpu_s", .counter, .nanoseconds, unsigned: \WorkerSample.cpuNs, "CPU time the worker thread has used (user and system)."),
        .init("queue_wait", histogram: \WorkerSample.queueWait, "Time packets waited in the port's FIFO before this worker started them (a packet given back by a blocked worker waits on)."),
        .init("service", histogram: \WorkerSample.service, "Time this worker spent on each packet, from its start to the next packet's start (or the next dequeue)."),
    ]

    /// One connection row, in ring order (`ConnectionSample`).
    public static let connectionFields: [FrameField<ConnectionSample>] = [
        .init("id", json: "id", .identifier, unsigned: \ConnectionSample.id, "The connection's number: 1 for the first accepted, never reused."),
        .init("slot", json: "slot", .identifier, signed: \ConnectionSample.slot, "Its slot (the completion key), reused by later connections."),
        .init("state", json: nil, .identifier, unsigned: \ConnectionSample.stateWord, "receiving, sending, blocked, paused, closing or closed (ConnectionState)."),
        .init("close_reason", json: nil, .identifier, unsigned: \ConnectionSample.closeReasonWord, "Why it closed (ConnectionCloseReason; 0 while open)."),
        .init("close_errno", json: "close_errno", .identifier, signed: \ConnectionSample.closeErrno, "The errno of the failed operation that closed it (0: none)."),
        .init("opened_at", json: nil, .instant, .nanoseconds, unsigned: \ConnectionSample.openedAtNs, "CLOCK_MONOTONIC when it was accepted."),
        .init("last_activity", json: nil, .instant, .nanoseconds, unsigned: \ConnectionSample.lastActivityNs, "CLOCK_MONOTONIC when its strand was last served."),
        .init("waiting_since", json: nil, .instant, .nanoseconds, unsigned: \ConnectionSample.waitingSinceNs, "CLOCK_MONOTONIC when its current wait (blocked or paused) began (0: none)."),
        .init("closed_at", json: nil, .instant, .nanoseconds, unsigned: \ConnectionSample.closedAtNs, "CLOCK_MONOTONIC when it closed (0: open)."),
        .init("bytes_in", json: "bytes_in", .counter, .bytes, unsigned: \ConnectionSample.bytesIn, "Bytes received from it."),
        .init("bytes_out", json: "bytes_out", .counter, .bytes, unsigned: \ConnectionSample.bytesOut, "Bytes sent to it."),
        .init("completions", json: "completions", .counter, unsigned: \ConnectionSample.completions, "Completions its strand applied."),
        .init("handler_time", json: "handler_s", .counter, .nanoseconds, unsigned: \ConnectionSample.handlerNs, "Time its handler's calls held a worker (blocking included)."),
        .init("longest_wait", json: "longest_wait_s", .gauge, .nanoseconds, unsigned: \ConnectionSample.longestWaitNs, "The longest any of its packets waited in the port's FIFO."),
        .init("last_wait", json: "last_wait_s", .gauge, .nanoseconds, unsigned: \ConnectionSample.lastWaitNs, "How long its last packet waited in the port's FIFO."),
        .init("handler_figure", json: nil, .counter, unsigned: \ConnectionSample.handlerFigure, "The handler's own count for it (requests for HTTP)."),
        .init("inflight", json: "inflight", .gauge, signed: \ConnectionSample.inflight, "Receives and sends in flight."),
        .init("held", json: "held_bytes", .gauge, .bytes, signed: \ConnectionSample.heldBytes, "Buffer bytes it holds."),
        .init("buffered", json: "buffered_bytes", .gauge, .bytes, signed: \ConnectionSample.bufferedBytes, "Bytes in its buffers not yet consumed or sent."),
        .init("large_input", json: "large_input", flag: \ConnectionSample.largeInput, "Its input is a large buffer from the shared pool."),
        .init("large_output", json: "large_output", flag: \ConnectionSample.largeOutput, "Its output is a large buffer from the shared pool."),
        .init("worker", json: "worker", .identifier, signed: \ConnectionSample.worker, "The id of the worker that last ran its strand (-1: none)."),
        .init("peer_meta", json: nil, .identifier, unsigned: \ConnectionSample.peerMeta, "Its peer's family and port (PeerAddress)."),
        .init("peer_high", json: nil, .identifier, unsigned: \ConnectionSample.peerHigh, "Its peer's address, first word."),
        .init("peer_low", json: nil, .identifier, unsigned: \ConnectionSample.peerLow, "Its peer's address, second word."),
        .init("bytes_in_rate", json: "bytes_in_per_s", .gauge, unsigned: \ConnectionSample.bytesInPerSecond, "Bytes per second received over the frame's interval."),
        .init("bytes_out_rate", json: "bytes_out_per_s", .gauge, unsigned: \ConnectionSample.bytesOutPerSecond, "Bytes per second sent over the frame's interval."),
        .init("handler_figure_rate", json: nil, .gauge, unsigned: \ConnectionSample.figurePerSecond, "The handler's count per second over the frame's interval."),
    ]

    /// Words of one connection row in the ring.
    static let connectionWordCount = connectionFields.reduce(0) { $0 + $1.width }

    /// Words of a frame's fixed part in the ring: the fields, then the worker count.
    static let frameWordCount = frameFields.reduce(1) { $0 + $1.width }
    /// Words of one worker row in the ring.
    static let workerWordCount = workerFields.reduce(0) { $0 + $1.width }
}
