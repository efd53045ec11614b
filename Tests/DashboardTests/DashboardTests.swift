@testable import Dashboard
import EngineStats
import Testing

/// A worker sample with the given activity (times in seconds).
func sample(id: Int, state: WorkerState = .waiting, running: Double = 0, waiting: Double = 0,
            receives: UInt64 = 0, bytes: UInt64 = 0, cpu: Double = 0) -> WorkerSample {
    var worker = WorkerSample()
    worker.slot = id
    worker.id = id
    worker.state = state
    worker.runningNs = UInt64(running * 1e9)
    worker.waitingNs = UInt64(waiting * 1e9)
    worker.counts.receives = receives
    worker.counts.bytesIn = bytes
    worker.counts.bytesOut = bytes
    worker.cpuNs = UInt64(cpu * 1e9)
    worker.pending = id % 3
    worker.connections = id * 2
    return worker
}

/// A model fed two frames one second apart: `workers` workers, worker i doing (i + 1) × 1000
/// completions per second and (i + 1) × 10 % busy.
func model(workers: Int, configure: (inout StatsFrame) -> Void = { _ in }) -> DashboardModel {
    var model = DashboardModel(backend: "io_uring", address: "127.0.0.1:5150")
    var first = StatsFrame()
    first.number = 1
    first.timestampNs = 10_000_000_000
    first.uptimeNs = 10_000_000_000
    first.workers = (0..<workers).map { sample(id: $0) }
    first.port.concurrency = 2
    var second = first
    second.number = 2
    second.timestampNs = 11_000_000_000
    second.uptimeNs = 11_000_000_000
    second.port.runningThreads = 1
    second.engine.openConnections = 64
    second.workers = (0..<workers).map { index in
        let busy = min(1.0, Double(index + 1) / 10)
        return sample(id: index, state: index == 0 ? .running : .waiting, running: busy, waiting: 1 - busy,
                      receives: UInt64(index + 1) * 1000, bytes: UInt64(index + 1) * 128_000, cpu: busy)
    }
    for index in second.workers.indices { second.workers[index].stateSinceNs = second.timestampNs - 100_000_000 }
    configure(&second)
    model.ingest(first)
    model.ingest(second)
    return model
}

func render(_ model: DashboardModel, width: Int, height: Int, unicode: Bool = true) -> Screen {
    var screen = Screen(width: width, height: height)
    DashboardView(unicode: unicode).render(model, into: &screen)
    return screen
}

@Suite struct DashboardViewTests {
    @Test func theClassicTerminalShowsHeaderTableAndKeys() {
        let screen = render(model(workers: 4), width: 80, height: 24)
        let lines = (0..<24).map(screen.line)
        #expect(lines[0].contains("iocptop") && lines[0].contains("echo on 127.0.0.1:5150 · io_uring") && lines[0].contains("up 0:00:11"))
        #expect(lines[1].contains("Workers") && lines[1].contains("1 run") && lines[1].contains("1/2 running"))
        #expect(lines[1].contains("pending"), "nothing in the header is cut off at 80 columns: \(lines[1])")
        #expect(lines[2].contains("64 open") && lines[2].contains("Work"))
        #expect(lines[3].contains("Wait") && lines[3].contains("p99") && lines[3].contains("svc p99"))
        #expect(lines[4].contains("Compl/s") && lines[4].contains("10.0k") && lines[4].contains("↑10.0k 1s"), "the sparkline says its scale: \(lines[4])")
        #expect(lines[6].contains("no warnings"))
        let header = lines[DashboardView.headerRows - 1]
        for title in ["ID", "STATE", "BUSY", "CPU%", "COMPL/S", "PEND"] { #expect(header.contains(title), "\(title)") }
        #expect(!header.contains("TOTAL"), "80 columns drop TOTAL")
        let rows = lines[DashboardView.headerRows..<(DashboardView.headerRows + 4)]
        #expect(rows.map { $0.split(separator: " ").first.map(String.init) } == ["0", "1", "2", "3"])
        #expect(rows.first?.contains("running") == true)
        #expect(rows.last?.contains("40.0%") == true, "worker 3 is 40 % busy")
        #expect(lines[23].hasPrefix("F1Help TabConns +Add -Retire"))
        #expect(lines[23].hasSuffix("F10Quit"), "Quit always shows: \(lines[23])")
        #expect(lines.contains { $0.contains("events") }, "the room under a short table shows the event log")
        #expect(lines.allSatisfy { $0.count == 80 })
    }

    @Test(arguments: [(120, 40), (200, 60), (60, 12)])
    func layoutFollowsTheSize(width: Int, height: Int) {
        let screen = render(model(workers: 64), width: width, height: height)
        let header = screen.line(DashboardView.headerRows - 1)
        let (columns, bar) = DashboardView.layout(width: width)
        #expect(bar >= 12 && bar <= 50)
        #expect(columns.reduce(bar) { $0 + $1.width + 1 } <= width)
        #expect(header.contains("TOTAL") == (width >= 120))
        // As many worker rows as fit, and the scroll indicator since 64 do not.
        let shown = DashboardView.tableRows(height: height)
        #expect(header.contains("1–\(shown) of 64"))
        #expect(screen.line(height - 1).hasPrefix("F1Help"))
    }

    @Test func aTooSmallTerminalGetsOneClearLine() {
        let screen = render(model(workers: 4), width: 40, height: 10)
        #expect(screen.text == "iocptop: enlarge the terminal to at least\n" + String(repeating: "\n", count: 8)
                || screen.line(0).hasPrefix("iocptop: enlarge the terminal"))
        #expect((1..<10).allSatisfy { screen.line($0).allSatisfy { $0 == " " } })
    }

