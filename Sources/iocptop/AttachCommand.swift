import ArgumentParser
import Dashboard
import EngineLink
import EngineStats
import MetricsServer
#if canImport(Glibc)
import Glibc
#endif

/// `iocptop attach [PID]`: the dashboard (or `--batch`) on an engine running in another
/// process of this user — `iocptop serve`, or another terminal's `iocptop`.
struct AttachCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attach",
        abstract: "Watch and steer a running engine of this user (iocptop serve, or another iocptop).",
        discussion: "Without PID: the only running engine. q leaves the viewer; the engine keeps serving."
    )

    @Argument(help: "The engine's process id (iocptop list shows them).")
    var pid: Int32?

    @Flag(name: .customLong("read-only"), help: "Only watch: keys that would change the engine are refused.")
    var readOnly = false

    @OptionGroup var display: DisplayOptions
    @OptionGroup var loadOptions: LoadOptions
    @OptionGroup var record: RecordOptions
    @OptionGroup var metrics: MetricsOptions

    func run() throws {
        let dashboard = display.wantsDashboard()
        let signals = StopSignals(resize: dashboard)
        let engine: AttachedEngine
        do {
            engine = try AttachedEngine(pid: pid)
        } catch {
            printError("iocptop: \(error)")
            throw ExitCode(1)
        }
        let identity = engine.identity
        let recorder = try record.start(on: engine.ring)
        defer { recorder?.finish() }
        let exporter = try metrics.start(on: engine)
        defer { exporter?.stop() }
        guard dashboard else {
            printError("iocptop: attached to pid \(identity.pid) · \(identity.protocolName) on \(identity.address) · \(identity.backend)")
            if case .engineGone(let why) = BatchMode(source: engine, json: display.json, iterations: display.iterations,
                                                     signals: signals).run() {
                printError("iocptop: \(why)")
            }
            return
        }
        let load = loadOptions.builtInLoad(forAddress: identity.address, protocolName: identity.protocolName)
        guard loadOptions.startIfAsked(load) else { throw ExitCode(1) }
        let control: EngineControl = readOnly ? ReadOnlyControl() : engine.control
        let mode: DashboardMode
        do {
            mode = try DashboardMode(source: engine, control: control, load: load,
                                     attachedTo: "pid \(identity.pid)" + (readOnly ? ", read-only" : ""),
                                     signals: signals.set, colors: display.colors, recorder: recorder)
        } catch {
            printError("iocptop: \(error)")
            load.stop()
            throw ExitCode(1)
        }
        mode.run {}
        if let gone = engine.ended { printError("iocptop: \(gone)") }
    }
}

/// `iocptop list`: the running engines of this user.
struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the running engines of this user (pid, address, protocol, backend, workers, connections, uptime)."
    )

    @Flag(help: "One JSON array of objects: pid, address, backend, protocol, workers, connections, uptime_s, draining.")
    var json = false

    func run() throws {
        let engines: [EngineListing]
        do {
            engines = try EngineListing.all()
        } catch {
            printError("iocptop: \(error)")
            throw ExitCode(1)
        }
        if json {
            let objects = engines.map { engine in
                var object = JSONLine()
                object.add("pid", Int(engine.pid))
                object.add("address", engine.address)
                object.add("backend", engine.backend)
                object.add("protocol", engine.protocolName)
                object.add("workers", engine.workers)
                object.add("connections", engine.connections)
                object.add("uptime_s", engine.uptimeSeconds, decimals: 1)
                object.add("draining", engine.draining)
                return object.string
            }
            printLine("[" + objects.joined(separator: ",") + "]")
            return
        }
        guard !engines.isEmpty else {
            printLine("no running iocptop engines of this user")
            return
        }
        printLine("    PID  ADDRESS               PROTOCOL  BACKEND   WORKERS  CONNS     UPTIME")
        for engine in engines {
            printLine(Format.right(String(engine.pid), 7) + "  " + Format.left(engine.address, 21) + " "
                + Format.left(engine.protocolName, 9) + " "
                + Format.left(engine.backend, 9) + Format.right(String(engine.workers), 8)
                + Format.right(String(engine.connections), 7)
                + Format.right(Format.uptime(UInt64(min(max(0, engine.uptimeSeconds), 1e9) * 1e9)), 11)
                + (engine.draining ? "  draining" : ""))
        }
    }
}
