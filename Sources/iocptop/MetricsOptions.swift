import ArgumentParser
import EngineStats
import MetricsServer

/// `--metrics HOST:PORT`, on every mode that has frames: the engine's own and attached viewers.
struct MetricsOptions: ParsableArguments {
    @Option(name: .customLong("metrics"),
            help: "Serve Prometheus metrics at http://HOST:PORT/metrics (HOST defaults to 127.0.0.1; PORT alone works).")
    var address: String?

    /// The server over `source`'s frames, started; nil without --metrics. One line and exit 1
    /// for a malformed address, one in use, or one that cannot be bound.
    func start(on source: FrameSource) throws -> MetricsServer? {
        guard let text = address else { return nil }
        guard let parsed = MetricsAddress(text) else {
            printError("iocptop: --metrics \(text): not HOST:PORT (for example 127.0.0.1:9464, [::1]:9464 or 9464)")
            throw ExitCode(1)
        }
        let reader = SharedSource(source)
        do {
            let server = try MetricsServer(address: parsed) { (reader.source.identity, reader.source.latest()) }
            try server.start()
            printError("iocptop: metrics on http://\(server.address)/metrics")
            return server
        } catch {
            printError("iocptop: \(error)")
            throw ExitCode(1)
        }
    }
}

/// A frame source read from the metrics thread: rings are read with their seqlock, safely from
/// any thread.
private final class SharedSource: @unchecked Sendable {
    // @unchecked: a FrameSource is an existential of no declared sendability; the ring sources read through a seqlock from any thread.
    let source: FrameSource
    init(_ source: FrameSource) { self.source = source }
}