    @Test func exitedWorkersStayDimmedThenLeave() {
        var recent = model(workers: 3) { frame in
            frame.workers[2].state = .exited
            frame.workers[2].stateSinceNs = frame.timestampNs - 1_000_000_000
        }
        var screen = render(recent, width: 100, height: 24)
        let row = DashboardView.headerRows + 2
        // STATE starts after the 4-column ID and its separator.
        #expect(screen.line(row).dropFirst(6).hasPrefix("exited"))
        #expect(screen[6, row].style.dim, "the exited worker is dimmed")
        #expect(screen[screen.width - 2, row].style.dim)
        recent = model(workers: 3) { frame in
            frame.workers[2].state = .exited
            frame.workers[2].stateSinceNs = frame.timestampNs - 6_000_000_000
        }
        screen = render(recent, width: 100, height: 24)
        #expect(!screen.text.contains("exited"), "gone after five seconds")
    }

    @Test func aNarrowHeaderDropsDetailRatherThanOverwritingIt() {
        let loaded = model(workers: 2) { frame in
            frame.load.connections = 32
            frame.load.messages = 1_000_000
        }
        let line = render(loaded, width: 80, height: 24).line(0)
        #expect(line.contains(" 127.0.0.1:5150 "), "whole, and apart from the right side: \(line)")
        #expect(line.contains("load 32×") && line.contains("cpu"), "\(line)")
        #expect(!line.contains("io_uring"), "the backend gives way first: \(line)")
    }

    @Test func theHeaderShowsTheProtocolsOwnFigures() throws {
        var shown = DashboardModel(backend: "io_uring", address: "127.0.0.1:8080")
        shown.handler = try HandlerSchema([
            .counter("requests", help: "Requests answered."),
            .gauge("in_flight", help: "Requests in progress."),
            .histogram("latency", help: "Request latency."),
        ])
        var first = StatsFrame()
        first.number = 1
        first.timestampNs = 10_000_000_000
        first.uptimeNs = 10_000_000_000
        first.workers = [sample(id: 0)]
        var row = [UInt64](repeating: 0, count: shown.handler.wordCount)
        first.workers[0].handler = row
        var second = first
        second.number = 2
        second.timestampNs = 12_000_000_000
        second.uptimeNs = 12_000_000_000
        row[0] = 4000
        row[1] = 7
        row[2 + LatencyBuckets.index(150_000)] = 4000
        second.workers[0].handler = row
        shown.ingest(first)
        shown.ingest(second)
        let header = render(shown, width: 120, height: 30).line(2)
        #expect(header.contains("Handler"), "\(header)")
        #expect(header.contains("requests 2.0k/s"), "\(header)")
        #expect(header.contains("in_flight 7"), "\(header)")
        #expect(header.contains("latency p50 1") && header.contains(" p99 1"), "\(header)")
        // The worker's own share, in its detail pane.
        shown.detailID = 0
        let pane = render(shown, width: 120, height: 30).text
        #expect(pane.contains("handler") && pane.contains("requests 4000 · in_flight 7 · latency 4000× p99"), "\(pane)")
        // Echo declares none: the line says nothing of handlers.
        #expect(!render(model(workers: 2), width: 120, height: 30).line(2).contains("Handler"))
    }

