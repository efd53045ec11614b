import CIOURing
import NativeThreads
import Synchronization

/// The core's housekeeping thread: every `periodNs` it runs `tick` — moving the kernel's
/// completions into the port's FIFO when no worker is there to (every worker blocked), and the
/// idle-buffer sweep — so the stats sampler only reads and publishes. It never serves a
/// connection: what it finds to do travels as posted packets, served by the workers.
final class MaintenanceTicker: @unchecked Sendable {
    // @unchecked: `stopWord` is used only through CIOURing's atomic futex-word functions.
    /// Short against the sampling period (frames then see the FIFO at most this stale), long
    /// against a worker's batch.
    static let periodNs: Int64 = 100_000_000

    /// 0 running, 1 stopping; the thread sleeps on it.
    private let stopWord: UnsafeMutablePointer<UInt32>
    private let thread = Mutex<NativeThread?>(nil)

    /// Starts the thread, which calls `tick` until `stop`.
    init(tick: @escaping @Sendable () -> Void) throws(NativeThread.StartError) {
        stopWord = .allocate(capacity: 1)
        stopWord.initialize(to: 0)
        // The thread holds the ticker (and so its stop word) until it ends: the engine's last
        // reference can drop inside `tick`, on this thread, and the engine's deinit then stops
        // the ticker from here (the join becomes a detach) — the loop must still find its word.
        let started = try NativeThread.start { [self] in run(tick) }
        thread.withLock { $0 = started }
    }

    private func run(_ tick: () -> Void) {
        var deadline = CIOURing_now_ns() + Self.periodNs
        while CIOURing_futex_word_load(stopWord) == 0 {
            let now = CIOURing_now_ns()
            if now < deadline {
                _ = CIOURing_futex_wait(stopWord, 0, deadline - now)
                continue
            }
            tick()
            deadline = max(deadline + Self.periodNs, CIOURing_now_ns())
        }
    }

    /// Wakes the thread and waits for it to end. Idempotent.
    func stop() {
        // A releasing store and a wake: the thread re-checks the word after every wake-up.
        CIOURing_futex_word_store(stopWord, 1)
        CIOURing_futex_wake(stopWord)
        thread.withLock { $0 }?.join()
    }

    deinit {
        stop()
        stopWord.deallocate()
    }
}
