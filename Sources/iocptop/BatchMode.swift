import CIOURing
import EchoEngine
import EngineStats
#if canImport(Glibc)
import Glibc
#endif

/// `iocptop --batch`: prints one report per stats frame until the iteration count, a signal,
/// or a closed stdout stops it.
struct BatchMode {
    let engine: EchoEngine
    let json: Bool
    let iterations: Int
    let signals: StopSignals

    func run() {
        let identity = EngineIdentity(backend: "\(engine.port.backend)", address: engine.address)
        var previous: StatsFrame?
        var printed = 0
        while iterations == 0 || printed < iterations {
            guard let frame = nextFrame(after: previous) else { return }
            let report = BatchReport(identity: identity, frame: frame, rates: FrameRates(previous: previous, current: frame))
            guard printLine(json ? report.json : report.text) else { return }
            previous = frame
            printed += 1
        }
    }

    /// Waits for a frame newer than `previous`; nil when SIGINT or SIGTERM arrives.
    private func nextFrame(after previous: StatsFrame?) -> StatsFrame? {
        let ring = engine.stats
        let last = previous?.number ?? 0
        if let previous {
            // Sleep until the sampler's next frame is due, then look in short steps.
            let due = Int64(previous.timestampNs + engine.sampler.periodNs) - CIOURing_now_ns()
            if due > 0, let signal = signals.wait(milliseconds: Int(due / 1_000_000) + 1) {
                announce(signal)
                return nil
            }
        }
        while ring.newest <= last {
            if let signal = signals.wait(milliseconds: 2) {
                announce(signal)
                return nil
            }
        }
        return ring.latest()
    }

    private func announce(_ signal: CInt) {
        printError("iocptop: \(signal == SIGINT ? "SIGINT" : "SIGTERM"), draining")
    }
}
