import Synchronization

/// One worker's counters: written only by that worker, read by anyone.
///
/// Single writer, so every update is a relaxed load plus a relaxed store (a plain `inc`, no
/// locked read-modify-write); readers see each counter's latest value without tearing.
/// Each worker's counters are a separate heap object; they are not yet padded to their own
/// cache lines, so two workers' counters can share one (false sharing, not a correctness issue).
public final class WorkerCounters: @unchecked Sendable {
    public let id: Int
    let acceptsCounter = Atomic<UInt64>(0)
    let receivesCounter = Atomic<UInt64>(0)
    let sendsCounter = Atomic<UInt64>(0)
    let postedCounter = Atomic<UInt64>(0)
    let bytesInCounter = Atomic<UInt64>(0)
    let bytesOutCounter = Atomic<UInt64>(0)

    init(id: Int) { self.id = id }

    @inline(__always)
    static func bump(_ counter: borrowing Atomic<UInt64>, by amount: UInt64 = 1) {
        // relaxed: single writer (this worker); readers only need each value on its own.
        counter.store(counter.load(ordering: .relaxed) &+ amount, ordering: .relaxed)
    }

    public var accepts: UInt64 { acceptsCounter.load(ordering: .relaxed) }
    public var receives: UInt64 { receivesCounter.load(ordering: .relaxed) }
    public var sends: UInt64 { sendsCounter.load(ordering: .relaxed) }
    public var posted: UInt64 { postedCounter.load(ordering: .relaxed) }
    public var bytesIn: UInt64 { bytesInCounter.load(ordering: .relaxed) }
    public var bytesOut: UInt64 { bytesOutCounter.load(ordering: .relaxed) }
    public var completions: UInt64 { accepts &+ receives &+ sends &+ posted }
}
