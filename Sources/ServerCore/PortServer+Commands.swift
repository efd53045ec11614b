import CIOURing
import EngineStats
import NativeThreads
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

extension PortServer {
    /// Applies one operator command and says what it did. Every viewer (keys here, a control
    /// socket client, the auto controller) goes through this: commands are serialised, and
    /// relative ones (`changeConcurrency`, `stepWork`) read and set under the same lock, so
    /// concurrent commands add up instead of overwriting each other.
    ///
    /// While auto mode is on, an operator's change to the pool or the limit (`+ - c C`) holds it
    /// back for `autoPauseNs`: the operator wins, and the frames say until when.
    public func apply(_ command: EngineCommand, origin: CommandOrigin = .operator) -> CommandOutcome {
        switch command {
        case .setAuto(let on): return setAuto(on)
        case .toggleAuto: return setAuto(nil)
        default: break
        }
        var outcome = perform(command)
        switch command {
        case .addWorker, .retireWorker, .changeConcurrency, .setConcurrency:
            guard origin == .operator, outcome.succeeded else { break }
            let paused = autoState.withLock { state in
                guard state.enabled else { return false }
                state.pausedUntilNs = UInt64(CIOURing_now_ns()) + Self.autoPauseNs
                return true
            }
            if paused { outcome.message += " · auto paused \(Self.autoPauseNs / 1_000_000_000) s" }
        default: break
        }
        return outcome
    }

    /// How long an operator's key holds auto mode back.
    public static let autoPauseNs: UInt64 = 30_000_000_000

    /// Turns auto mode on (starting its thread the first time) or off; `nil` toggles (one read
    /// and write under the state's lock, so two toggles at once cancel out, not collapse).
    private func setAuto(_ wanted: Bool?) -> CommandOutcome {
        // Under the sizer's lock: `drain` sets `draining` before it takes this lock to stop the
        // sizer, so either it sees the sizer or this sees the drain — no thread is left behind.
        let started = autoSizer.withLock { sizer -> Bool? in
            guard !isDraining else { return nil }
            let on = autoState.withLock { state -> Bool in
                state.enabled = wanted ?? !state.enabled
                state.pausedUntilNs = 0
                return state.enabled
            }
            guard on else { return false }
            if sizer == nil {
                sizer = try? AutoSizer(ring: stats, control: AutoControl(engine: self), maxWorkers: configuration.autoMaxWorkers)
            }
            guard sizer != nil else {
                autoState.withLock { $0.enabled = false }
                return nil
            }
            return true
        }
        switch started {
        case nil where isDraining: return CommandOutcome(succeeded: false, message: "\(EngineError.drained)")
        case nil: return CommandOutcome(succeeded: false, message: "auto mode not started: cannot create its thread")
        case true?:
            return CommandOutcome(succeeded: true, message: "auto mode on: the pool sizes itself (\(port.concurrency) to \(configuration.autoMaxWorkers) workers)")
        case false?: return CommandOutcome(succeeded: true, message: "auto mode off: the pool stays as it is")
        }
    }

    /// Applies an auto decision if auto mode is still on and not held back by the operator:
    /// checked and applied under the state's lock, so a key pressed meanwhile wins.
    func applyAutoDecision(_ decision: AutoSample) -> Bool {
        autoState.withLock { state in
            guard state.enabled, !state.isPaused(at: UInt64(CIOURing_now_ns())) else { return false }
            let outcome = perform(decision.action == .add ? .addWorker : .retireWorker)
            guard outcome.succeeded else { return false }
            state.changes += 1
            state.actionCode = decision.actionCode
            state.reasonCode = decision.reasonCode
            state.decidedAtNs = decision.decidedAtNs
            state.workers = decision.workers
            state.blocked = decision.blocked
            state.queueWaitP99Ns = decision.queueWaitP99Ns
            state.completionsPerSecond = decision.completionsPerSecond
            state.changePercent = decision.changePercent
            state.queued = decision.queued
            state.queueOldestMicroseconds = decision.queueOldestMicroseconds
            return true
        }
    }

    private func perform(_ command: EngineCommand) -> CommandOutcome {
        if command == .drain { return startDrain() }
        if case .closeConnection(let id) = command { return closeConnection(id: id) }
        if command == .retireWorker {
            do {
                guard try retireWorker() else {
                    return CommandOutcome(succeeded: false, message: "no worker left to retire (shutdown packets already queued for every live worker)")
                }
                return CommandOutcome(succeeded: true, message: "posted shutdown packet (\(workersTarget) workers asked for)")
            } catch {
                return CommandOutcome(succeeded: false, message: "\(error)")
            }
        }
        return applyLock.withLock { _ in
            do throws(EngineError) {
                guard !isDraining else { throw EngineError.drained }
                switch command {
                case .addWorker:
                    let id = try addWorker()
                    return CommandOutcome(succeeded: true, message: "added worker \(id) (\(workersTarget) workers asked for)")
                case .changeConcurrency(let delta):
                    let before = port.concurrency
                    let after = min(4096, max(1, before + delta))
                    try setConcurrency(after)
                    return CommandOutcome(succeeded: true, message: "concurrency \(before) → \(after)")
                case .setConcurrency(let limit):
                    guard (0...4096).contains(limit) else {
                        return CommandOutcome(succeeded: false, message: "concurrency must be between 0 and 4096")
                    }
                    let before = port.concurrency
                    try setConcurrency(limit)
                    return CommandOutcome(succeeded: true, message: "concurrency \(before) → \(port.concurrency)")
                case .stepWork(let steps):
                    let before = simulatedWorkMicroseconds
                    simulatedWorkMicroseconds = EngineCommand.workStep(from: before, steps)
                    return CommandOutcome(succeeded: true, message: "simulated work \(before) → \(simulatedWorkMicroseconds) µs per completion")
                case .setWorkMicroseconds(let value):
                    guard (0...1_000_000).contains(value) else {
                        return CommandOutcome(succeeded: false, message: "simulated work must be between 0 and 1000000 µs")
                    }
                    let before = simulatedWorkMicroseconds
                    simulatedWorkMicroseconds = value
                    return CommandOutcome(succeeded: true, message: "simulated work \(before) → \(value) µs per completion")
                case .setBlockMicroseconds(let value):
                    guard (0...1_000_000).contains(value) else {
                        return CommandOutcome(succeeded: false, message: "simulated blocking must be between 0 and 1000000 µs")
                    }
                    let before = simulatedBlockMicroseconds
                    simulatedBlockMicroseconds = value
                    return CommandOutcome(succeeded: true, message: "simulated blocking \(before) → \(value) µs per completion")
                case .retireWorker, .drain, .setAuto, .toggleAuto, .closeConnection:
                    return CommandOutcome(succeeded: false, message: "unreachable")
                }
            } catch {
                return CommandOutcome(succeeded: false, message: "\(error)")
            }
        }
    }

    /// Starts the drain on a thread of its own, so whoever asked (a key, a control socket
    /// client) can watch it happen in the frames. `drain(timeout:)` called later waits for it.
    private func startDrain() -> CommandOutcome {
        guard !isDraining else { return CommandOutcome(succeeded: false, message: "the engine is already draining") }
        do {
            try NativeThread.detached { [self] in _ = drain(timeout: .seconds(10)) }
        } catch {
            return CommandOutcome(succeeded: false, message: "drain not started: \(error)")
        }
        return CommandOutcome(succeeded: true, message: "draining…")
    }
}
