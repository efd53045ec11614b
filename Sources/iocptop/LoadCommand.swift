import ArgumentParser
import Dashboard
import LoadGen

extension LoadMode: ExpressibleByArgument {}
#if canImport(Glibc)
import Glibc
#endif

/// `iocptop load`: the load generator against any host:port — echo, or HTTP/1.1.
struct LoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Drive an echo or HTTP server: N connections, verified replies, round-trip latency.",
        discussion: "Exit status 0 when every connection was made and every byte came back as sent (HTTP: every response 2xx with the same body), 1 otherwise."
    )

    @Option(name: .customLong("protocol"), help: "echo, or http (GET --path on keep-alive connections, --pipeline deep).")
    var serverProtocol: ProtocolChoice = .echo

    @Option(help: "HTTP: the path to request.")
    var path = "/plaintext"

    @Option(help: "Echo server host (name, IPv4 or IPv6 address).")
    var host = "127.0.0.1"

    @Option(parsing: .unconditional, help: "Echo server TCP port.")
    var port: UInt16 = 5150

    @Option(parsing: .unconditional, help: "Connections to open.")
    var connections = 64

    @Option(help: "pingpong (messages, each echoed before the next: the default) or stream (continuous writes within --window).")
    var mode: LoadMode = .pingpong

    @Option(parsing: .unconditional, help: "Stream mode: most bytes left unechoed per connection.")
    var window = 1 << 20

    @Option(parsing: .unconditional, help: "Bytes per message (stream mode: per write; default 128, 65536 for stream).")
    var size: Int?

    @Option(parsing: .unconditional, help: "Messages outstanding per connection (1: ping-pong).")
    var pipeline = 1

    @Option(parsing: .unconditional, help: "Seconds to run (default 10 unless --messages is given).")
    var duration: Double?

    @Option(parsing: .unconditional, help: "Messages to send in all; the run ends when they are all echoed.")
    var messages: Int?

    @Option(parsing: .unconditional, help: "Messages per second over all connections (default: as fast as the server echoes).")
    var rate: Double?

    @Option(parsing: .unconditional, help: "Client threads.")
    var threads = 1

    @Option(name: .customLong("connect-timeout"), parsing: .unconditional, help: "Seconds allowed for connecting.")
    var connectTimeout = 5.0

    @Flag(help: "Print the summary as one JSON object (progress goes to stderr).")
    var json = false

    private var loadConfiguration: LoadConfiguration {
        var configuration = LoadConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.connections = connections
        configuration.messageSize = size ?? (mode == .stream ? 65536 : 128)
        configuration.pipeline = pipeline
        configuration.mode = mode
        configuration.window = window
        configuration.duration = duration ?? (messages == nil ? 10 : nil)
        configuration.messages = messages
        configuration.rate = rate
        configuration.threads = threads
        configuration.connectTimeout = connectTimeout
        if serverProtocol == .http { configuration.httpPath = path }
        return configuration
    }

    func validate() throws {
        if let problem = loadConfiguration.problem { throw ValidationError(problem) }
    }

    func run() throws {
        let signals = StopSignals()
        let configuration = loadConfiguration
        let generator: LoadGenerator
        let connected: Int
        let failures: [ErrorCount]
        do {
            generator = try LoadGenerator(configuration: configuration)
            (connected, failures) = try generator.start()
        } catch {
            printError("iocptop load: \(error)")
            throw ExitCode(1)
        }
        var line = "iocptop load: \(host):\(port) · \(connected)/\(connections) connected · "
            + (configuration.httpPath.map { "GET \($0) × pipeline \(pipeline)" }
                ?? (mode == .stream ? "streaming \(configuration.messageSize) B writes, window \(window) B" : "\(configuration.messageSize) B × pipeline \(pipeline)"))
        if !failures.isEmpty { line += " · failed: " + failures.map { "\($0.count) × \($0.kind)" }.joined(separator: ", ") }
        progressLine(line)
        var previous = LoadProgress()
        var elapsed = 0
        while !generator.isFinished {
            if let signal = signals.wait(milliseconds: 1000) {
                progressLine("iocptop load: \(signalName(signal)), stopping")
                break
            }
            guard !generator.isFinished else { break }
            elapsed += 1
            let now = generator.progress
            progressLine("\(elapsed)s · \(now.openConnections) open · \(Format.rate(Double(now.messages &- previous.messages))) \(configuration.httpPath == nil ? "msg" : "req")/s"
                + " · \(Format.fixed(Double(now.bytes &- previous.bytes) / 1e6)) MB/s · errors \(now.errors)")
            previous = now
        }
        generator.stop()
        let report = generator.report()
        printLine(json ? LoadSummary.json(report, configuration) : LoadSummary.text(report, configuration))
        if !report.clean { throw ExitCode(1) }
    }

    /// Progress goes to stdout in text mode, to stderr with --json (stdout holds only the JSON).
    private func progressLine(_ text: String) {
        if json { printError(text) } else { printLine(text) }
    }
}