    @Test func theHelpOverlayListsEveryKey() {
        var shown = model(workers: 4)
        shown.showHelp = true
        let text = render(shown, width: 100, height: 30).text
        #expect(text.contains("iocptop keys"))
        for (_, meaning) in KeyMap.help { #expect(text.contains(meaning), "\(meaning)") }
    }

    @Test func theDrainIsShownLive() {
        let draining = model(workers: 2) { frame in
            frame.engine.draining = true
            frame.port.pendingOperations = 143
        }
        #expect(render(draining, width: 80, height: 24).line(22).contains("draining: 143 ops pending"))
        let drained = model(workers: 2) { frame in frame.engine.drained = true }
        #expect(render(drained, width: 80, height: 24).line(22).contains("drained"))
    }

    @Test func asciiFallbackWhenTheLocaleIsNotUTF8() {
        let text = render(model(workers: 4), width: 80, height: 24, unicode: false).text
        #expect(!text.contains("▁") && !text.contains("█") && !text.contains("▼"))
        #expect(render(model(workers: 4), width: 80, height: 24).text.contains("▼"))
    }

    @Test func sparklinesScaleToTheirLargestValue() {
        #expect(Sparkline.render([0, 1, 2, 4, 8], width: 5, unicode: true) == "▁▂▃▅█")
        #expect(Sparkline.render([1, 1], width: 4, unicode: false) == "  ##")
        #expect(Sparkline.render([], width: 3, unicode: true) == "   ")
    }
}

@Suite struct DashboardModelTests {
    @Test func sortingByEveryColumnAndReversing() {
        var busy = model(workers: 5)
        #expect(busy.rows.map(\.id) == [0, 1, 2, 3, 4])
        busy.sort = .rate
        #expect(busy.rows.map(\.id) == [4, 3, 2, 1, 0])
        busy.reversed = true
        #expect(busy.rows.map(\.id) == [0, 1, 2, 3, 4])
        busy.reversed = false
        busy.sort = .state
        #expect(busy.rows.first?.id == 1, "waiting sorts before running")
        busy.sort = .id
        busy.cycleSort(-1)
        #expect(busy.sort == .service)
        busy.cycleSort(1)
        #expect(busy.sort == .id)
        for column in SortColumn.allCases {
            busy.sort = column
            #expect(busy.rows.count == 5)
        }
    }

    @Test func selectionFollowsTheWorkerAndScrolls() {
        var many = model(workers: 40)
        let visible = DashboardView.tableRows(height: 24)
        many.moveSelection(by: 25, visibleRows: visible)
        #expect(many.selectedIndex == 25)
        #expect(many.scroll == 25 - visible + 1)
        let screen = render(many, width: 80, height: 24)
        let selectedRow = DashboardView.headerRows + 25 - many.scroll
        #expect(screen.line(selectedRow).hasPrefix("   25 "))
        #expect(screen[40, selectedRow].style.reverse)
        many.sort = .rate
        #expect(many.rows[many.selectedIndex!].id == 25, "the selection stays on its worker")
        many.moveSelection(by: -1_000, visibleRows: visible)
        #expect(many.selectedIndex == 0 && many.scroll == 0)
    }

    @Test func pausingFreezesTheFrames() {
        var paused = model(workers: 2)
        paused.paused = true
        var later = paused.frame!
        later.number = 3
        later.timestampNs += 1_000_000_000
        paused.ingest(later)
        #expect(paused.frame?.number == 2)
        paused.paused = false
        paused.ingest(later)
        #expect(paused.frame?.number == 3)
    }
}

@Suite struct KeyMapTests {
    @Test func keysMapToActions() {
        let expected: [(Int32, Action)] = [
            (43, .addWorker), (45, .retireWorker), (99, .lowerConcurrency), (67, .raiseConcurrency),
            (108, .toggleLoad), (119, .lessWork), (87, .moreWork), (100, .drain), (32, .togglePause),
            (104, .toggleHelp), (63, .toggleHelp), (KeyMap.keyF(1), .toggleHelp),
            (113, .quit), (KeyMap.keyF(10), .quit), (3, .quit),
            (115, .sortNext), (62, .sortNext), (60, .sortPrevious), (114, .reverseSort),
            (KeyMap.keyUp, .selectUp), (107, .selectUp), (KeyMap.keyDown, .selectDown), (106, .selectDown),
            (KeyMap.keyNextPage, .pageDown), (KeyMap.keyPreviousPage, .pageUp),
            (9, .toggleTable), (120, .closeConnection),
        ]
        for (key, action) in expected { #expect(KeyMap.action(for: key) == action, "key \(key)") }
        #expect(KeyMap.action(for: 121) == nil, "y does nothing (it only answers x's question)")
        #expect(KeyMap.action(for: 88) == nil, "X does nothing: closing takes the lower-case key")
        #expect(KeyMap.keyF(1) == 265 && KeyMap.keyF(10) == 274 && KeyMap.keyResize == 410)
    }

    @Test func everyActionHasAKeyAndEveryKeyIsInTheHelp() {
        // From the key table's side: an action no key reaches, or a key the help leaves out,
        // fails here (not only a help line the overlay drops).
        for action in Action.allCases {
            #expect(KeyMap.bindings.contains { $0.action == action && !$0.codes.isEmpty }, "no key for \(action)")
        }
        let codes = KeyMap.bindings.flatMap(\.codes)
        #expect(Set(codes).count == codes.count, "a key bound twice")
        // A row without its own help line is described by the row before it.
        #expect(KeyMap.bindings.first?.help != nil)
        for (index, binding) in KeyMap.bindings.enumerated() where binding.help == nil {
            #expect(binding.keys == nil, "row \(index) names keys without saying what they do")
        }
        #expect(KeyMap.help.count == KeyMap.bindings.filter { $0.help != nil }.count)
    }

}

@Suite struct SaturationViewTests {
    /// A model whose workers waited and served: worker i's packets waited (i + 1) ms.
    func saturated(workers: Int = 3) -> DashboardModel {
        model(workers: workers) { frame in
            for index in frame.workers.indices {
                for _ in 0..<100 { frame.workers[index].queueWait.record(UInt64(index + 1) * 1_000_000) }
                for _ in 0..<100 { frame.workers[index].service.record(200_000) }
            }
        }
    }

