import EngineStats

/// Draws a `DashboardModel` into a `Screen`: header, worker table, status line, key bar, and
/// the help overlay. Pure: the same model and size always give the same cells.
public struct DashboardView: Sendable {
    /// Smallest terminal the dashboard lays out in.
    public static let minimumWidth = 60
    public static let minimumHeight = 12
    /// Rows above the table (header lines, a blank, the column titles).
    static let headerRows = 8
    /// Rows below the table (status line, key bar).
    static let footerRows = 2

    public var unicode: Bool

    public init(unicode: Bool) {
        self.unicode = unicode
    }

    /// Table rows that fit in a screen `height` rows high.
    public static func tableRows(height: Int) -> Int { max(1, height - headerRows - footerRows) }

    public func render(_ model: DashboardModel, into screen: inout Screen) {
        guard screen.width >= Self.minimumWidth, screen.height >= Self.minimumHeight else {
            screen.put("iocptop: enlarge the terminal to at least \(Self.minimumWidth)×\(Self.minimumHeight) (now \(screen.width)×\(screen.height))",
                       x: 0, y: 0, style: CellStyle(.warning, bold: true))
            return
        }
        drawHeader(model, into: &screen)
        if model.table == .connections {
            drawConnectionTable(model, into: &screen)
        } else {
            drawTable(model, into: &screen)
        }
        drawStatus(model, into: &screen)
        drawKeyBar(replay: model.replayMode, connections: model.table == .connections, into: &screen)
        if model.table == .workers, model.detailID != nil { drawDetail(model, into: &screen) }
        if model.table == .connections, model.connectionDetailID != nil { drawConnectionDetail(model, into: &screen) }
        if let row = model.pendingClose { drawCloseConfirm(row, into: &screen) }
        if model.showHelp { drawHelp(replay: model.replayMode, into: &screen) }
    }

    // MARK: header

