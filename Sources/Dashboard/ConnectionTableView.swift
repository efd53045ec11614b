import EngineStats

extension DashboardView {
    /// A connections table column.
    struct ConnectionColumn {
        var sort: ConnectionSortColumn
        var width: Int
        var rightAligned = true
    }

    /// Columns that fit `width`, in order, and the INFO column's width (the rest). Narrow
    /// terminals drop IN/s and OUT/s first (B/s stays), then WKR, AGE, INFL, HELD, IDLE.
    static func connectionLayout(width: Int, figure: String) -> (columns: [ConnectionColumn], info: Int) {
        var columns = [
            ConnectionColumn(sort: .id, width: 6),
            ConnectionColumn(sort: .peer, width: 21, rightAligned: false),
            ConnectionColumn(sort: .state, width: 9, rightAligned: false),
            ConnectionColumn(sort: .bytes, width: 8),
            ConnectionColumn(sort: .bytesIn, width: 8),
            ConnectionColumn(sort: .bytesOut, width: 8),
            ConnectionColumn(sort: .figure, width: 7),
            ConnectionColumn(sort: .wait, width: 7),
            ConnectionColumn(sort: .inflight, width: 4),
            ConnectionColumn(sort: .held, width: 8),
            ConnectionColumn(sort: .age, width: 8),
            ConnectionColumn(sort: .idle, width: 7),
            ConnectionColumn(sort: .worker, width: 4),
        ]
        if figure.isEmpty { columns.removeAll { $0.sort == .figure } }
        let minimumInfo = 8
        func fixed() -> Int { columns.reduce(0) { $0 + $1.width + 1 } + 1 }
        for drop in [ConnectionSortColumn.bytesIn, .bytesOut, .worker, .age, .inflight, .held, .idle] where fixed() + minimumInfo > width {
            columns.removeAll { $0.sort == drop }
        }
        return (columns, max(0, width - fixed()))
    }

    func drawConnectionTable(_ model: DashboardModel, into screen: inout Screen) {
        let (columns, info) = Self.connectionLayout(width: screen.width, figure: model.connectionFigure)
        let titleY = Self.headerRows - 1
        let header = CellStyle(.header, reverse: true)
        screen.paint(x: 0, y: titleY, count: screen.width, style: header)
        var x = 1
        for column in columns {
            var title = column.sort.title(figure: model.connectionFigure)
            let sorted = column.sort == model.connectionSort
            if sorted { title += model.connectionReversed ? (unicode ? "▲" : "^") : (unicode ? "▼" : "v") }
            let text = column.rightAligned ? Format.right(title, column.width) : Format.left(title, column.width)
            screen.put(text, x: x, y: titleY, style: sorted ? CellStyle(.accent, bold: true, reverse: true) : header, limit: column.width)
            x += column.width + 1
        }
        if info >= 4 { screen.put("INFO", x: x, y: titleY, style: header, limit: info) }
        let infoTitleEnd = x + 4

        let rows = model.connectionRows
        let visible = Self.tableRows(height: screen.height)
        let selected = model.selectedConnectionIndex
        let first = min(model.connectionScroll, max(0, rows.count - visible))
        if rows.isEmpty {
            let open = model.frame?.engine.openConnections ?? 0
            let text = open > 0 ? "   \(open) open connections; none in this frame yet" : "   no connections open"
            screen.put(text, x: 0, y: Self.headerRows, style: CellStyle(.muted, dim: true))
        }
        for (offset, row) in rows.dropFirst(first).prefix(visible).enumerated() {
            let y = Self.headerRows + offset
            let base = CellStyle(row.isClosed ? .muted : .normal, dim: row.isClosed)
            x = 1
            for column in columns {
                let text = connectionCell(row, column.sort)
                let aligned = column.rightAligned ? Format.right(text, column.width) : Format.left(text, column.width)
                var style = base
                if column.sort == .state, !row.isClosed { style = connectionStateStyle(row.state) }
                if column.sort == .wait, !row.isClosed, row.waitShownNs >= Warnings.longQueueWaitNs { style = CellStyle(.warning, bold: true) }
                screen.put(aligned, x: x, y: y, style: style, limit: column.width)
                x += column.width + 1
            }
            if info > 0 {
                let waiting = !row.isClosed && row.waitingNs > 0
                screen.put(row.info, x: x, y: y, style: waiting ? CellStyle(.warning) : base, limit: info)
            }
            if first + offset == selected {
                for column in 0..<screen.width { screen[column, y].style = CellStyle(.selection, bold: true, reverse: true) }
            }
        }
        let open = model.frame?.engine.openConnections ?? 0
        let shownOpen = rows.filter { !$0.isClosed }.count
        let summary = rows.count > visible
            ? "\(first + 1)–\(min(rows.count, first + visible)) of \(rows.count)"
            : shownOpen < open ? "top \(shownOpen) of \(open)" : ""
        // At the right end, or right after INFO's title when the end is too close; not at all
        // when it would cover a title.
        let summaryX = max(infoTitleEnd + 2, screen.width - summary.count - 1)
        if !summary.isEmpty, summaryX + summary.count < screen.width {
            screen.put(summary, x: summaryX, y: titleY, style: header)
        }
        if rows.count <= visible {
            drawEvents(model, from: Self.headerRows + max(1, rows.count) + 1, to: Self.headerRows + visible, into: &screen)
        }
    }

