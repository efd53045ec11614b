import EngineStats

/// Everything the dashboard shows, derived from stats frames and the operator's choices.
/// Pure: no terminal, no engine; the controller feeds it frames and facts.
public struct DashboardModel: Sendable {
    /// Static facts about the engine.
    public var backend: String
    public var address: String
    /// The newest frame taken in (nil before the first).
    public private(set) var frame: StatsFrame?
    /// Rates between the previous frame and `frame`.
    public private(set) var rates = FrameRates()
    /// Recent rates for the sparklines, oldest first.
    public private(set) var history = RateHistory()
    /// Points of history kept (more than any terminal is wide).
    public static let historyLength = 300
    /// How long an exited worker stays in the table, dimmed.
    public var exitedLingerNs: UInt64 = 5_000_000_000

    public var sort: SortColumn = .id
    public var reversed = false
    /// The selected worker, by id (kept while sorting changes order).
    public private(set) var selectedID: Int?
    /// First table row shown.
    public private(set) var scroll = 0
    public var paused = false
    public var showHelp = false
    /// The status line: the last action and its outcome.
    public var status = "" 
    /// The built-in load: nil when off, else its connection count.
    public var loadConnections: Int?
    /// Simulated CPU work per completion, in µs.
    public var workMicroseconds = 0
    /// A drain was asked for (the frames say when it started and finished).
    public var drainRequested = false
    /// What is wrong now, from the newest two frames (`Warnings`).
    public private(set) var warnings: [Warning] = []
    /// Pool queue wait p99 per interval (ns; 0 when nothing was dequeued), oldest first.
    public private(set) var queueWaitHistory: [Double] = []
    /// The last actions and warnings, oldest first, with the engine's uptime when they happened.
    public private(set) var events: [Event] = []
    /// Events kept.
    public static let eventCapacity = 50
    /// The worker whose detail pane is open (nil: none).
    public var detailID: Int?
    /// Showing a recording (`iocptop replay`): the key bar and help say the replay keys.
    public var replayMode = false
    /// The engine's sampling period (sparklines say the time they span).
    public var periodNs: UInt64 = 500_000_000

    /// One line of the event log.
    public struct Event: Sendable, Hashable {
        public var uptimeNs: UInt64
        public var text: String
        public var isWarning: Bool
    }

    /// The server's handler metrics (from its identity), and their figures over the last
    /// interval, shown in the header.
    public var handler = HandlerSchema.empty
    /// The protocol served ("echo", "http", a server's own), named in the header.
    public var protocolName = "echo"
    public private(set) var handlerFigures: [HandlerFigure] = []

    // MARK: the connections table (Tab)

    /// Which table shows: the workers or the connections.
    public var table: TableKind = .workers
    public var connectionSort: ConnectionSortColumn = .bytes
    public var connectionReversed = false
    /// The selected connection, by id, and the first connection row shown.
    public internal(set) var selectedConnectionID: UInt64?
    public internal(set) var connectionScroll = 0
    /// The connection whose detail pane is open (nil: none).
    public var connectionDetailID: UInt64?
    /// The name of the handler's per-connection figure ("requests"; "" when none).
    public var connectionFigure = ""
    /// Connections that closed lately, shown dimmed with why, until `closedLingerNs` after.
    public internal(set) var recentlyClosed: [ConnectionSample] = []
    public var closedLingerNs: UInt64 = 5_000_000_000
    /// Bytes per second of the connections lately shown, newest last (the detail pane's
    /// sparkline), by id; kept for the connections in the newest frame and the one in detail.
    public internal(set) var connectionHistory: [UInt64: [Double]] = [:]
    static let connectionHistoryLength = 120
    /// The connection `x` asked to close, until the operator confirms (`y`) or not.
    public var pendingClose: ConnectionRow?

    /// The tables the dashboard switches between.
    public enum TableKind: Sendable, Hashable {
        case workers, connections
    }

    public init(backend: String, address: String) {
        self.backend = backend
        self.address = address
    }

    /// Takes in a new frame (ignored while paused).
    public mutating func ingest(_ next: StatsFrame) {
        guard !paused else { return }
        if let previous = frame {
            rates = FrameRates(previous: previous, current: next)
            let point = RateHistory(frames: [previous, next])
            history.completionsPerSecond.append(contentsOf: point.completionsPerSecond)
            history.bytesInPerSecond.append(contentsOf: point.bytesInPerSecond)
            history.bytesOutPerSecond.append(contentsOf: point.bytesOutPerSecond)
            if history.completionsPerSecond.count > Self.historyLength {
                let excess = history.completionsPerSecond.count - Self.historyLength
                history.completionsPerSecond.removeFirst(excess)
                history.bytesInPerSecond.removeFirst(excess)
                history.bytesOutPerSecond.removeFirst(excess)
            }
        } else {
            rates = FrameRates(previous: nil, current: next)
        }
        let previous = frame
        if !handler.metrics.isEmpty { handlerFigures = handler.figures(previous: previous, current: next) }
        frame = next
        followConnections(next)
        workMicroseconds = next.settings.workMicroseconds
        queueWaitHistory.append(Double(rates.queueWait?.p99 ?? 0))
        if queueWaitHistory.count > Self.historyLength { queueWaitHistory.removeFirst(queueWaitHistory.count - Self.historyLength) }
        // Auto mode's decisions, each once: on the status line and in the event log.
        if let previous, next.auto.changes > previous.auto.changes, let message = next.auto.message {
            status = message
            log(message, isWarning: false)
        }
        let before = Set(warnings.map(\.kind))
        warnings = Warnings.evaluate(previous: previous, current: next, rates: rates)
        for warning in warnings where !before.contains(warning.kind) {
            log(warning.message, isWarning: true)
        }
    }