    private func drawHeader(_ model: DashboardModel, into screen: inout Screen) {
        let label = CellStyle(.label, bold: true)
        let value = CellStyle(.normal, bold: true)
        let frame = model.frame ?? StatsFrame()
        let rates = model.rates

        var x = screen.put(" iocptop ", x: 0, y: 0, style: CellStyle(.accent, bold: true))
        if model.replayMode { x = screen.put("REPLAY ", x: x, y: 0, style: CellStyle(.warning, bold: true)) }
        var right = "cpu \(Format.fixed(rates.processCPUPercent))% "
        if frame.load.connections > 0 {
            // The built-in load's own view: its rate and round trips, as the client measures them.
            let rtt = rates.loadRoundTrip.map { " rtt \(Format.latency($0.p50))/\(Format.latency($0.p99))" } ?? ""
            right = "load \(frame.load.connections)× \(Format.rate(rates.loadMessagesPerSecond))/s\(rtt) · " + right
        } else if let load = model.loadConnections {
            right = "load \(load) conns · " + right
        }
        if model.paused { right = "PAUSED · " + right }
        // What the engine is, as much of it as leaves room for the right side.
        let served = " \(model.protocolName) on \(model.address)"
        let uptime = " · up \(Format.uptime(frame.uptimeNs))"
        let backend = " · \(model.backend)"
        let room = screen.width - right.count - x - 1
        let left = [served + backend + uptime, served + uptime, served, " \(model.address)"].first { $0.count <= room }
            ?? " \(model.address)"
        screen.put(left, x: x, y: 0)
        screen.put(right, x: screen.width - right.count, y: 0, style: model.paused ? CellStyle(.warning, bold: true) : value)
        if frame.auto.enabled {
            let held = frame.auto.isPaused(at: frame.timestampNs)
            let tag = held ? "AUTO held \(frame.auto.secondsHeld(at: frame.timestampNs)) s" : "AUTO"
            screen.put(tag, x: screen.width - right.count - tag.count - 2, y: 0, style: CellStyle(held ? .warning : .good, bold: true, reverse: !held))
        }

        x = screen.put(" Workers ", x: 0, y: 1, style: label)
        x = screen.put("\(frame.liveWorkers) ", x: x, y: 1, style: value)
        x = screen.put(" \(frame.workers(in: .running)) run", x: x, y: 1, style: CellStyle(.good))
        x = screen.put("  \(frame.workers(in: .waiting)) wait", x: x, y: 1)
        x = screen.put("  \(frame.workers(in: .blocked)) blocked", x: x, y: 1, style: CellStyle(frame.workers(in: .blocked) > 0 ? .warning : .normal))
        x = screen.put("   Port ", x: x, y: 1, style: label)
        x = screen.put("\(frame.port.runningThreads)/\(frame.port.concurrency) running", x: x, y: 1, style: value)
        x = screen.put("  queue \(frame.port.queueDepth)", x: x, y: 1, style: CellStyle(frame.port.queueDepth > 0 ? .warning : .normal))
        if frame.port.queueDepth > 0 {
            // The age of the oldest packet still queued: a stall shows here while it lasts.
            let oldestNs = UInt64(max(0, frame.port.queueOldestMicroseconds)) &* 1000
            x = screen.put(" oldest \(Format.duration(oldestNs))", x: x, y: 1,
                           style: CellStyle(oldestNs >= Warnings.longQueueWaitNs ? .critical : .warning, bold: oldestNs >= Warnings.longQueueWaitNs))
        }
        screen.put("  pending \(frame.port.pendingOperations)", x: x, y: 1)

        x = screen.put(" Conns   ", x: 0, y: 2, style: label)
        x = screen.put("\(frame.engine.openConnections) open", x: x, y: 2, style: value)
        x = screen.put("  \(frame.engine.accepted) accepted  ", x: x, y: 2)
        x = screen.put("\(frame.engine.refused) refused", x: x, y: 2, style: CellStyle(frame.engine.refused > 0 ? .warning : .normal))
        x = screen.put("  \(frame.engine.closedByError) errors", x: x, y: 2, style: CellStyle(frame.engine.closedByError > 0 ? .warning : .normal))
        if frame.engine.acceptErrors > 0 {
            x = screen.put("  \(frame.engine.acceptErrors) accept failures", x: x, y: 2, style: CellStyle(.critical, bold: true))
        }
        // The simulated-work knob: always for echo (the lab's), for a protocol with figures of
        // its own only while it is set (the room goes to those figures).
        if model.handlerFigures.isEmpty || model.workMicroseconds > 0 || frame.settings.blockMicroseconds > 0 {
            x = screen.put("   Work ", x: x, y: 2, style: label)
            x = screen.put("\(model.workMicroseconds) µs", x: x, y: 2, style: value)
            if frame.settings.blockMicroseconds > 0 {
                x = screen.put("  block \(frame.settings.blockMicroseconds) µs", x: x, y: 2, style: CellStyle(.warning))
            }
        }
        // The protocol's own figures, as its handlers count them.
        if !model.handlerFigures.isEmpty {
            x = screen.put("   Handler ", x: x, y: 2, style: label)
            for (index, figure) in model.handlerFigures.enumerated() {
                let text = (index > 0 ? "  " : "") + Self.describe(figure)
                guard x + text.count <= screen.width else { break }
                x = screen.put(text, x: x, y: 2, style: value)
            }
        }

        // The saturation line: how long packets wait, and how long serving them takes.
        let waitLong = (rates.queueWait?.p99 ?? 0) >= Warnings.longQueueWaitNs
        x = screen.put(" Wait    ", x: 0, y: 3, style: label)
        x = screen.put("p50 ", x: x, y: 3)
        x = screen.put(Format.left(Format.latency(rates.queueWait?.p50), 7), x: x, y: 3, style: value)
        x = screen.put("p99 ", x: x, y: 3)
        x = screen.put(Format.left(Format.latency(rates.queueWait?.p99), 7), x: x, y: 3, style: CellStyle(waitLong ? .warning : .normal, bold: true))
        x = screen.put("svc p99 ", x: x, y: 3)
        x = screen.put(Format.left(Format.latency(rates.service?.p99), 7), x: x, y: 3, style: value)
        drawSparkline(model.queueWaitHistory, x: x, y: 3, model: model, scale: { Format.duration(UInt64($0)) }, into: &screen)

        x = screen.put(" Compl/s ", x: 0, y: 4, style: label)
        x = screen.put(Format.right(Format.rate(rates.completionsPerSecond), 8) + "  ", x: x, y: 4, style: value)
        drawSparkline(model.history.completionsPerSecond, x: x, y: 4, model: model, scale: Format.rate, into: &screen)

        x = screen.put(" MB/s    ", x: 0, y: 5, style: label)
        x = screen.put("in " + Format.left(Format.fixed(rates.bytesInPerSecond / 1e6), 7), x: x, y: 5, style: value)
        x = screen.put("out " + Format.left(Format.fixed(rates.bytesOutPerSecond / 1e6), 7), x: x, y: 5, style: value)
        drawSparkline(model.history.bytesInPerSecond.map { $0 / 1e6 }, x: x, y: 5, model: model, scale: { Format.fixed($0) }, into: &screen)

        if let first = model.warnings.first {
            let more = model.warnings.count > 1 ? " (+\(model.warnings.count - 1) more, see the events below)" : ""
            screen.put(" ! " + first.message + more, x: 0, y: 6, style: CellStyle(.critical, bold: true))
        } else if model.frame != nil {
            screen.put(" no warnings", x: 0, y: 6, style: CellStyle(.muted, dim: true))
        }
    }

