import ArgumentParser
import ServerCore
import EngineStats
import MetricsServer
import CNcurses
#if canImport(Glibc)
import Glibc
#endif

/// `iocptop`: the completion-port echo engine, its live view, and its load generator.
@main
struct IOCPTop: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "iocptop",
        abstract: "A completion-port (IOCP model) server core on io_uring or epoll — TCP echo or HTTP/1.1 — watched live.",
        discussion: "Without a subcommand, `iocptop` runs `iocptop top`: the engine and its dashboard.",
        subcommands: [TopCommand.self, ServeCommand.self, ListCommand.self, AttachCommand.self, ReplayCommand.self, LoadCommand.self],
        defaultSubcommand: TopCommand.self
    )
}

/// How a view shows frames: the dashboard, or `--batch` text or JSON. Shared by `iocptop` and
/// `iocptop attach`.
struct DisplayOptions: ParsableArguments {
    @Flag(help: "No dashboard: print a totals line and a worker table every interval, like `top -b`.")
    var batch = false

    @Flag(help: "With --batch: one JSON object per interval, one per line (schema in README.md).")
    var json = false

    @Option(parsing: .unconditional, help: "With --batch: stop after N intervals (0: until SIGINT/SIGTERM).")
    var iterations = 0

    @Flag(name: .customLong("no-color"), help: "Monochrome dashboard (also when NO_COLOR is set).")
    var noColor = false

    func validate() throws {
        guard iterations >= 0 else { throw ValidationError("--iterations must not be negative") }
    }

    /// Whether to draw the dashboard: not with --batch, not when stdout is not a terminal (said
    /// on stderr). Sets the locale for the dashboard.
    func wantsDashboard() -> Bool {
        let toTerminal = isatty(STDOUT_FILENO) == 1
        if !batch && !toTerminal { printError("iocptop: stdout is not a terminal, printing --batch tables") }
        let dashboard = !batch && toTerminal
        if dashboard { setlocale(LC_ALL, "") }
        return dashboard
    }

    var colors: Bool { !noColor && (getenv("NO_COLOR").map { $0.pointee == 0 } ?? true) }
}

/// `iocptop` / `iocptop top`: the engine with its live view — the dashboard in a terminal, or
/// `--batch` tables (also what it prints when stdout is not a terminal). The engine is published
/// like `serve`'s, so other terminals can attach to it.
struct TopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "The engine and its dashboard (the default), or --batch tables."
    )

    @OptionGroup var engine: EngineOptions
    @OptionGroup var loadOptions: LoadOptions
    @OptionGroup var display: DisplayOptions
    @OptionGroup var record: RecordOptions
    @OptionGroup var metrics: MetricsOptions

    func run() throws {
        let dashboard = display.wantsDashboard()
        // Blocked before any thread starts, so every engine thread inherits the mask.
        let signals = StopSignals(resize: dashboard)
        let server = try EngineStart.engine(engine)
        let publication = try EngineStart.publish(server)
        defer { publication.withdraw() }
        let recorder: FrameRecorder?
        do { recorder = try record.start(on: server.stats) } catch {
            _ = server.drain(timeout: .seconds(5))
            throw error
        }
        defer { recorder?.finish() }
        let exporter: MetricsServer?
        do { exporter = try metrics.start(on: RingFrameSource(ring: server.stats)) } catch {
            _ = server.drain(timeout: .seconds(5))
            throw error
        }
        defer { exporter?.stop() }
        let load = loadOptions.builtInLoad(for: server)
        let source = RingFrameSource(ring: server.stats)
        guard dashboard else {
            printError(EngineStart.startLine(server))
            if loadOptions.startIfAsked(load) {
                if BatchMode(source: source, json: display.json, iterations: display.iterations, signals: signals).run() == .signal {
                    printError("iocptop: draining")
                }
            }
            load.stop()
            printError("iocptop: \(server.drain(timeout: .seconds(5)))")
            return
        }
        guard loadOptions.startIfAsked(load) else {
            _ = server.drain(timeout: .seconds(5))
            throw ExitCode(1)
        }
        let mode: DashboardMode
        do {
            mode = try DashboardMode(source: source, control: LocalControl(engine: server), load: load, attachedTo: nil,
                                     signals: signals.set, colors: display.colors, recorder: recorder)
        } catch {
            printError("iocptop: \(error)")
            load.stop()
            _ = server.drain(timeout: .seconds(5))
            throw ExitCode(1)
        }
        var report: DrainReport?
        mode.run { report = server.drain(timeout: .seconds(5)) }
        if let report { printError("iocptop: \(report)") }
    }
}
