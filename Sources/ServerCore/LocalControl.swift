import EngineStats

/// The engine in this process, as a viewer's control: keys go straight to `apply`.
public final class LocalControl: EngineControl {
    public let engine: PortServer

    public init(engine: PortServer) { self.engine = engine }

    public func send(_ command: EngineCommand) -> CommandOutcome { engine.apply(command) }

    public func apply(autoDecision: AutoSample) -> Bool { engine.applyAutoDecision(autoDecision) }
}

/// The control auto mode's thread acts through. It holds the engine without keeping it alive
/// (the engine owns the sizer, and stops it in `drain`, which its deinit runs), so a dropped
/// engine goes away.
final class AutoControl: EngineControl {
    private weak let engine: PortServer?

    init(engine: PortServer) { self.engine = engine }

    func send(_ command: EngineCommand) -> CommandOutcome {
        engine?.apply(command, origin: .auto) ?? CommandOutcome(succeeded: false, message: "the engine is gone")
    }

    func apply(autoDecision: AutoSample) -> Bool { engine?.applyAutoDecision(autoDecision) ?? false }
}