    /// One handler figure for the header: "requests 1.2k/s", "in_flight 3", "latency p50 80µs
    /// p99 2ms" (over the interval).
    static func describe(_ figure: HandlerFigure) -> String {
        let name = figure.metric.name
        switch figure.metric.kind {
        case .counter:
            let rate = figure.perSecond ?? 0
            return figure.metric.unit == .bytes ? "\(name) \(Format.fixed(rate / 1e6)) MB/s" : "\(name) \(Format.rate(rate))/s"
        case .gauge:
            return "\(name) \(figure.level ?? 0)"
        case .histogram:
            return "\(name) p50 \(Format.latency(figure.percentiles?.p50)) p99 \(Format.latency(figure.percentiles?.p99))"
        }
    }

    /// A sparkline from `x` to the right edge, ending with its scale: the peak it is drawn
    /// against and the time it spans ("▁▂▅█ ↑3.4ms 1m").
    private func drawSparkline(_ values: [Double], x: Int, y: Int, model: DashboardModel,
                               scale: (Double) -> String, into screen: inout Screen) {
        let room = screen.width - x - 1
        // Room for a few bars and the 14-column scale, or nothing.
        guard room >= 18 else { return }
        let width = room - 14
        let shown = values.suffix(width)
        let peak = shown.max() ?? 0
        let period = Double(model.frame.map { _ in model.periodNs } ?? 500_000_000) / 1e9
        let span = Format.span(seconds: Double(shown.count) * period)
        screen.put(Sparkline.render(Array(shown), width: width, unicode: unicode), x: x, y: y, style: CellStyle(.good))
        screen.put(" " + (unicode ? "↑" : "^") + scale(peak) + " " + span, x: x + width, y: y, style: CellStyle(.muted), limit: 14)
    }

    // MARK: table

    /// A table column: which sort column it is (its title is that column's name, the one the
    /// status line says when sorting), width, right-aligned.
    struct Column {
        var sort: SortColumn
        var width: Int
        var rightAligned = true
        var title: String { sort.description }
    }

    /// Columns that fit `width`, in order, with the busy bar's width. Narrow terminals drop
    /// TOTAL first, then IDLE, OUT MB/s, IN MB/s, CONNS, SVC p99, CPU% (README.md lists it).
    static func layout(width: Int) -> (columns: [Column], bar: Int) {
        var columns = [
            Column(sort: .id, width: 4),
            Column(sort: .state, width: 8, rightAligned: false),
            Column(sort: .busy, width: 0, rightAligned: false),
            Column(sort: .cpu, width: 6),
            Column(sort: .rate, width: 8),
            Column(sort: .total, width: 11),
            Column(sort: .megabytesIn, width: 8),
            Column(sort: .megabytesOut, width: 8),
            Column(sort: .pending, width: 6),
            Column(sort: .connections, width: 6),
            Column(sort: .queueWait, width: 8),
            Column(sort: .service, width: 8),
            Column(sort: .idle, width: 7),
        ]
        let minimumBar = 12
        func fixed() -> Int { columns.reduce(0) { $0 + $1.width + 1 } + 1 }
        for drop in [SortColumn.total, .idle, .megabytesOut, .megabytesIn, .connections, .service, .cpu] where fixed() + minimumBar > width {
            columns.removeAll { $0.sort == drop }
        }
        let bar = min(50, max(minimumBar, width - fixed()))
        return (columns, bar)
    }

