import ArgumentParser
import Dashboard
import CompletionPort
import ServerCore
import EngineLink
import EngineStats
import MetricsServer
#if canImport(Glibc)
import Glibc
#endif

/// `iocptop serve`: the engine headless, published for `iocptop list` / `attach`, with one line
/// of totals per second.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the engine (echo, or HTTP with --protocol http) without the dashboard; SIGINT or SIGTERM drains it.",
        discussion: "Other terminals of the same user can watch and steer it: iocptop list, iocptop attach."
    )

    @OptionGroup var engine: EngineOptions
    @OptionGroup var loadOptions: LoadOptions
    @OptionGroup var record: RecordOptions
    @OptionGroup var metrics: MetricsOptions

    @Flag(help: "Print only the start and drain lines, not the per-second totals.")
    var quiet = false

    func run() throws {
        let signals = StopSignals()
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
        printLine(EngineStart.startLine(server))
        let load = loadOptions.builtInLoad(for: server)
        defer { load.stop() }
        guard loadOptions.startIfAsked(load) else {
            _ = server.drain(timeout: .seconds(5))
            throw ExitCode(1)
        }
        let source = RingFrameSource(ring: server.stats)
        var previous = source.latest()
        while !server.isDrained {
            if let signal = signals.wait(milliseconds: 1000) {
                printLine("iocptop: \(signalName(signal)), draining")
                break
            }
            guard !quiet, let frame = source.latest(), frame.number != previous?.number else { continue }
            printLine(TotalsLine.format(frame, previous: previous))
            previous = frame
        }
        load.stop()
        let report = server.drain(timeout: .seconds(5))
        printLine("iocptop: \(report)")
    }
}

/// What every mode that runs an engine does first: start it, publish it, say so.
enum EngineStart {
    /// Starts the engine, or prints one line and exits 1.
    static func engine(_ options: EngineOptions) throws -> PortServer {
        do {
            return try PortServer(configuration: options.engineConfiguration, serving: options.serving)
        } catch {
            printError("iocptop: \(error)")
            throw ExitCode(1)
        }
    }

    /// Publishes the engine for `iocptop list` and `attach`, or drains it, prints one line and
    /// exits 1.
    static func publish(_ server: PortServer) throws -> EnginePublication {
        do {
            return try EnginePublication(stats: server.stats, control: LocalControl(engine: server))
        } catch {
            printError("iocptop: cannot publish the engine for attach: \(error)")
            _ = server.drain(timeout: .seconds(5))
            throw ExitCode(1)
        }
    }

    /// "iocptop: PROTOCOL on ADDRESS · BACKEND · N workers · concurrency C · multishot receive · pid P"
    /// (or "one-shot receive": epoll, a kernel before 6.0, or `--provided-buffers 0`).
    static func startLine(_ server: PortServer) -> String {
        let port = server.port
        var line = "iocptop: \(server.serving.name) on \(server.address) · \(port.backend) · \(server.liveWorkers) workers · concurrency \(port.concurrency) · "
            + (server.receivesMultishot ? "multishot receive" : "one-shot receive") + " · pid \(getpid())"
        if let reason = port.fallbackReason { line += " (io_uring unavailable: \(reason))" }
        return line
    }
}

/// One line of engine totals, with rates since the previous line's frame.
enum TotalsLine {
    static func format(_ frame: StatsFrame, previous: StatsFrame?) -> String {
        let rates = FrameRates(previous: previous, current: frame)
        let engine = frame.engine
        var line = "up \(Format.uptime(frame.uptimeNs)) · open \(engine.openConnections) (peak \(engine.peakConnections))"
        line += " · accepted \(engine.accepted) refused \(engine.refused) errors \(engine.closedByError)"
        if engine.acceptErrors > 0 { line += " accept-failures \(engine.acceptErrors)" }
        line += " · \(Format.rate(rates.completionsPerSecond)) completions/s"
        line += " · in \(Format.fixed(rates.bytesInPerSecond / 1e6)) MB/s out \(Format.fixed(rates.bytesOutPerSecond / 1e6)) MB/s"
        line += " · workers \(frame.liveWorkers) pending \(frame.port.pendingOperations)"
        return line
    }
}
