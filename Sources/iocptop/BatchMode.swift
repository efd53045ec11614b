import CIOURing
import EngineStats
#if canImport(Glibc)
import Glibc
#endif

/// `iocptop --batch` and `iocptop attach --batch`: prints one report per frame until the
/// iteration count, a signal, a closed stdout, or the end of the engine stops it.
struct BatchMode {
    let source: FrameSource
    let json: Bool
    let iterations: Int
    let signals: StopSignals

    /// Why the printing stopped.
    enum Ending: Equatable { case done, signal, engineGone(String), drained }

    @discardableResult
    func run() -> Ending {
        var previous: StatsFrame?
        var printed = 0
        while iterations == 0 || printed < iterations {
            let frame: StatsFrame
            switch nextFrame(after: previous) {
            case .frame(let next): frame = next
            case .stop(let ending): return ending
            }
            let rates = FrameRates(previous: previous, current: frame)
            let report = BatchReport(identity: source.identity, frame: frame, previous: previous, rates: rates,
                                     warnings: Warnings.evaluate(previous: previous, current: frame, rates: rates))
            guard printLine(json ? report.json : report.text) else { return .done }
            previous = frame
            printed += 1
            // A drain asked for by another viewer: the engine serves no more.
            if frame.engine.drained { return .drained }
        }
        return .done
    }

    private enum Next { case frame(StatsFrame), stop(Ending) }

    /// Waits for a frame newer than `previous`.
    private func nextFrame(after previous: StatsFrame?) -> Next {
        let last = previous?.number ?? 0
        if let previous {
            // Sleep until the sampler's next frame is due, then look in short steps.
            let due = Int64(truncatingIfNeeded: previous.timestampNs &+ source.identity.clampedPeriodNs) - CIOURing_now_ns()
            if due > 0, let signal = signals.wait(milliseconds: Int(due / 1_000_000) + 1) {
                return .stop(announce(signal))
            }
        }
        while source.newest <= last {
            if let gone = source.ended { return .stop(.engineGone(gone)) }
            if let signal = signals.wait(milliseconds: 5) { return .stop(announce(signal)) }
        }
        guard let frame = source.latest() else { return .stop(.done) }
        return .frame(frame)
    }

    private func announce(_ signal: CInt) -> Ending {
        printError("iocptop: \(signalName(signal))")
        return .signal
    }
}
