import CNcurses
import CIOURing
import Dashboard
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
    /// The recording this view writes (`--record`), whose early stop is said on the status line.
    private let recorder: FrameRecorder?
    private var recorderStopShown = false
    /// `iocptop replay`: the recording being played, and the frame shown (index).
    private let replay: ReplaySource?
    private var replayShown = -1
    /// Replay: the status line last composed (timeline plus note), and the operator's last note
    /// with when it was said; a note stays beside the timeline for `replayNoteNs`.
    private var replayStatus = ""
    private var replayNote: (text: String, atNs: Int64)?
    private static let replayNoteNs: Int64 = 4_000_000_000
    private let unicode: Bool

    /// Takes over the terminal. `signals`: SIGINT, SIGTERM and SIGWINCH, already blocked in
    /// every thread, read here through a signalfd.
    init(source: FrameSource, control: EngineControl, load: BuiltInLoad, attachedTo: String?,
         signals: sigset_t, colors: Bool, recorder: FrameRecorder? = nil, replay: ReplaySource? = nil) throws(CursesTerminal.StartError) {
        self.source = source
        self.recorder = recorder
        self.replay = replay
        self.control = control
        self.load = load
        self.attachedTo = attachedTo
        var mask = signals
        signalDescriptor = signalfd(-1, &mask, CInt(SFD_CLOEXEC | SFD_NONBLOCK))
        unicode = CNcurses_localeIsUTF8() != 0
        terminal = try CursesTerminal(colors: colors)
        view = DashboardView(unicode: unicode)
        let identity = source.identity
        model = DashboardModel(backend: identity.backend, address: identity.address)
        model.periodNs = identity.clampedPeriodNs
        model.handler = identity.handler
        model.protocolName = identity.protocolName
        model.connectionFigure = identity.connectionFigure
        if load.isRunning { model.loadConnections = load.configuration.connections }
        model.replayMode = replay != nil
        if replay != nil {
            model.status = "recorded from pid \(identity.pid) · h for help"
        } else if let attachedTo {
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
            if let replay {
                if followReplay(replay) { dirty = true }
            } else if engineGone == nil, source.newest > lastFrame, let frame = source.latest() {
                if lastFrame > 0, frame.number > lastFrame + 1 {
                    // Frames skipped (a slow terminal, a short period): their closes still show.
                    // By number: the sampler may have published another since `latest()`.
                    let skipped = Int(min(frame.number - lastFrame - 1, 128))
                    for older in source.recent(skipped + 2) where older.number > lastFrame && older.number < frame.number {
                        model.takeCloses(of: older)
                    }
                }
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
            if !recorderStopShown, let reason = recorder?.stopReason {
                recorderStopShown = true
                model.note(reason)
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
        if attachedTo == nil, replay == nil {
            model.status = "quitting: draining the engine…"
            render()
        }
        finishing()
        terminal.end()
    }

    /// Moves the view to the replay's position; true when it changed.
    private func followReplay(_ replay: ReplaySource) -> Bool {
        replay.tick()
        let position = replay.position
        let changed = position != replayShown
        if changed {
            if position > replayShown, position - replayShown <= DashboardModel.historyLength {
                // Forward (playing, a step, a fast speed): take in the frames passed, in order.
                for index in (replayShown + 1)...position { ingest(replay.frame(at: index)) }
            } else {
                // Back, or far ahead: rebuild rates, history and events from the frames before.
                model.clearFrames()
                knownExited = []
                for index in max(0, position - DashboardModel.historyLength)...position { model.ingest(replay.frame(at: index)) }
                // The rebuild's notes (auto decisions) are history, not news.
                model.status = replayStatus
            }
            replayShown = position
        }
        // Anything else that set the status line (a sort, a refused key) is a note, kept a while.
        let now = CIOURing_now_ns()
        if model.status != replayStatus { replayNote = (model.status, now) }
        if let note = replayNote, now - note.atNs > Self.replayNoteNs { replayNote = nil }
        let barWidth = max(8, min(40, Int(terminal.size.width) - 70))
        var status = replay.timeline(barWidth: barWidth, unicode: unicode)
        if let note = replayNote, !note.text.isEmpty { status += " · " + note.text }
        guard status != replayStatus else { return changed }
        model.status = status
        replayStatus = status
        return true
    }

    private func millisecondsUntilNextFrame() -> Int {
        if let replay { return min(250, replay.millisecondsToNextFrame ?? 250) }
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
        if let pending = model.pendingClose {
            // `x` asked: `y` sends the close, any other key cancels.
            model.pendingClose = nil
            if key == Int32(UInt8(ascii: "y")) || key == Int32(UInt8(ascii: "Y")) {
                sendCommand(.closeConnection(id: pending.id))
            } else {
                model.status = "close of connection \(pending.id) cancelled"
            }
            return
        }
        if let replay, replay.handle(key) { return }
        guard let action = KeyMap.action(for: key) else { return }
        if model.table == .connections, model.connectionDetailID != nil {
            switch action {
            case .closeDetail, .showDetail:
                model.connectionDetailID = nil
                return
            default: break
            }
        }
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
            model.status = "sorted by \(model.sortTitle)"
        case .reverseSort:
            let reversed: Bool
            if model.table == .connections {
                model.connectionReversed.toggle()
                reversed = model.connectionReversed
            } else {
                model.reversed.toggle()
                reversed = model.reversed
            }
            model.status = "sorted by \(model.sortTitle), \(reversed ? "reversed" : "natural order")"
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
            if model.table == .connections {
                model.connectionDetailID = model.selectedConnection?.id
            } else if let index = model.selectedIndex {
                model.detailID = model.rows[index].id
            }
        case .closeDetail:
            model.detailID = nil
            model.connectionDetailID = nil
        case .toggleTable:
            model.toggleTable()
            model.status = model.table == .connections
                ? "connections: the longest waiting and the busiest (--connections), sorted by \(model.sortTitle) · x closes one"
                : "workers"
        case .closeConnection: askToClose()
        default: command(action)
        }
    }

    /// `x`: asks before closing the selected connection (a viewer that cannot close one is
    /// told so at once).
    private func askToClose() {
        guard model.table == .connections else {
            model.status = "x closes a connection: Tab to the connections table first"
            return
        }
        if let id = model.connectionDetailID, model.connectionDetail == nil {
            // The detail pane's connection left the frame's rows: it is still the one meant.
            model.status = "connection \(id) is not in the newest frame (it moved too little, or closed): x works while it shows"
            return
        }
        guard let row = model.connectionDetail ?? model.selectedConnection else {
            model.status = model.selectedConnectionID == nil ? "no connection selected"
                : "the selected connection left the frame's rows: select one (↑ ↓)"
            return
        }
        guard !row.isClosed else {
            model.status = "connection \(row.id) is already closed (\(row.closeText))"
            return
        }
        if replay != nil || control is ReadOnlyControl || engineGone != nil {
            // Refused without asking: say why, as the control does.
            sendCommand(.closeConnection(id: row.id))
            return
        }
        model.pendingClose = row
    }

    /// Actions that change the engine: one `EngineCommand` each, applied by the engine.
    private func command(_ action: Action) {
        let command: EngineCommand
        switch action {
        case .addWorker: command = .addWorker
        case .retireWorker: command = .retireWorker
        case .lowerConcurrency: command = .changeConcurrency(by: -1)
        case .raiseConcurrency: command = .changeConcurrency(by: 1)
        case .lessWork: command = .stepWork(by: -1)
        case .moreWork: command = .stepWork(by: 1)
        case .drain: command = .drain
        case .toggleAuto: command = .toggleAuto
        default: return
        }
        sendCommand(command)
    }

    /// Sends a command and says what came of it (status line and event log).
    private func sendCommand(_ command: EngineCommand) {
        if let engineGone {
            model.status = "\(engineGone): press q to quit"
            return
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

    /// An open detail pane shows the newly selected row.
    private func followSelection() {
        if model.table == .connections {
            if model.connectionDetailID != nil { model.connectionDetailID = model.selectedConnection?.id }
            return
        }
        guard model.detailID != nil, let index = model.selectedIndex else { return }
        model.detailID = model.rows[index].id
    }

    private func toggleLoad() {
        if replay != nil {
            model.note("replay: read-only — the load generator does nothing to a recording")
            return
        }
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