/// The end-of-run summary of `iocptop load`.
enum LoadSummary {
    static func text(_ report: LoadReport, _ configuration: LoadConfiguration) -> String {
        let us = { (ns: UInt64) in Format.fixed(Double(ns) / 1000) }
        let http = configuration.httpPath
        var lines = [
            "connections \(report.connected)/\(report.connectionsRequested) · "
                + (http.map { "GET \($0)" } ?? "\(configuration.messageSize) B")
                + " × \(configuration.mode == .stream ? "window \(configuration.window) B" : "pipeline \(configuration.pipeline)") · \(Format.fixed(report.seconds, decimals: 2)) s",
            http == nil
                ? "messages \(report.messages) · \(Format.rate(report.messagesPerSecond)) msg/s · \(Format.fixed(report.megabytesPerSecond)) MB/s each way"
                : "requests \(report.messages) · \(Format.rate(report.messagesPerSecond)) req/s · \(Format.fixed(report.megabytesPerSecond)) MB/s of responses",
            "latency µs: p50 \(us(report.latency.p50)) · p90 \(us(report.latency.p90)) · p99 \(us(report.latency.p99))"
                + " · p99.9 \(us(report.latency.p999)) · max \(us(report.latency.max))",
        ]
        let errors = report.connectFailures.map { "connect: \($0.count) × \($0.kind)" } + report.errors.map { "\($0.count) × \($0.kind)" }
        lines.append("errors: " + (errors.isEmpty ? "none" : errors.joined(separator: ", "))
            + (http == nil ? " · mismatches \(report.mismatches)" : " · bodies unlike the first \(report.mismatches)")
            + (configuration.mode == .stream ? " · stalled connections \(report.stalledConnections)" : ""))
        return lines.joined(separator: "\n")
    }

    static func json(_ report: LoadReport, _ configuration: LoadConfiguration) -> String {
        var line = JSONLine()
        line.add("host", configuration.host)
        line.add("port", Int(configuration.port))
        line.add("connections_requested", report.connectionsRequested)
        line.add("connections", report.connected)
        line.add("size", configuration.bytesPerMessage)
        line.add("pipeline", configuration.pipeline)
        line.add("seconds", report.seconds, decimals: 3)
        line.add("messages", report.messages)
        line.add("messages_per_s", report.messagesPerSecond)
        line.add("mb_per_s", report.megabytesPerSecond, decimals: 3)
        var latency = JSONLine()
        latency.add("p50", Double(report.latency.p50) / 1000)
        latency.add("p90", Double(report.latency.p90) / 1000)
        latency.add("p99", Double(report.latency.p99) / 1000)
        latency.add("p999", Double(report.latency.p999) / 1000)
        latency.add("max", Double(report.latency.max) / 1000)
        line.add("latency_us", object: latency)
        var connectFailures = JSONLine()
        for failure in report.connectFailures { connectFailures.add(failure.kind, failure.count) }
        line.add("connect_failures", object: connectFailures)
        var errors = JSONLine()
        for error in report.errors { errors.add(error.kind, error.count) }
        line.add("errors", object: errors)
        line.add("mismatches", report.mismatches)
        line.add("mode", configuration.mode.rawValue)
        line.add("protocol", configuration.httpPath == nil ? "echo" : "http")
        if let path = configuration.httpPath { line.add("path", path) }
        line.add("window", configuration.mode == .stream ? configuration.window : 0)
        line.add("stalled", report.stalledConnections)
        return line.string
    }
}
