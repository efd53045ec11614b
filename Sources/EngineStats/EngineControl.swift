/// Where a viewer sends commands: the engine in this process, an engine's control socket, or
/// nowhere (a read-only viewer, a recording).
public protocol EngineControl: AnyObject, Sendable {
    /// Sends `command` and returns what happened (never throws: failures are outcomes).
    func send(_ command: EngineCommand) -> CommandOutcome

    /// Applies a decision of auto mode (`AutoSizer`) if auto mode is still on and not held
    /// back by an operator; returns whether the pool changed. Controls that cannot size a
    /// pool (a read-only viewer, a recording) refuse.
    func apply(autoDecision: AutoSample) -> Bool
}

extension EngineControl {
    /// Refuses: only the engine's own control can apply auto decisions.
    public func apply(autoDecision: AutoSample) -> Bool { false }
}

/// A viewer that may only look: attached with `--read-only`, or replaying a recording.
public final class ReadOnlyControl: EngineControl {
    /// Whose view this is, said with every refusal.
    public enum Viewer: Sendable { case attachedReadOnly, replay }
    public let viewer: Viewer

    public init(_ viewer: Viewer = .attachedReadOnly) { self.viewer = viewer }

    public func send(_ command: EngineCommand) -> CommandOutcome {
        switch viewer {
        case .attachedReadOnly:
            CommandOutcome(succeeded: false, message: "read-only: \(command.name) refused (attached with --read-only)")
        case .replay:
            CommandOutcome(succeeded: false, message: "replay: read-only (\(command.name) not sent)")
        }
    }
}
