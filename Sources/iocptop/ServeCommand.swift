import ArgumentParser
import Dashboard
import CompletionPort
import EchoEngine
#if canImport(Glibc)
import Glibc
#endif

/// `iocptop serve`: the engine headless, with one line of totals per second.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the echo engine without the dashboard; SIGINT or SIGTERM drains it."
    )

    @OptionGroup var engine: EngineOptions
    @OptionGroup var loadOptions: LoadOptions

    @Flag(help: "Print only the start and drain lines, not the per-second totals.")
    var quiet = false

    func run() throws {
        let signals = StopSignals()
        let server: EchoEngine
        do {
            server = try EchoEngine(configuration: engine.engineConfiguration)
        } catch {
            printError("iocptop: \(error)")
            throw ExitCode(1)
        }
        printLine(Self.startLine(server))
        let load = loadOptions.builtInLoad(for: server)
        defer { load.stop() }
        guard loadOptions.startIfAsked(load) else {
            _ = server.drain(timeout: .seconds(5))
            throw ExitCode(1)
        }
        var previous = server.totals
        var previousTime = ContinuousClock.now
        let started = previousTime
        while true {
            if let signal = signals.wait(milliseconds: 1000) {
                printLine("iocptop: \(signal == SIGINT ? "SIGINT" : "SIGTERM"), draining")
                break
            }
            guard !quiet else { continue }
            let now = ContinuousClock.now
            let totals = server.totals
            printLine(TotalsLine.format(totals, previous: previous, interval: now - previousTime, uptime: now - started))
            previous = totals
            previousTime = now
        }
        load.stop()
        let report = server.drain(timeout: .seconds(5))
        printLine("iocptop: \(report)")
    }

    /// "iocptop: echo on ADDRESS · BACKEND · N workers · concurrency C".
    static func startLine(_ server: EchoEngine) -> String {
        let port = server.port
        var line = "iocptop: echo on \(server.address) · \(port.backend) · \(server.liveWorkers) workers · concurrency \(port.concurrency)"
        if let reason = port.fallbackReason { line += " (io_uring unavailable: \(reason))" }
        return line
    }
}

/// One line of engine totals with rates over the last interval.
enum TotalsLine {
    static func format(_ totals: EngineTotals, previous: EngineTotals, interval: Duration, uptime: Duration) -> String {
        let seconds = max(1e-6, Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18)
        let completions = Double(totals.completions &- previous.completions) / seconds
        let megabytesIn = Double(totals.bytesIn &- previous.bytesIn) / seconds / 1e6
        let megabytesOut = Double(totals.bytesOut &- previous.bytesOut) / seconds / 1e6
        let up = (Double(uptime.components.seconds) + Double(uptime.components.attoseconds) / 1e18).rounded()
        return "up \(Int(up))s · open \(totals.openConnections) (peak \(totals.peakConnections))"
            + " · accepted \(totals.accepted) refused \(totals.refused) errors \(totals.closedByError)"
            + (totals.acceptErrors > 0 ? " accept-failures \(totals.acceptErrors)" : "")
            + " · \(Format.rate(completions)) completions/s · in \(Format.fixed(megabytesIn)) MB/s out \(Format.fixed(megabytesOut)) MB/s"
            + " · workers \(totals.liveWorkers) pending \(totals.pendingOperations)"
    }
}
