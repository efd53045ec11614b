import Synchronization

/// A load generator that can be switched on and off while a server runs — the dashboard's `l`
/// key and the `--load N` option. It runs on its own client thread, never on the server's.
public final class BuiltInLoad: Sendable {
    /// The load to run when switched on (connections, size, pipeline, target).
    public let configuration: LoadConfiguration
    private let running = Mutex<LoadGenerator?>(nil)

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
        return generator.report()
    }

    /// Live counters of the running load (zero when off).
    public var progress: LoadProgress { running.withLock { $0?.progress ?? LoadProgress() } }
}
