import CIOURing
import EngineStats
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Auto mode's thread: follows the engine's stats ring like any viewer, hands each frame to
/// `AutoPolicy`, and applies its decisions with the same commands as the keys
/// (`EchoEngine.apply(_:origin: .auto)`). It never touches a worker, and a worker never waits
/// for it.
final class AutoSizer: @unchecked Sendable {
    // @unchecked: `policy` belongs to the sizer thread; `engine` is set once; `stopping` is atomic.
    private weak var engine: EchoEngine?
    private let ring: StatsRing
    private var policy: AutoPolicy
    private let stopping = Atomic<Bool>(false)
    private var thread = pthread_t()

    /// Starts the thread; nil when it cannot be created.
    init?(engine: EchoEngine, maxWorkers: Int) {
        self.engine = engine
        ring = engine.stats
        policy = AutoPolicy(maxWorkers: maxWorkers)
        let box = Unmanaged.passRetained(self)
        guard pthread_create(&thread, nil, { raw in
            Unmanaged<AutoSizer>.fromOpaque(raw!).takeRetainedValue().run()
            return nil
        }, box.toOpaque()) == 0 else {
            box.release()
            return nil
        }
    }

    /// Stops the thread and waits for it (called on the thread itself, by the engine's deinit
    /// when it held the last reference, it detaches instead).
    func stop() {
        // acquiring-and-releasing: one caller joins; the store pairs with the loop's acquiring load.
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        // The engine's last reference may drop on this very thread (it holds one while it
        // applies a decision): then the thread ends by itself after this frame.
        if pthread_equal(pthread_self(), thread) != 0 {
            pthread_detach(thread)
        } else {
            pthread_join(thread, nil)
        }
    }

    private func run() {
        var reader = ring.readerFromNow()
        var previous = ring.latest()
        var frame = StatsFrame()
        // acquiring: pairs with `stop`'s exchange.
        while !stopping.load(ordering: .acquiring) {
            while reader.next(into: &frame) {
                defer { previous = frame }
                guard let engine else { return }
                let state = engine.autoState.withLock { $0 }
                guard state.enabled, !state.isPaused(at: frame.timestampNs), let previous else {
                    policy.reset()
                    continue
                }
                let rates = FrameRates(previous: previous, current: frame)
                guard let decision = policy.decide(frame: frame, rates: rates) else { continue }
                if !engine.applyAutoDecision(decision) { policy.reset() }
            }
            // The engine is gone (its deinit stops the sampler: no frame would come again).
            if engine == nil { return }
            // Half a sampling period, at most 50 ms so that `stop` returns soon.
            usleep(useconds_t(min(50_000, max(5_000, ring.identity.clampedPeriodNs / 2_000))))
        }
    }
}