    private func drawTable(_ model: DashboardModel, into screen: inout Screen) {
        let (columns, bar) = Self.layout(width: screen.width)
        let titleY = Self.headerRows - 1
        let header = CellStyle(.header, reverse: true)
        screen.paint(x: 0, y: titleY, count: screen.width, style: header)
        var x = 1
        for column in columns {
            let width = column.sort == .busy ? bar : column.width
            var title = column.title
            let sorted = column.sort == model.sort
            if sorted { title += model.reversed ? (unicode ? "▲" : "^") : (unicode ? "▼" : "v") }
            let text = column.rightAligned ? Format.right(title, width) : Format.left(title, width)
            screen.put(text, x: x, y: titleY, style: sorted ? CellStyle(.accent, bold: true, reverse: true) : header, limit: width)
            x += width + 1
        }

        let rows = model.rows
        let visible = Self.tableRows(height: screen.height)
        let selected = model.selectedIndex
        let first = min(model.scroll, max(0, rows.count - visible))
        for (offset, row) in rows.dropFirst(first).prefix(visible).enumerated() {
            let y = Self.headerRows + offset
            let exited = row.state == .exited
            let base = CellStyle(exited ? .muted : .normal, dim: exited)
            x = 1
            for column in columns {
                let width = column.sort == .busy ? bar : column.width
                if column.sort == .busy {
                    drawBar(busy: row.busyPercent, cpu: row.cpuPercent, x: x, y: y, width: width, dim: exited, into: &screen)
                } else if column.sort == .queueWait, (row.queueWaitP99 ?? 0) >= Warnings.longQueueWaitNs {
                    screen.put(Format.right(cell(row, column.sort), width), x: x, y: y, style: CellStyle(.warning, bold: true), limit: width)
                } else if column.sort == .state {
                    screen.put(Format.left(row.state.description, width), x: x, y: y, style: stateStyle(row.state))
                } else {
                    screen.put(Format.right(cell(row, column.sort), width), x: x, y: y, style: base, limit: width)
                }
                x += width + 1
            }
            if first + offset == selected {
                for column in 0..<screen.width { screen[column, y].style = CellStyle(.selection, bold: true, reverse: true) }
            }
        }
        if rows.count > visible {
            let more = "\(first + 1)–\(min(rows.count, first + visible)) of \(rows.count)"
            screen.put(more, x: screen.width - more.count - 1, y: titleY, style: header)
        } else {
            drawEvents(model, from: Self.headerRows + rows.count + 1, to: Self.headerRows + visible, into: &screen)
        }
    }

    /// The room under a short table: the last actions and warnings, newest last.
    func drawEvents(_ model: DashboardModel, from top: Int, to bottom: Int, into screen: inout Screen) {
        guard bottom - top >= 2 else { return }
        let rule: Character = unicode ? "─" : "-"
        screen.put(" " + String(repeating: rule, count: 2) + " events " + String(repeating: rule, count: max(0, screen.width - 12)),
                   x: 0, y: top, style: CellStyle(.muted))
        let shown = model.events.suffix(bottom - top - 1)
        if shown.isEmpty {
            screen.put("   none yet: keys you press and warnings appear here", x: 0, y: top + 1, style: CellStyle(.muted, dim: true))
        }
        for (offset, event) in shown.enumerated() {
            let stamp = " " + Format.uptime(event.uptimeNs) + "  "
            let x = screen.put(stamp, x: 0, y: top + 1 + offset, style: CellStyle(.muted))
            screen.put(event.text, x: x, y: top + 1 + offset, style: event.isWarning ? CellStyle(.warning, bold: true) : .plain)
        }
    }

