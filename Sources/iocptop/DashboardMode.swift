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

/// `iocptop` and `iocptop attach` in a terminal: the dashboard loop.
///
/// One thread (this one) reads keys, signals and stats frames, and sleeps in `poll` on standard
/// input, a signalfd and (attached) the engine's pidfd until the next frame is due: no busy
/// waking. It sees the engine only through a `FrameSource` and sends commands through an
/// `EngineControl`, the same for an engine in this process and one attached over its socket.
final class DashboardMode {
    private let source: FrameSource
    private let control: EngineControl
    private let load: BuiltInLoad
    /// What the status line says the view is on ("pid 1234", or nil for an engine in this process).
    private let attachedTo: String?
    private let signalDescriptor: CInt
    private let terminal: CursesTerminal
    private var model: DashboardModel
    private var view: DashboardView
    private var knownExited: Set<Int> = []
    private var retiresAwaited = 0
    private var quitting = false
    /// Set once the attached engine's process is gone: the last frame stays on screen.
    private var engineGone: String?

    /// Takes over the terminal. `signals`: SIGINT, SIGTERM and SIGWINCH, already blocked in
    /// every thread, read here through a signalfd.
    init(source: FrameSource, control: EngineControl, load: BuiltInLoad, attachedTo: String?,
         signals: sigset_t, colors: Bool) throws(CursesTerminal.StartError) {
        self.source = source
        self.control = control
        self.load = load
        self.attachedTo = attachedTo
        var mask = signals
        signalDescriptor = signalfd(-1, &mask, CInt(SFD_CLOEXEC | SFD_NONBLOCK))
        let unicode = CNcurses_localeIsUTF8() != 0
        terminal = try CursesTerminal(colors: colors)
        view = DashboardView(unicode: unicode)
        let identity = source.identity
        model = DashboardModel(backend: identity.backend, address: identity.address)
        model.periodNs = identity.clampedPeriodNs
        if load.isRunning { model.loadConnections = load.configuration.connections }
        if let attachedTo {
            model.status = "attached to \(attachedTo) (\(identity.address)) · q leaves it serving · h for help"
        } else {
            model.status = "serving on \(identity.address) · pid \(identity.pid) · press h for help"
        }
    }

    deinit { close(signalDescriptor) }

    /// Runs until the operator quits (or SIGINT/SIGTERM). `finishing` runs before the terminal
    /// is restored, with the screen still showing its progress (the local engine's drain).
    func run(finishing: () -> Void) {
        var lastFrame: UInt64 = 0
        var dirty = true
        while !quitting {
            if engineGone == nil, source.newest > lastFrame, let frame = source.latest() {
                lastFrame = frame.number
                ingest(frame)
                dirty = true
            }
            if engineGone == nil, let gone = source.ended {
                engineGone = gone
                if load.isRunning { load.stop() }
                model.loadConnections = nil
                model.note("\(gone) — the last frame stays on screen; press q to quit")
                dirty = true
            }
            if dirty {
                render()
                dirty = false
            }
            var descriptors = [pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0),
                               pollfd(fd: signalDescriptor, events: Int16(POLLIN), revents: 0)]
            if engineGone == nil, source.endDescriptor >= 0 {
                descriptors.append(pollfd(fd: source.endDescriptor, events: Int16(POLLIN), revents: 0))
            }
            _ = poll(&descriptors, nfds_t(descriptors.count), CInt(millisecondsUntilNextFrame()))
            if readSignals() { dirty = true }
            while let key = terminal.readKey() {
                handle(key)
                dirty = true
            }
        }
        load.stop()
        if attachedTo == nil {
            model.status = "quitting: draining the engine…"
            render()
        }
        finishing()
        terminal.end()
    }

    private func millisecondsUntilNextFrame() -> Int {
        guard engineGone == nil, let frame = model.frame else { return engineGone == nil ? 20 : 1000 }
        let due = Int64(truncatingIfNeeded: frame.timestampNs &+ source.identity.clampedPeriodNs) - CIOURing_now_ns()
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
                model.note("posted shutdown packet — worker \(id) exited (\(frame.liveWorkers) live)")
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
        if model.detailID != nil {
            // The detail pane is open: Esc (or Enter) closes it; moving the selection shows the
            // next worker's detail; q and F10 still quit.
            switch action {
            case .closeDetail, .showDetail:
                model.detailID = nil
                return
            default: break
            }
        }
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
        case .selectUp:
            model.moveSelection(by: -1, visibleRows: visible)
            followSelection()
        case .selectDown:
            model.moveSelection(by: 1, visibleRows: visible)
            followSelection()
        case .pageUp: model.moveSelection(by: -visible, visibleRows: visible)
        case .pageDown: model.moveSelection(by: visible, visibleRows: visible)
        case .selectFirst: model.moveSelection(by: -1_000_000, visibleRows: visible)
        case .selectLast: model.moveSelection(by: 1_000_000, visibleRows: visible)
        case .toggleLoad: toggleLoad()
        case .showDetail:
            let rows = model.rows
            if let index = model.selectedIndex { model.detailID = rows[index].id }
        case .closeDetail: model.detailID = nil
        default: command(action)
        }
    }

    /// Actions that change the engine: one `EngineCommand` each, applied by the engine.
    private func command(_ action: Action) {
        if let engineGone {
            model.status = "\(engineGone): press q to quit"
            return
        }
        let command: EngineCommand
        switch action {
        case .addWorker: command = .addWorker
        case .retireWorker: command = .retireWorker
        case .lowerConcurrency: command = .changeConcurrency(by: -1)
        case .raiseConcurrency: command = .changeConcurrency(by: 1)
        case .lessWork: command = .stepWork(by: -1)
        case .moreWork: command = .stepWork(by: 1)
        case .drain: command = .drain
        default: return
        }
        let outcome = control.send(command)
        model.note(outcome.message)
        guard outcome.succeeded else { return }
        switch command {
        case .retireWorker: retiresAwaited += 1
        case .drain: model.drainRequested = true
        default: break
        }
    }

    /// An open detail pane shows the newly selected worker.
    private func followSelection() {
        guard model.detailID != nil, let index = model.selectedIndex else { return }
        model.detailID = model.rows[index].id
    }

    private func toggleLoad() {
        if load.isRunning {
            let report = load.stop()
            model.loadConnections = nil
            model.note("built-in load off: \(report?.messages ?? 0) messages echoed, \(report?.mismatches ?? 0) mismatches")
            return
        }
        guard engineGone == nil, model.frame?.engine.draining != true else {
            model.status = "the engine is drained, draining or gone: press q to quit"
            return
        }
        do {
            let connected = try load.start()
            model.loadConnections = connected
            model.note("built-in load on: \(connected) connections × \(load.configuration.messageSize) B")
        } catch {
            model.status = "built-in load: \(error)"
        }
    }
}