    private func connectionCell(_ row: ConnectionRow, _ column: ConnectionSortColumn) -> String {
        switch column {
        case .id: "\(row.id)"
        case .peer: row.peer
        case .state: row.state.description
        case .bytes: row.isClosed ? "–" : Format.rate(row.bytesPerSecond)
        case .bytesIn: row.isClosed ? "–" : Format.rate(row.bytesInPerSecond)
        case .bytesOut: row.isClosed ? "–" : Format.rate(row.bytesOutPerSecond)
        case .figure: row.isClosed ? "–" : Format.rate(row.figurePerSecond)
        case .wait: row.isClosed ? "–" : Format.latency(row.waitShownNs)
        case .inflight: row.isClosed ? "–" : "\(row.inflight)"
        case .held: row.isClosed ? "–" : Self.size(row.heldBytes)
        case .age: Format.duration(row.ageNs)
        case .idle: row.isClosed ? "–" : Format.duration(row.idleNs)
        case .worker: row.worker >= 0 ? "\(row.worker)" : "–"
        }
    }

    /// A buffer size in binary units, short: "2K", "257K", "1M".
    static func size(_ bytes: Int) -> String {
        if bytes < 1024 { return "\(bytes)" }
        if bytes < 1024 * 1024 { return "\(bytes / 1024)K" }
        return Format.fixed(Double(bytes) / 1_048_576) + "M"
    }

    private func connectionStateStyle(_ state: ConnectionState) -> CellStyle {
        switch state {
        case .receiving: CellStyle(.normal)
        case .sending: CellStyle(.good, bold: true)
        case .blocked: CellStyle(.warning, bold: true)
        case .paused: CellStyle(.critical, bold: true)
        case .closing, .closed: CellStyle(.muted, dim: true)
        }
    }

