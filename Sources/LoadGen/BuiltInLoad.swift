import EngineStats
import Synchronization

/// A load generator that can be switched on and off while a server runs — the dashboard's `l`
/// key and the `--load N` option. It runs on its own client thread, never on the server's.
public final class BuiltInLoad: Sendable {
    /// The load to run when switched on (connections, size, pipeline, target).
    public let configuration: LoadConfiguration
    private let running = Mutex<LoadGenerator?>(nil)
    /// What earlier runs did (a stopped load's counts stay in the totals: they never go back).
    private let earlier = Mutex<LoadSample>(LoadSample())

    public init(configuration: LoadConfiguration) {
        var configuration = configuration
        configuration.duration = nil
        configuration.messages = nil
        self.configuration = configuration
    }

    /// Whether the load is on.
    public var isRunning: Bool { running.withLock { $0 != nil } }

    /// Switches the load on (no-op when on). Returns the connections made.
    @discardableResult
    public func start() throws(LoadError) -> Int {
        try running.withLock { current throws(LoadError) -> Int in
            if let current { return current.progress.openConnections }
            let generator = try LoadGenerator(configuration: configuration)
            let (connected, _) = try generator.start()
            current = generator
            return connected
        }
    }

    /// Switches the load off and returns what it did (nil when it was off).
    @discardableResult
    public func stop() -> LoadReport? {
        let generator = running.withLock { current -> LoadGenerator? in
            defer { current = nil }
            return current
        }
        guard let generator else { return nil }
        generator.stop()
        let report = generator.report()
        let roundTrips = generator.roundTrips()
        earlier.withLock { sample in
            sample.messages &+= report.messages
            sample.roundTrip += roundTrips
        }
        return report
    }

    /// The load as frames carry it: open connections now, messages and round trips since it
    /// first started (for `PortServer.setLoadProbe`).
    public var sample: LoadSample {
        var sample = earlier.withLock { $0 }
        running.withLock { current in
            guard let current else { return }
            let progress = current.progress
            sample.connections = progress.openConnections
            sample.messages &+= progress.messages
            sample.roundTrip += current.roundTrips()
        }
        return sample
    }

    /// Live counters of the running load (zero when off).
    public var progress: LoadProgress { running.withLock { $0?.progress ?? LoadProgress() } }
}