    private func cell(_ row: WorkerRow, _ column: SortColumn) -> String {
        switch column {
        case .id: "\(row.id)"
        case .state: row.state.description
        case .busy: Format.fixed(row.busyPercent)
        case .cpu: Format.fixed(row.cpuPercent)
        case .rate: Format.rate(row.completionsPerSecond)
        case .total: "\(row.totalCompletions)"
        case .megabytesIn: Format.fixed(row.megabytesInPerSecond, decimals: 2)
        case .megabytesOut: Format.fixed(row.megabytesOutPerSecond, decimals: 2)
        case .pending: "\(row.pending)"
        case .connections: "\(row.connections)"
        case .idle:
            row.exitedForNs != nil ? "–" : row.idleNs.map(Format.duration) ?? "–"
        case .queueWait: Format.latency(row.queueWaitP99)
        case .service: Format.latency(row.serviceP99)
        }
    }

    private func stateStyle(_ state: WorkerState) -> CellStyle {
        switch state {
        case .running: CellStyle(.good, bold: true)
        case .waiting: CellStyle(.normal)
        case .blocked: CellStyle(.warning, bold: true)
        case .exited, .unused: CellStyle(.muted, dim: true)
        }
    }

    /// An htop-style meter, `[|||||::      42.0%]`: `|` (coloured by level) for the busy share,
    /// then `:` (blue) up to the thread's CPU share when that is higher — on io_uring the
    /// socket work runs inside the dequeue, which counts as waiting but burns CPU.
    private func drawBar(busy: Double, cpu: Double, x: Int, y: Int, width: Int, dim: Bool, into screen: inout Screen) {
        let inner = width - 2
        guard inner > 0 else { return }
        let label = Format.fixed(max(busy, cpu)) + "%"
        let cells = { (percent: Double) in Int((min(100, max(0, percent)) / 100 * Double(inner)).rounded()) }
        let busyCells = cells(busy), cpuCells = max(busyCells, cells(cpu))
        let level: ColorRole = dim ? .muted : busy >= 85 ? .critical : busy >= 50 ? .warning : .good
        screen.put("[", x: x, y: y, style: CellStyle(.normal, bold: true))
        let labelStart = inner - label.count
        for index in 0..<inner {
            let character: Character
            let style: CellStyle
            if index >= labelStart {
                character = label[label.index(label.startIndex, offsetBy: index - labelStart)]
                style = CellStyle(dim ? .muted : .normal, dim: dim)
            } else if index < busyCells {
                character = "|"
                style = CellStyle(level, bold: !dim, dim: dim)
            } else if index < cpuCells {
                character = ":"
                style = CellStyle(dim ? .muted : .kernel, bold: !dim, dim: dim)
            } else {
                character = " "
                style = dim ? CellStyle(.muted, dim: true) : .plain
            }
            screen.put(String(character), x: x + 1 + index, y: y, style: style)
        }
        screen.put("]", x: x + width - 1, y: y, style: CellStyle(.normal, bold: true))
    }

    // MARK: footer

    private func drawStatus(_ model: DashboardModel, into screen: inout Screen) {
        let y = screen.height - 2
        let frame = model.frame ?? StatsFrame()
        var text = model.status
        var style = CellStyle(.accent)
        switch model.replayMode ? .none : model.drainPhase {
        case .draining:
            text = "draining: \(frame.port.pendingOperations) ops pending, \(frame.engine.openConnections) connections open, \(frame.liveWorkers) workers left"
            style = CellStyle(.warning, bold: true)
        case .drained:
            text = "drained: every connection closed, every worker exited, port closed — press q to quit"
            style = CellStyle(.good, bold: true)
        case .none:
            break
        }
        screen.put(" " + text, x: 0, y: y, style: style)
    }