    @Test func waitAndServiceShowInHeaderAndColumns() {
        let screen = render(saturated(), width: 120, height: 40)
        let lines = (0..<40).map(screen.line)
        #expect(lines[3].contains("p99 3.0ms") || lines[3].contains("p99 3.1ms"), "\(lines[3])")
        #expect(lines[3].contains("svc p99 205µs"), "200 µs, within its bucket: \(lines[3])")
        let header = lines[DashboardView.headerRows - 1]
        #expect(header.contains("WAIT p99") && header.contains("SVC p99"))
        let row = lines[DashboardView.headerRows + 2]
        #expect(row.contains("3.0ms") || row.contains("3.1ms"), "worker 2 waited 3 ms: \(row)")
    }

    @Test func narrowTerminalsDropColumnsInTheDocumentedOrder() {
        let titles = { (width: Int) in DashboardView.layout(width: width).columns.map(\.title) }
        #expect(titles(200).contains("TOTAL") && titles(200).contains("IDLE"))
        #expect(!titles(80).contains("TOTAL") && titles(80).contains("WAIT p99"))
        #expect(titles(60).contains("WAIT p99"), "queue wait stays longest: \(titles(60))")
        for width in [60, 80, 100, 120, 160, 200] {
            let screen = render(saturated(workers: 12), width: width, height: 30)
            #expect((0..<30).allSatisfy { screen.line($0).count == width })
        }
    }

    @Test func theDetailPaneShowsHistogramsAndCounts() {
        var model = saturated()
        model.detailID = 2
        let screen = render(model, width: 100, height: 32)
        let text = (0..<32).map(screen.line).joined(separator: "\n")
        #expect(text.contains("worker 2"))
        #expect(text.contains("completions") && text.contains("3000 receives"))
        #expect(text.contains("queue wait") && text.contains("p99.9"))
        #expect(text.contains("service"))
        #expect(text.contains("█ 100") || text.contains("█ 200"), "histogram bars with their counts")
        #expect(text.contains("Esc closes"))
        // At 80×24 it fits too.
        let small = render(model, width: 80, height: 24)
        #expect((0..<24).map(small.line).joined().contains("queue wait"))
    }

    @Test func warningsShowOnTheirLineAndInTheEventLog() {
        var model = model(workers: 2) { frame in
            for index in frame.workers.indices {
                frame.workers[index].state = .blocked
                frame.workers[index].stateSinceNs = frame.timestampNs
            }
            frame.port.queueDepth = 40
        }
        model.note("added worker 7")
        let screen = render(model, width: 100, height: 30)
        let lines = (0..<30).map(screen.line)
        #expect(lines[6].contains("all 2 workers blocked") && lines[6].contains("press +"), "\(lines[6])")
        let log = lines.drop { !$0.contains("events") }.joined()
        #expect(log.contains("all 2 workers blocked"))
        #expect(log.contains("added worker 7"))
    }

    @Test func enterAndEscapeMapToTheDetailPane() {
        #expect(KeyMap.action(for: 13) == .showDetail)
        #expect(KeyMap.action(for: KeyMap.keyEnter) == .showDetail)
        #expect(KeyMap.action(for: KeyMap.escape) == .closeDetail)
    }
}
