import EngineStats

/// One line of the connections table: a connection as its frame carries it, with its times
/// at the frame's moment.
public struct ConnectionRow: Sendable, Hashable {
    public var id: UInt64
    public var peer: String
    public var state: ConnectionState
    public var closeReason: ConnectionCloseReason
    public var closeErrno: Int
    public var bytesInPerSecond: Double
    public var bytesOutPerSecond: Double
    public var figurePerSecond: Double
    /// How long it has waited (blocked or paused) at the frame's moment, 0 when it does not.
    public var waitingNs: UInt64
    /// Its last packet's FIFO wait, and its longest.
    public var lastWaitNs: UInt64
    public var longestWaitNs: UInt64
    public var inflight: Int
    public var heldBytes: Int
    public var bufferedBytes: Int
    public var largeInput: Bool
    public var largeOutput: Bool
    public var ageNs: UInt64
    public var idleNs: UInt64
    /// The worker that last ran its strand (-1: none yet).
    public var worker: Int
    /// For a closed connection: how long ago it closed, at the newest frame.
    public var closedForNs: UInt64?
    /// The sample the row was made from (the detail pane shows all of it).
    public var sample: ConnectionSample

    /// The row for `sample` at `now` (the newest frame's timestamp).
    public init(_ sample: ConnectionSample, now: UInt64) {
        self.sample = sample
        id = sample.id
        peer = sample.peer.description
        state = sample.state
        closeReason = sample.closeReason
        closeErrno = sample.closeErrno
        bytesInPerSecond = Double(sample.bytesInPerSecond)
        bytesOutPerSecond = Double(sample.bytesOutPerSecond)
        figurePerSecond = Double(sample.figurePerSecond)
        waitingNs = sample.waitingNs(at: now)
        lastWaitNs = sample.lastWaitNs
        longestWaitNs = sample.longestWaitNs
        inflight = sample.inflight
        heldBytes = sample.heldBytes
        bufferedBytes = sample.bufferedBytes
        largeInput = sample.largeInput
        largeOutput = sample.largeOutput
        ageNs = sample.ageNs(at: now)
        idleNs = sample.idleNs(at: now)
        worker = sample.worker
        closedForNs = sample.closedAtNs > 0 ? (now > sample.closedAtNs ? now - sample.closedAtNs : 0) : nil
    }

    public var isClosed: Bool { state == .closed }

    /// Bytes per second both ways: the default sort.
    public var bytesPerSecond: Double { bytesInPerSecond + bytesOutPerSecond }

    /// The wait the WAIT column shows: waiting now, else its last packet's FIFO wait.
    public var waitShownNs: UInt64 { waitingNs > 0 ? waitingNs : lastWaitNs }

    /// Why it closed, in words ("reset", "timeout", "failed (errno 32)").
    public var closeText: String {
        closeReason == .failed && closeErrno != 0 ? "failed (errno \(closeErrno))" : closeReason.description
    }

    /// The INFO column: why it closed, how long it has waited, what it holds.
    public var info: String {
        if isClosed { return closeText }
        var parts: [String] = []
        if waitingNs > 0 { parts.append("\(state) \(Format.duration(waitingNs))") }
        if largeInput || largeOutput {
            parts.append("large " + [largeInput ? "in" : nil, largeOutput ? "out" : nil].compactMap { $0 }.joined(separator: "+"))
        }
        if bufferedBytes > 0 { parts.append("\(Format.bytes(UInt64(clamping: bufferedBytes))) queued") }
        return parts.joined(separator: " · ")
    }
}

/// Columns the connections table can be sorted by, in the order `s` cycles through them.
public enum ConnectionSortColumn: Int, Sendable, CaseIterable {
    case id, peer, state, bytes, bytesIn, bytesOut, figure, wait, inflight, held, age, idle, worker

    /// The column's title; the handler's figure is titled by its name ("requests" → "REQ/s").
    public func title(figure: String) -> String {
        switch self {
        case .id: "ID"
        case .peer: "PEER"
        case .state: "STATE"
        case .bytes: "B/s"
        case .bytesIn: "IN/s"
        case .bytesOut: "OUT/s"
        case .figure: figure.isEmpty ? "-/s" : String(figure.prefix(3)).uppercased() + "/s"
        case .wait: "WAIT"
        case .inflight: "INFL"
        case .held: "HELD"
        case .age: "AGE"
        case .idle: "IDLE"
        case .worker: "WKR"
        }
    }

    /// Whether `a` comes before `b` in this column's natural order (numbers: largest first;
    /// id, peer, state and worker ascending).
    func precedes(_ a: ConnectionRow, _ b: ConnectionRow) -> Bool {
        switch self {
        case .id: return a.id < b.id
        case .peer: return a.peer < b.peer
        case .state: return a.state.rawValue < b.state.rawValue
        case .bytes: return a.bytesPerSecond > b.bytesPerSecond
        case .bytesIn: return a.bytesInPerSecond > b.bytesInPerSecond
        case .bytesOut: return a.bytesOutPerSecond > b.bytesOutPerSecond
        case .figure: return a.figurePerSecond > b.figurePerSecond
        case .wait: return a.waitShownNs > b.waitShownNs
        case .inflight: return a.inflight > b.inflight
        case .held: return a.heldBytes > b.heldBytes
        case .age: return a.ageNs > b.ageNs
        case .idle: return a.idleNs > b.idleNs
        case .worker: return a.worker < b.worker
        }
    }
}
