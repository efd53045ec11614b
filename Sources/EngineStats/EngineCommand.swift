/// One thing an operator (a key, a control-socket client, the auto controller) asks of an
/// engine. The engine applies it (`EngineControl.send`): relative changes are computed there, under
/// one lock, so two viewers pressing `C` at once raise the limit by two.
public enum EngineCommand: Sendable, Hashable {
    /// Start one more worker thread.
    case addWorker
    /// Post one shutdown packet (only while more workers are alive than packets are queued).
    case retireWorker
    /// Change the concurrency limit by this many (never below 1).
    case changeConcurrency(by: Int)
    /// Set the concurrency limit (0: one per online CPU).
    case setConcurrency(Int)
    /// Move the simulated work per completion this many steps along `EngineCommand.workSteps`.
    case stepWork(by: Int)
    /// Set the simulated CPU work per completion, in µs.
    case setWorkMicroseconds(Int)
    /// Set the simulated blocking per completion, in µs.
    case setBlockMicroseconds(Int)
    /// The seed's graceful shutdown, on a thread of the engine's own.
    case drain
    /// Turn auto mode (the pool sizes itself) on or off.
    case setAuto(Bool)
    /// Turn auto mode on when off, off when on (the `a` key).
    case toggleAuto
    /// Close the connection with this number (`ConnectionSample.id`): a packet posted to the
    /// port, served by a worker under the connection's strand like any other.
    case closeConnection(id: UInt64)

    /// The simulated-work ladder the `w` / `W` keys walk, in µs.
    public static let workSteps = [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]

    /// The next step above `current` (`step` > 0) or below it (`step` < 0), `abs(step)` times.
    public static func workStep(from current: Int, _ step: Int) -> Int {
        var value = current
        // More steps than the ladder has change nothing more.
        for _ in 0..<Int(min(UInt(workSteps.count), step.magnitude)) {
            value = step > 0 ? (workSteps.first { $0 > value } ?? workSteps.last!) : (workSteps.last { $0 < value } ?? 0)
        }
        return value
    }

    /// What the command is about, for messages.
    public var name: String {
        switch self {
        case .addWorker: "add worker"
        case .retireWorker: "retire worker"
        case .changeConcurrency, .setConcurrency: "concurrency"
        case .stepWork, .setWorkMicroseconds: "simulated work"
        case .setBlockMicroseconds: "simulated blocking"
        case .drain: "drain"
        case .setAuto, .toggleAuto: "auto mode"
        case .closeConnection: "close connection"
        }
    }
}

/// Who sent a command: an operator's key press (or control-socket client) holds auto mode back
/// for a while (30 s in the server core); auto mode's own commands do not.
public enum CommandOrigin: Sendable, Hashable {
    case `operator`
    case auto
}

/// What applying a command did: one line for a status bar.
public struct CommandOutcome: Sendable, Hashable {
    /// False when the engine refused (drained, no worker to retire, a limit reached).
    public var succeeded: Bool
    public var message: String

    public init(succeeded: Bool, message: String) {
        self.succeeded = succeeded
        self.message = message
    }
}
