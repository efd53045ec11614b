import CNcurses
import CIOURing
import Dashboard
import EchoEngine
import EngineStats
import LoadGen
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `iocptop` in a terminal: the dashboard loop.
///
/// One thread (this one) reads keys, signals and stats frames, and sleeps in `poll` on standard
/// input and a signalfd until the next frame is due: no busy waking. It never blocks the
/// engine: it reads the stats ring and sends commands (add, retire, concurrency, drain), and
/// runs the drain on a thread of its own so the screen shows it live.
final class DashboardMode {
    private let engine: EchoEngine
    private let load: BuiltInLoad
    private let signalDescriptor: CInt
    private let terminal: CursesTerminal
    private var model: DashboardModel
    private var view: DashboardView
    private var knownExited: Set<Int> = []
    private var retiresAwaited = 0
    private var drainThread: pthread_t?
    /// The report of a drain run by `d`, written by its thread before it ends.
    private let drainReport = DrainReportBox()
    private var quitting = false

    /// Takes over the terminal. `signals`: SIGINT, SIGTERM and SIGWINCH, already blocked in
    /// every thread, read here through a signalfd.
    init(engine: EchoEngine, load: BuiltInLoad, signals: sigset_t, colors: Bool) throws(CursesTerminal.StartError) {
        self.engine = engine
        self.load = load
        var mask = signals
        signalDescriptor = signalfd(-1, &mask, CInt(SFD_CLOEXEC | SFD_NONBLOCK))
        let unicode = CNcurses_localeIsUTF8() != 0
        terminal = try CursesTerminal(colors: colors)
        view = DashboardView(unicode: unicode)
        model = DashboardModel(backend: "\(engine.port.backend)", address: engine.address)
        model.workMicroseconds = engine.simulatedWorkMicroseconds
        if load.isRunning { model.loadConnections = load.configuration.connections }
        model.status = "serving on \(engine.address) · press h for help"
    }

    deinit { close(signalDescriptor) }

