import EngineStats

extension DashboardModel {
    /// Takes the closes of a frame the viewer skipped (it reads the newest frame; the closes of
    /// the ones between are in those frames only).
    public mutating func takeCloses(of skipped: StatsFrame) {
        guard !paused else { return }
        noteCloses(skipped)
    }

    private mutating func noteCloses(_ frame: StatsFrame) {
        for row in frame.connections where row.state == .closed && !recentlyClosed.contains(where: { $0.id == row.id }) {
            recentlyClosed.append(row)
            if row.closeReason == .byOperator {
                // Whoever asked (this viewer, another, the control socket): one line in the log.
                log("connection \(row.id) (\(row.peer)) closed by an operator", isWarning: false)
            }
        }
    }

    /// Keeps the closes and the per-connection history a new frame brings.
    mutating func followConnections(_ next: StatsFrame) {
        let now = next.timestampNs
        noteCloses(next)
        recentlyClosed.removeAll { now > $0.closedAtNs && now - $0.closedAtNs > closedLingerNs }
        var seen = Set<UInt64>()
        for row in next.connections where row.state != .closed {
            seen.insert(row.id)
            connectionHistory[row.id, default: []].append(Double(row.bytesPerSecond))
            if connectionHistory[row.id]!.count > Self.connectionHistoryLength { connectionHistory[row.id]!.removeFirst() }
        }
        for id in connectionHistory.keys where !seen.contains(id) && id != connectionDetailID {
            connectionHistory[id] = nil
        }
    }

    /// The connections table: the open connections of the newest frame, sorted, then the ones
    /// that closed in the last `closedLingerNs`, newest close first.
    public var connectionRows: [ConnectionRow] {
        guard let frame else { return [] }
        let now = frame.timestampNs
        var open = frame.connections.filter { $0.state != .closed }.map { ConnectionRow($0, now: now) }
        let column = connectionSort, reversed = connectionReversed
        open.sort { a, b in
            if column.precedes(a, b) { return !reversed }
            if column.precedes(b, a) { return reversed }
            // Ties (the idle at 0 B/s): whoever waits longest first, then the older.
            if a.waitingNs != b.waitingNs { return a.waitingNs > b.waitingNs }
            return a.id < b.id
        }
        let closed = recentlyClosed.filter { sample in !open.contains { $0.id == sample.id } }
            .sorted { $0.closedAtNs > $1.closedAtNs }
            .map { ConnectionRow($0, now: now) }
        return open + closed
    }

    /// Index of the selected connection in `connectionRows`: the first row until one is
    /// chosen; nil when the chosen one is no longer shown (it left the frame's top rows) —
    /// the highlight never moves to another connection by itself, so `x` cannot close a
    /// connection the operator did not choose.
    public var selectedConnectionIndex: Int? {
        let rows = connectionRows
        guard !rows.isEmpty else { return nil }
        guard let selectedConnectionID else { return 0 }
        return rows.firstIndex { $0.id == selectedConnectionID }
    }

    /// The selected connection's row.
    public var selectedConnection: ConnectionRow? {
        selectedConnectionIndex.map { connectionRows[$0] }
    }

    /// The connection whose detail pane is open, as the newest frame (or the closes) show it.
    public var connectionDetail: ConnectionRow? {
        guard let connectionDetailID else { return nil }
        return connectionRows.first { $0.id == connectionDetailID }
    }

    mutating func moveConnectionSelection(by delta: Int, visibleRows: Int) {
        let rows = connectionRows
        guard !rows.isEmpty else { selectedConnectionID = nil; return }
        // From the chosen row (the first until one is chosen); from the top when it is gone.
        guard let current = selectedConnectionID == nil ? 0 : rows.firstIndex(where: { $0.id == selectedConnectionID }) else {
            selectedConnectionID = rows[min(rows.count - 1, max(0, delta > 0 ? delta - 1 : 0))].id
            keepConnectionSelectionVisible(visibleRows: visibleRows)
            return
        }
        selectedConnectionID = rows[min(rows.count - 1, max(0, current + delta))].id
        keepConnectionSelectionVisible(visibleRows: visibleRows)
    }

    mutating func keepConnectionSelectionVisible(visibleRows: Int) {
        let rows = connectionRows
        let height = max(1, visibleRows)
        // A chosen connection that left the rows: the table stays where it is.
        if let index = selectedConnectionID == nil ? 0 : rows.firstIndex(where: { $0.id == selectedConnectionID }) {
            if index < connectionScroll { connectionScroll = index }
            if index >= connectionScroll + height { connectionScroll = index - height + 1 }
        }
        connectionScroll = max(0, min(connectionScroll, max(0, rows.count - height)))
    }

    /// Switches between the workers and the connections table (detail panes close).
    public mutating func toggleTable() {
        table = table == .workers ? .connections : .workers
        detailID = nil
        connectionDetailID = nil
    }

    /// The sort column's title in the table shown (for the status line).
    public var sortTitle: String {
        table == .connections ? connectionSort.title(figure: connectionFigure) : sort.description
    }
}
