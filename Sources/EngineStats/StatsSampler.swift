import CIOURing
import NativeThreads
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A thread that fills a frame every period and publishes it to a `StatsRing`.
///
/// The first frame is published at once, then one per period on a drift-free schedule. The
/// period can change while running (50 ms to 60 s). `stop()` wakes the thread at once (it
/// sleeps on a futex, not in `sleep`) and joins it.
public final class StatsSampler: @unchecked Sendable {
    // @unchecked: `stopWord` is a raw pointer, touched only with the futex word's atomic operations; everything else is a `let`, an Atomic or a Mutex.
    public let ring: StatsRing
    private let fill: @Sendable (inout StatsFrame) -> Bool
    /// 0 running, 1 stopping; the sampler thread sleeps on it.
    private let stopWord = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
    private let periodNsValue: Atomic<UInt64>
    private let thread = Mutex<NativeThread?>(nil)
    private let started = Atomic<Bool>(false)

    /// Allowed sampling periods.
    public static let periodRange: ClosedRange<UInt64> = 50_000_000...60_000_000_000

    /// - Parameter fill: fills a frame (its `workers` array is reused between calls); returns
    ///   false to skip publishing this time.
    public init(ring: StatsRing, periodNs: UInt64 = 500_000_000, fill: @escaping @Sendable (inout StatsFrame) -> Bool) {
        self.ring = ring
        self.fill = fill
        periodNsValue = Atomic(Self.clamp(periodNs))
        stopWord.initialize(to: 0)
        if ring.isWritable { ring.recordPeriod(Self.clamp(periodNs)) }
    }

    deinit {
        stop()
        stopWord.deallocate()
    }

    private static func clamp(_ period: UInt64) -> UInt64 {
        min(max(period, periodRange.lowerBound), periodRange.upperBound)
    }

    /// The sampling period in ns.
    public var periodNs: UInt64 {
        get { periodNsValue.load(ordering: .relaxed) }
        // relaxed: the sampler picks the new value up at its next wake-up; nothing else depends on it.
        set {
            periodNsValue.store(Self.clamp(newValue), ordering: .relaxed)
            ring.recordPeriod(Self.clamp(newValue))
        }
    }

    /// Starts the sampling thread (once).
    /// - Throws: when the thread cannot be created (then `start` may be called again).
    public func start() throws(NativeThread.StartError) {
        guard !started.exchange(true, ordering: .relaxed) else { return }
        do {
            let running = try NativeThread.start { self.run() }
            thread.withLock { $0 = running }
        } catch {
            started.store(false, ordering: .relaxed)
            throw error
        }
    }

    /// Stops and joins the sampling thread. Idempotent.
    public func stop() {
        guard started.load(ordering: .relaxed) else { return }
        // releasing store + wake: the thread re-checks the word after every wake-up or timeout.
        CIOURing_futex_word_store(stopWord, 1)
        CIOURing_futex_wake(stopWord)
        thread.withLock { $0 }?.join()
    }

    private func run() {
        var frame = StatsFrame()
        frame.workers.reserveCapacity(ring.workerCapacity)
        var deadline = UInt64(CIOURing_now_ns())
        while CIOURing_futex_word_load(stopWord) == 0 {
            if fill(&frame) { ring.publish(frame) }
            let period = periodNs
            deadline += period
            let now = UInt64(CIOURing_now_ns())
            // Fell behind by more than a period (the machine stalled): restart the schedule.
            if deadline <= now { deadline = now + period }
            _ = CIOURing_futex_wait(stopWord, 0, Int64(deadline - now))
        }
    }
}
