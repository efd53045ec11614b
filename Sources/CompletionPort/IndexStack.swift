import Synchronization

/// A lock-free LIFO of indices in `0..<capacity` (a Treiber stack): the port's free list of
/// operation slots, and the echo engine's pools of buffers.
///
/// The head packs a 32-bit ABA tag with the top index + 1 (0: empty); each index links to the
/// one below it. Invariant: an index is on the stack at most once — the caller pushes only an
/// index it popped (or that was never on it). Every operation is one compare-exchange in the
/// common case; nothing allocates after `init`.
public final class IndexStack: @unchecked Sendable {
    // @unchecked: `next` is a raw array of atomic words; the head is a tagged atomic word (acquire/release).
    /// Indices are `0..<capacity`.
    public let capacity: Int
    private let next: UnsafeMutablePointer<Atomic<UInt32>>
    private let head = Atomic<UInt64>(0)

    /// - Parameter filled: start with every index on the stack, 0 on top; otherwise empty.
    public init(capacity: Int, filled: Bool) {
        precondition(capacity > 0 && capacity < Int(UInt32.max))
        self.capacity = capacity
        next = .allocate(capacity: capacity)
        for i in 0..<capacity {
            // Each index links to the one after it, so a filled stack pops 0, 1, 2, …
            (next + i).initialize(to: Atomic(i + 1 < capacity ? UInt32(i + 2) : 0))
        }
        if filled { head.store(1, ordering: .relaxed) }
    }

    deinit {
        next.deinitialize(count: capacity)
        next.deallocate()
    }

    /// Takes the top index, or nil when the stack is empty.
    public func pop() -> Int? {
        // acquiring: pairs with the releasing CAS in `push`, so whatever the pusher wrote for
        // this index (and its link) happens before the caller's use of it.
        var current = head.load(ordering: .acquiring)
        while true {
            let index = UInt32(truncatingIfNeeded: current)
            guard index != 0 else { return nil }
            // relaxed: if another thread popped this node meanwhile, the tag moved and the CAS
            // below fails, so a stale link is never installed.
            let link = next[Int(index - 1)].load(ordering: .relaxed)
            let tag = (current >> 32) &+ 1
            let (exchanged, original) = head.weakCompareExchange(
                expected: current, desired: tag << 32 | UInt64(link),
                successOrdering: .acquiring, failureOrdering: .acquiring)
            if exchanged { return Int(index - 1) }
            current = original
        }
    }

    /// Puts `index` on top.
    public func push(_ index: Int) {
        var current = head.load(ordering: .relaxed)
        while true {
            // relaxed: published by the releasing CAS below.
            next[index].store(UInt32(truncatingIfNeeded: current), ordering: .relaxed)
            let tag = (current >> 32) &+ 1
            // releasing: the caller's writes for this index happen before the next popper's
            // acquiring pop.
            let (exchanged, original) = head.weakCompareExchange(
                expected: current, desired: tag << 32 | UInt64(index + 1),
                successOrdering: .releasing, failureOrdering: .relaxed)
            if exchanged { return }
            current = original
        }
    }
}