    /// Forgets the frames taken in (rates, history, warnings and the event log they wrote),
    /// keeping the operator's choices: a replay that jumps rebuilds all of it from the frames
    /// before the new position.
    public mutating func clearFrames() {
        frame = nil
        rates = FrameRates()
        handlerFigures = []
        history = RateHistory()
        queueWaitHistory = []
        warnings = []
        events = []
        recentlyClosed = []
        connectionHistory = [:]
    }

    /// Sets the status line and keeps it in the event log.
    public mutating func note(_ text: String) {
        status = text
        log(text, isWarning: false)
    }

    mutating func log(_ text: String, isWarning: Bool) {
        events.append(Event(uptimeNs: frame?.uptimeNs ?? 0, text: text, isWarning: isWarning))
        if events.count > Self.eventCapacity { events.removeFirst(events.count - Self.eventCapacity) }
    }

    /// The rates of the worker whose detail pane is open.
    public var detail: (rates: WorkerRates, sample: WorkerSample)? {
        guard let detailID, let frame,
              let sample = frame.workers.first(where: { $0.id == detailID }),
              let rates = rates.workers.first(where: { $0.id == detailID }) else { return nil }
        return (rates, sample)
    }

    /// The table's rows: live workers, and exited ones for `exitedLingerNs`, sorted.
    public var rows: [WorkerRow] {
        var rows = rates.workers
            .filter { $0.state != .exited || ($0.exitedForNs ?? 0) < exitedLingerNs }
            .map(WorkerRow.init)
        let column = sort
        rows.sort { a, b in
            if column.precedes(a, b) { return !reversed }
            if column.precedes(b, a) { return reversed }
            return a.id < b.id
        }
        return rows
    }

    /// Index of the selected row in `rows` (the first row when the selection left).
    public var selectedIndex: Int? {
        let rows = rows
        guard !rows.isEmpty else { return nil }
        return rows.firstIndex { $0.id == selectedID } ?? 0
    }

    /// Moves the selection by `delta` rows and scrolls so it stays within `visibleRows`.
    public mutating func moveSelection(by delta: Int, visibleRows: Int) {
        if table == .connections { return moveConnectionSelection(by: delta, visibleRows: visibleRows) }
        let rows = rows
        guard !rows.isEmpty else { selectedID = nil; return }
        let current = rows.firstIndex { $0.id == selectedID } ?? 0
        let target = min(rows.count - 1, max(0, current + delta))
        selectedID = rows[target].id
        keepSelectionVisible(visibleRows: visibleRows)
    }

    /// Adjusts the scroll so the selected row is within the `visibleRows` shown.
    public mutating func keepSelectionVisible(visibleRows: Int) {
        if table == .connections { return keepConnectionSelectionVisible(visibleRows: visibleRows) }
        let rows = rows
        let count = rows.count
        let index = rows.firstIndex { $0.id == selectedID } ?? 0
        let height = max(1, visibleRows)
        if index < scroll { scroll = index }
        if index >= scroll + height { scroll = index - height + 1 }
        scroll = max(0, min(scroll, max(0, count - height)))
    }

    /// Cycles the sort column forward (`step` 1) or back (-1).
    public mutating func cycleSort(_ step: Int) {
        if table == .connections {
            let all = ConnectionSortColumn.allCases.filter { $0 != .figure || !connectionFigure.isEmpty }
            let index = all.firstIndex(of: connectionSort) ?? 0
            connectionSort = all[(index + step + all.count) % all.count]
            return
        }
        let all = SortColumn.allCases
        sort = all[(sort.rawValue + step + all.count) % all.count]
    }

    /// Where the drain is, from the frames.
    public var drainPhase: DrainPhase {
        guard let engine = frame?.engine else { return drainRequested ? .draining : .none }
        if engine.drained { return .drained }
        if engine.draining || drainRequested { return .draining }
        return .none
    }
}

/// The drain as the dashboard shows it.
public enum DrainPhase: Sendable, Hashable {
    case none, draining, drained
}
