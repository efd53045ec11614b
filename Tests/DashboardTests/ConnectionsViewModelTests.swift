@testable import Dashboard
import EngineStats
import Testing

/// A connection row as a frame carries it.
func connection(id: UInt64, port: UInt16, state: ConnectionState = .receiving, bytesPerSecond: UInt64 = 0,
                waitingSince: UInt64 = 0, closedAt: UInt64 = 0, reason: ConnectionCloseReason = .none) -> ConnectionSample {
    var row = ConnectionSample()
    row.id = id
    row.slot = Int(id)
    row.state = state
    row.bytesInPerSecond = bytesPerSecond
    row.bytesOutPerSecond = bytesPerSecond
    row.openedAtNs = 1_000_000_000
    row.lastActivityNs = 10_500_000_000
    row.waitingSinceNs = waitingSince
    row.closedAtNs = closedAt
    row.closeReason = reason
    row.heldBytes = 2048
    row.worker = 0
    row.inflight = state == .closed ? 0 : 1
    row.peer = PeerAddress(ipv4: (127, 0, 0, 1), port: port)
    return row
}

/// The connections table (Tab): rows, order, closes, selection — pure, as the dashboard draws it.
@Suite struct ConnectionsViewModelTests {
    func connectionsModel(_ rows: [ConnectionSample]) -> DashboardModel {
        var model = model(workers: 2) { $0.connections = rows; $0.engine.openConnections = 100 }
        model.toggleTable()
        return model
    }

    @Test func rowsGoBusiestFirstAndClosesLastDimmedWithWhy() {
        let model = connectionsModel([
            connection(id: 3, port: 4003, state: .blocked, waitingSince: 10_000_000_000),
            connection(id: 1, port: 4001, bytesPerSecond: 10),
            connection(id: 2, port: 4002, bytesPerSecond: 5_000_000),
            connection(id: 4, port: 4004, state: .closed, closedAt: 10_900_000_000, reason: .byOperator),
        ])
        #expect(model.connectionRows.map(\.id) == [2, 1, 3, 4])
        let screen = render(model, width: 132, height: 36)
        let lines = (0..<36).map(screen.line)
        let title = lines[DashboardView.headerRows - 1]
        for column in ["ID", "PEER", "STATE", "B/s", "IN/s", "OUT/s", "WAIT", "HELD", "AGE", "IDLE", "INFO"] {
            #expect(title.contains(column), "\(column): \(title)")
        }
        #expect(title.contains("top 3 of 100"), "\(title)")
        let first = lines[DashboardView.headerRows]
        #expect(first.contains("127.0.0.1:4002") && first.contains("10.0M"), "\(first)")
        let blocked = lines[DashboardView.headerRows + 2]
        #expect(blocked.contains("blocked") && blocked.contains("blocked 1.00s"), "waits in INFO: \(blocked)")
        let closed = lines[DashboardView.headerRows + 3]
        #expect(closed.contains("closed") && closed.contains("closed by operator"), "\(closed)")
        #expect(screen[2, DashboardView.headerRows + 3].style.dim, "a closed row is dimmed")
        // The operator's close is in the event log, once.
        #expect(model.events.filter { $0.text.contains("connection 4 (127.0.0.1:4004) closed by an operator") }.count == 1)
        // The key bar says what Tab and x do here.
        #expect(lines[35].hasPrefix("F1Help TabWorkers xClose EnterDetail"), "\(lines[35])")
    }

    @Test func closesStayForAFewSecondsThenGo() {
        var model = connectionsModel([connection(id: 9, port: 4009, state: .closed, closedAt: 10_900_000_000, reason: .reset)])
        #expect(model.connectionRows.map(\.closeText) == ["reset"])
        var later = model.frame!
        later.number += 1
        later.connections = []
        later.timestampNs += 3_000_000_000
        model.ingest(later)
        #expect(model.connectionRows.map(\.id) == [9], "still shown 3 s later")
        later.number += 1
        later.timestampNs += 3_000_000_000
        model.ingest(later)
        #expect(model.connectionRows.isEmpty, "gone after 5 s")
    }

    @Test func theSelectionNeverMovesToAnotherConnectionByItself() {
        var model = connectionsModel([connection(id: 1, port: 4001, bytesPerSecond: 300),
                                      connection(id: 2, port: 4002, bytesPerSecond: 200),
                                      connection(id: 3, port: 4003, bytesPerSecond: 100)])
        #expect(model.selectedConnection?.id == 1, "the first row until one is chosen")
        model.moveSelection(by: 2, visibleRows: 10)
        #expect(model.selectedConnection?.id == 3)
        // Connection 3 leaves the frame's rows: nothing is selected (x must not close row 0).
        var next = model.frame!
        next.number += 1
        next.timestampNs += 500_000_000
        next.connections = Array(next.connections.prefix(2))
        model.ingest(next)
        #expect(model.selectedConnectionIndex == nil && model.selectedConnection == nil)
        // Moving again starts from the top.
        model.moveSelection(by: 1, visibleRows: 10)
        #expect(model.selectedConnection?.id == 1)
    }

    @Test func sortingCyclesThroughTheConnectionColumns() {
        var model = connectionsModel([connection(id: 1, port: 4001)])
        model.connectionFigure = "requests"
        #expect(model.sortTitle == "B/s")
        model.cycleSort(1)
        #expect(model.sortTitle == "IN/s")
        for _ in 0..<4 { model.cycleSort(1) }
        #expect(model.sortTitle == "INFL")
        model.connectionFigure = ""
        model.connectionSort = .bytesOut
        model.cycleSort(1)
        #expect(model.sortTitle == "WAIT", "without a figure its column is skipped")
        model.toggleTable()
        #expect(model.sortTitle == "ID", "the workers keep their own sort")
    }
}