    private func drawKeyBar(replay: Bool, connections: Bool, into screen: inout Screen) {
        let y = screen.height - 1
        let table = ("Tab", connections ? "Workers" : "Conns")
        let keys: [(String, String)] = replay
            ? [("F1", "Help"), table, ("Spc", "Play"), (unicode ? "←→" : "<>", "Step"), ("[]", "Speed"), ("Home", "Start"),
               ("End", "End"), ("s", "Sort"), ("Enter", "Detail")]
            : connections
            ? [("F1", "Help"), table, ("x", "Close"), ("Enter", "Detail"), ("s", "Sort"), ("r", "Reverse"), ("+", "Add"),
               ("-", "Retire"), ("a", "Auto"), ("d", "Drain"), ("Spc", "Pause")]
            : [("F1", "Help"), table, ("+", "Add"), ("-", "Retire"), ("c", "Conc-"), ("C", "Conc+"),
               ("l", "Load"), ("w", "Work-"), ("W", "Work+"), ("d", "Drain"), ("a", "Auto"), ("s", "Sort"),
               ("Spc", "Pause")]
        // F10 Quit always shows, at the right end; the others as far as they fit.
        let quit = ("F10", "Quit")
        let quitWidth = quit.0.count + quit.1.count
        var x = 0
        for (key, text) in keys {
            guard x + key.count + text.count + 1 <= screen.width - quitWidth - 1 else { break }
            x = screen.put(key, x: x, y: y, style: CellStyle(.keyName, bold: true))
            x = screen.put(Format.left(text, text.count + 1), x: x, y: y, style: CellStyle(.keyText, reverse: true))
        }
        screen.paint(x: x, y: y, count: screen.width - x, style: CellStyle(.keyText, reverse: true))
        x = screen.put(quit.0, x: screen.width - quitWidth, y: y, style: CellStyle(.keyName, bold: true))
        screen.put(quit.1, x: x, y: y, style: CellStyle(.keyText, reverse: true))
    }

    private func drawHelp(replay: Bool, into screen: inout Screen) {
        let legend = [
            ("BUSY", "saturation, the larger of | busy (running or blocked) and :"),
            ("", "CPU share (io_uring's socket I/O in dequeue is work, not idle)"),
            ("WAIT p99", "queue wait, FIFO entry to the packet's start, 99th percentile"),
            ("SVC p99", "service time, one packet's handling, 99th percentile"),
            ("CPU% IDLE", "thread CPU (kernel I/O too) · time since last completion"),
            ("PEND CONNS", "its operations in flight · connections it served last"),
            ("Tab: conns", "B/s both ways · WAIT blocked/paused now, else last FIFO wait"),
            ("", "HELD buffer bytes held · INFL ops in flight · WKR last worker"),
        ]
        let keys = replay ? KeyMap.replayHelp : KeyMap.help
        let lines = (keys + legend).map { Format.left($0.0, 11) + $0.1 }
        let width = min(screen.width - 2, (lines.map(\.count).max() ?? 0) + 4)
        let height = min(screen.height - 2, lines.count + 3)
        let left = (screen.width - width) / 2, top = (screen.height - height) / 2
        let box = drawBox(left: left, top: top, width: width, height: height, into: &screen)
        screen.put(" iocptop keys ", x: left + 2, y: top, style: box)
        for (index, line) in lines.prefix(height - 3).enumerated() {
            let isKey = index < keys.count
            screen.put(String(line.prefix(11)), x: left + 2, y: top + 1 + index, style: CellStyle(isKey ? .accent : .label, bold: true), limit: width - 4)
            screen.put(String(line.dropFirst(11)), x: left + 13, y: top + 1 + index, limit: width - 15)
        }
        screen.put(" any key closes ", x: left + width - 18, y: top + height - 1, style: box)
    }

    /// A framed, cleared box; returns the frame's style.
    @discardableResult
    func drawBox(left: Int, top: Int, width: Int, height: Int, into screen: inout Screen) -> CellStyle {
        let box = CellStyle(.accent, bold: true)
        let (h, v, tl, tr, bl, br): (Character, Character, Character, Character, Character, Character) =
            unicode ? ("─", "│", "┌", "┐", "└", "┘") : ("-", "|", "+", "+", "+", "+")
        for y in top..<(top + height) {
            for x in left..<(left + width) { screen[x, y] = Cell(" ", .plain) }
            screen[left, y] = Cell(v, box)
            screen[left + width - 1, y] = Cell(v, box)
        }
        for x in left..<(left + width) {
            screen[x, top] = Cell(h, box)
            screen[x, top + height - 1] = Cell(h, box)
        }
        screen[left, top] = Cell(tl, box); screen[left + width - 1, top] = Cell(tr, box)
        screen[left, top + height - 1] = Cell(bl, box); screen[left + width - 1, top + height - 1] = Cell(br, box)
        return box
    }
}
