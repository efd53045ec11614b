import EngineStats

/// One line of the worker table.
public struct WorkerRow: Sendable, Hashable {
    public var id: Int
    public var state: WorkerState
    public var busyPercent: Double
    public var cpuPercent: Double
    public var completionsPerSecond: Double
    public var totalCompletions: UInt64
    public var megabytesInPerSecond: Double
    public var megabytesOutPerSecond: Double
    public var pending: Int
    public var connections: Int
    /// Time since its last completion (nil: never had one).
    public var idleNs: UInt64?
    /// For an exited worker, how long ago it exited.
    public var exitedForNs: UInt64?
    /// Queue wait and service time at the 99th percentile over the interval, in ns.
    public var queueWaitP99: UInt64?
    public var serviceP99: UInt64?

    public init(_ rates: WorkerRates) {
        id = rates.id
        state = rates.state
        busyPercent = rates.busyPercent
        cpuPercent = rates.cpuPercent
        completionsPerSecond = rates.completionsPerSecond
        totalCompletions = rates.totalCompletions
        megabytesInPerSecond = rates.bytesInPerSecond / 1e6
        megabytesOutPerSecond = rates.bytesOutPerSecond / 1e6
        pending = rates.pending
        connections = rates.connections
        idleNs = rates.sinceLastCompletionNs
        exitedForNs = rates.exitedForNs
        queueWaitP99 = rates.queueWait?.p99
        serviceP99 = rates.service?.p99
    }

    /// The worker's saturation, one figure on both backends: the larger of its busy share (not
    /// waiting in dequeue) and its CPU share — on io_uring the socket work runs inside the
    /// leader's dequeue, which is CPU spent on work, not idleness.
    public var saturationPercent: Double { max(busyPercent, cpuPercent) }
}

/// Columns the worker table can be sorted by, in the order `s` cycles through them.
public enum SortColumn: Int, Sendable, CaseIterable, CustomStringConvertible {
    case id, state, busy, cpu, rate, total, megabytesIn, megabytesOut, pending, connections, idle, queueWait, service

    public var description: String {
        switch self {
        case .id: "ID"
        case .state: "STATE"
        case .busy: "BUSY"
        case .cpu: "CPU%"
        case .rate: "COMPL/S"
        case .total: "TOTAL"
        case .megabytesIn: "IN MB/s"
        case .megabytesOut: "OUT MB/s"
        case .pending: "PEND"
        case .connections: "CONNS"
        case .idle: "IDLE"
        case .queueWait: "WAIT p99"
        case .service: "SVC p99"
        }
    }

    /// Whether `a` comes before `b` in this column's natural order (numbers: largest first,
    /// as in htop; id and state: ascending).
    func precedes(_ a: WorkerRow, _ b: WorkerRow) -> Bool {
        switch self {
        case .id: return a.id < b.id
        case .state: return (a.state.rawValue, a.id) < (b.state.rawValue, b.id)
        case .busy: return a.saturationPercent > b.saturationPercent
        case .cpu: return a.cpuPercent > b.cpuPercent
        case .rate: return a.completionsPerSecond > b.completionsPerSecond
        case .total: return a.totalCompletions > b.totalCompletions
        case .megabytesIn: return a.megabytesInPerSecond > b.megabytesInPerSecond
        case .megabytesOut: return a.megabytesOutPerSecond > b.megabytesOutPerSecond
        case .pending: return a.pending > b.pending
        case .connections: return a.connections > b.connections
        case .idle: return (a.idleNs ?? .max) > (b.idleNs ?? .max)
        case .queueWait: return (a.queueWaitP99 ?? 0) > (b.queueWaitP99 ?? 0)
        case .service: return (a.serviceP99 ?? 0) > (b.serviceP99 ?? 0)
        }
    }
}