    /// Runs until the operator quits (or SIGINT/SIGTERM); then drains (bounded) and restores
    /// the terminal. Returns the drain's report.
    func run() -> DrainReport {
        var lastFrame: UInt64 = 0
        var dirty = true
        while !quitting {
            if engine.stats.newest > lastFrame, let frame = engine.stats.latest() {
                lastFrame = frame.number
                ingest(frame)
                dirty = true
            }
            if dirty {
                render()
                dirty = false
            }
            var descriptors = [pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0),
                               pollfd(fd: signalDescriptor, events: Int16(POLLIN), revents: 0)]
            _ = poll(&descriptors, 2, CInt(millisecondsUntilNextFrame()))
            if readSignals() { dirty = true }
            while let key = terminal.readKey() {
                handle(key)
                dirty = true
            }
        }
        model.status = "quitting: draining the engine…"
        render()
        load.stop()
        var report = engine.drain(timeout: .seconds(5))
        if let drainThread {
            pthread_join(drainThread, nil)
            report = drainReport.report.withLock { $0 } ?? report
        }
        terminal.end()
        return report
    }

    private func millisecondsUntilNextFrame() -> Int {
        guard let frame = model.frame else { return 20 }
        let due = Int64(frame.timestampNs + engine.sampler.periodNs) - CIOURing_now_ns()
        return Int(min(1000, max(5, due / 1_000_000 + 2)))
    }

    private func render() {
        terminal.followResize()
        let size = terminal.size
        var screen = Screen(width: size.width, height: size.height)
        model.keepSelectionVisible(visibleRows: DashboardView.tableRows(height: size.height))
        view.render(model, into: &screen)
        terminal.draw(screen)
    }

    /// Reads pending signals; true when the screen must be redrawn.
    private func readSignals() -> Bool {
        var info = signalfd_siginfo()
        var redraw = false
        while read(signalDescriptor, &info, MemoryLayout<signalfd_siginfo>.size) == MemoryLayout<signalfd_siginfo>.size {
            switch CInt(info.ssi_signo) {
            case SIGWINCH:
                terminal.followResize()
                redraw = true
            default:
                quitting = true
            }
        }
        return redraw
    }

    // MARK: frames

    private func ingest(_ frame: StatsFrame) {
        model.ingest(frame)
        let exited = frame.workers.filter { $0.state == .exited }.map(\.id)
        for id in exited where !knownExited.contains(id) {
            knownExited.insert(id)
            if retiresAwaited > 0 {
                retiresAwaited -= 1
                model.status = "posted shutdown packet — worker \(id) exited (\(frame.liveWorkers) live)"
            }
        }
        if model.drainPhase == .drained, model.loadConnections != nil {
            load.stop()
            model.loadConnections = nil
        }
    }

    // MARK: keys

    private func handle(_ key: Int32) {
        if key == KeyMap.keyResize { return }
        if model.showHelp {
            model.showHelp = false
            return
        }
        guard let action = KeyMap.action(for: key) else { return }
        let visible = DashboardView.tableRows(height: terminal.size.height)
        switch action {
        case .quit: quitting = true
        case .toggleHelp: model.showHelp = true
        case .togglePause:
            model.paused.toggle()
            model.status = model.paused ? "display paused — the engine keeps running (space resumes)" : "display resumed"
        case .sortNext, .sortPrevious:
            model.cycleSort(action == .sortNext ? 1 : -1)
            model.status = "sorted by \(model.sort)"
        case .reverseSort:
            model.reversed.toggle()
            model.status = "sorted by \(model.sort), \(model.reversed ? "reversed" : "natural order")"
        case .selectUp: model.moveSelection(by: -1, visibleRows: visible)
        case .selectDown: model.moveSelection(by: 1, visibleRows: visible)
        case .pageUp: model.moveSelection(by: -visible, visibleRows: visible)
        case .pageDown: model.moveSelection(by: visible, visibleRows: visible)
        case .selectFirst: model.moveSelection(by: -1_000_000, visibleRows: visible)
        case .selectLast: model.moveSelection(by: 1_000_000, visibleRows: visible)
        case .toggleLoad: toggleLoad()
        default: command(action)
        }
    }

    /// Actions that change the engine.
    private func command(_ action: Action) {
        guard !engine.isDraining else {
            model.status = "the engine is drained (or draining): press q to quit"
            return
        }
        do {
            switch action {
            case .addWorker:
                let id = try engine.addWorker()
                model.status = "added worker \(id) (\(engine.liveWorkers) live)"
            case .retireWorker:
                if try engine.retireWorker() {
                    retiresAwaited += 1
                    model.status = "posted shutdown packet…"
                } else {
                    model.status = "no worker left to retire"
                }
            case .lowerConcurrency, .raiseConcurrency:
                let before = engine.port.concurrency
                let after = max(1, before + (action == .raiseConcurrency ? 1 : -1))
                try engine.setConcurrency(after)
                model.status = "concurrency \(before) → \(after)"
            case .lessWork, .moreWork:
                let before = engine.simulatedWorkMicroseconds
                engine.simulatedWorkMicroseconds = KeyMap.workStep(from: before, action == .moreWork ? 1 : -1)
                model.workMicroseconds = engine.simulatedWorkMicroseconds
                model.status = "simulated work \(before) → \(model.workMicroseconds) µs per completion"
            case .drain:
                startDrain()
            default:
                break
            }
        } catch {
            model.status = "\(error)"
        }
    }

    private func toggleLoad() {
        if load.isRunning {
            let report = load.stop()
            model.loadConnections = nil
            model.status = "built-in load off: \(report?.messages ?? 0) messages echoed, \(report?.mismatches ?? 0) mismatches"
            return
        }
        guard !engine.isDraining else {
            model.status = "the engine is drained (or draining): press q to quit"
            return
        }
        do {
            let connected = try load.start()
            model.loadConnections = connected
            model.status = "built-in load on: \(connected) connections × \(load.configuration.messageSize) B"
        } catch {
            model.status = "built-in load: \(error)"
        }
    }

    /// The seed's graceful shutdown, on its own thread so the screen follows it.
    private func startDrain() {
        model.drainRequested = true
        model.status = "draining…"
        let box = Unmanaged.passRetained(DrainJob(engine: engine, result: drainReport)).toOpaque()
        var thread = pthread_t()
        pthread_create(&thread, nil, { raw in
            let job = Unmanaged<DrainJob>.fromOpaque(raw!).takeRetainedValue()
            let report = job.engine.drain(timeout: .seconds(10))
            job.result.report.withLock { $0 = report }
            return nil
        }, box)
        drainThread = thread
    }
}

/// Where the drain thread leaves its report.
final class DrainReportBox: Sendable {
    let report = Mutex<DrainReport?>(nil)
}

/// What the drain thread needs.
final class DrainJob: Sendable {
    let engine: EchoEngine
    let result: DrainReportBox

    init(engine: EchoEngine, result: DrainReportBox) {
        self.engine = engine
        self.result = result
    }
}
