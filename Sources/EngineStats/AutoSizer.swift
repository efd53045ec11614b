import CIOURing
import NativeThreads
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Auto mode's thread: follows an engine's stats ring like any viewer, hands each frame to
/// `AutoPolicy`, and applies its decisions through an `EngineControl`, as keys are. It never
/// touches a worker, and a worker never waits for it. Whether auto mode is on, or held back
/// by an operator, it reads from the frames (`StatsFrame.auto`), as every viewer does.
public final class AutoSizer: Sendable {
    private let control: any EngineControl
    private let ring: StatsRing
    private let stopping = Atomic<Bool>(false)
    private let thread = Mutex<NativeThread?>(nil)

    /// Starts the thread.
    /// - Parameter control: where decisions go (`apply(autoDecision:)`); it should not keep
    ///   the engine alive, or the engine could not go away while the sizer runs.
    public init(ring: StatsRing, control: any EngineControl, maxWorkers: Int) throws(NativeThread.StartError) {
        self.ring = ring
        self.control = control
        let started = try NativeThread.start { [self] in run(policy: AutoPolicy(maxWorkers: maxWorkers)) }
        thread.withLock { $0 = started }
    }

    /// Stops the thread and waits for it (on the thread itself — the engine's last reference
    /// can drop there while a decision is applied — it lets the thread end by itself instead).
    public func stop() {
        // acquiring-and-releasing: one caller joins; the store pairs with the loop's acquiring load.
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        thread.withLock { $0 }?.join()
    }

    /// The thread's loop; `policy` belongs to it.
    private func run(policy: consuming AutoPolicy) {
        var reader = ring.readerFromNow()
        var previous = ring.latest()
        var frame = StatsFrame()
        // acquiring: pairs with `stop`'s exchange.
        while !stopping.load(ordering: .acquiring) {
            while reader.next(into: &frame) {
                defer { previous = frame }
                guard frame.auto.enabled, !frame.auto.isPaused(at: frame.timestampNs), let previous else {
                    policy.reset()
                    continue
                }
                let rates = FrameRates(previous: previous, current: frame)
                guard let decision = policy.decide(frame: frame, rates: rates) else { continue }
                if !control.apply(autoDecision: decision) { policy.reset() }
            }
            // Half a sampling period, at most 50 ms so that `stop` returns soon.
            usleep(useconds_t(min(50_000, max(5_000, ring.identity.clampedPeriodNs / 2_000))))
        }
    }
}