    /// The selected connection in full: who, how long, what it moved, how it waited, what it
    /// holds, and its bytes per second while it was in the frames.
    func drawConnectionDetail(_ model: DashboardModel, into screen: inout Screen) {
        let width = min(screen.width - 4, 78)
        let height = min(screen.height - 2, 13)
        let left = (screen.width - width) / 2, top = (screen.height - height) / 2
        let box = drawBox(left: left, top: top, width: width, height: height, into: &screen)
        screen.put(" Esc closes ", x: left + width - 14, y: top + height - 1, style: box)
        guard let row = model.connectionDetail else {
            screen.put(" connection \(model.connectionDetailID ?? 0) ", x: left + 2, y: top, style: box)
            screen.put("not in the newest frame: it moved too little to be among the top", x: left + 2, y: top + 2, limit: width - 4)
            screen.put("connections, or it closed a while ago", x: left + 2, y: top + 3, limit: width - 4)
            return
        }
        let sample = row.sample
        screen.put(" connection \(row.id) · \(row.peer) · \(row.isClosed ? row.closeText : row.state.description) ",
                   x: left + 2, y: top, style: box, limit: width - 4)
        let inner = width - 4
        var y = top + 1
        let label = CellStyle(.label, bold: true)
        func line(_ title: String, _ text: String, style: CellStyle = .plain) {
            let x = screen.put(Format.left(title, 12), x: left + 2, y: y, style: label)
            screen.put(text, x: x, y: y, style: style, limit: inner - 12)
            y += 1
        }
        line("open", "\(Format.duration(row.ageNs)) · idle \(Format.duration(row.idleNs)) · slot \(sample.slot)"
             + (row.worker >= 0 ? " · last served by worker \(row.worker)" : ""))
        if row.isClosed {
            line("closed", "\(row.closeText), \(Format.duration(row.closedForNs ?? 0)) ago", style: CellStyle(.warning, bold: true))
        }
        line("bytes", "in \(Format.bytes(sample.bytesIn)) (\(Format.rate(row.bytesInPerSecond))/s) · out \(Format.bytes(sample.bytesOut)) (\(Format.rate(row.bytesOutPerSecond))/s)")
        var served = "\(sample.completions) completions · handler \(Format.duration(sample.handlerNs))"
        if !model.connectionFigure.isEmpty {
            served = "\(sample.handlerFigure) \(model.connectionFigure) (\(Format.rate(row.figurePerSecond))/s) · " + served
        }
        line("served", served)
        let waiting = row.waitingNs > 0 ? "\(row.state) for \(Format.duration(row.waitingNs)) · " : ""
        line("waits", waiting + "last packet \(Format.latency(row.lastWaitNs)) in the FIFO · longest \(Format.latency(row.longestWaitNs))",
             style: row.waitingNs > 0 ? CellStyle(.warning, bold: true) : .plain)
        let large = [row.largeInput ? "input" : nil, row.largeOutput ? "output" : nil].compactMap { $0 }
        line("buffers", "holds \(Self.size(row.heldBytes)) (\(large.isEmpty ? "its own small buffers" : "large " + large.joined(separator: " and ") + " from the pool"))"
             + " · \(Format.bytes(UInt64(clamping: row.bufferedBytes))) not yet consumed or sent · \(row.inflight) in flight")
        y += 1
        let history = model.connectionHistory[row.id] ?? []
        if history.count >= 2 {
            let graphWidth = inner - 14
            let shown = Array(history.suffix(graphWidth))
            let x = screen.put(Format.left("bytes/s", 12), x: left + 2, y: y, style: label)
            screen.put(Sparkline.render(shown, width: graphWidth, unicode: unicode), x: x, y: y, style: CellStyle(.good))
            y += 1
            let period = Double(model.periodNs) / 1e9
            screen.put("peak \(Format.rate(shown.max() ?? 0))/s over \(Format.span(seconds: Double(shown.count) * period)) (while it was among the top)",
                       x: left + 14, y: y, style: CellStyle(.muted), limit: inner - 12)
        } else {
            screen.put("bytes/s history: appears as frames carry this connection", x: left + 2, y: y, style: CellStyle(.muted, dim: true), limit: inner)
        }
        y = top + height - 2
        if !row.isClosed && !model.replayMode {
            screen.put("x closes this connection (asks first)", x: left + 2, y: y, style: CellStyle(.muted), limit: inner)
        }
    }

    /// The question `x` asks before an operator's close is sent.
    func drawCloseConfirm(_ row: ConnectionRow, into screen: inout Screen) {
        let question = "Close connection \(row.id) (\(row.peer))?"
        let hint = "y closes it · any other key cancels"
        let width = min(screen.width - 2, max(question.count, hint.count) + 6)
        let left = (screen.width - width) / 2, top = screen.height / 2 - 2
        let box = drawBox(left: left, top: top, width: width, height: 5, into: &screen)
        screen.put(" close ", x: left + 2, y: top, style: box)
        screen.put(question, x: left + 3, y: top + 1, style: CellStyle(.warning, bold: true), limit: width - 6)
        screen.put(hint, x: left + 3, y: top + 3, style: CellStyle(.muted), limit: width - 6)
    }
}
