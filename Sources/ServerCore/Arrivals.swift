import CompletionPort
import Synchronization

/// Where a multishot receive's arrivals wait for their connection's strand, one entry per
/// provided buffer (the buffer id is the entry): its length, its sequence number, and a link.
///
/// A worker that dequeues an arrival records it here and pushes it on its connection's
/// `arrivals` stack (any number of workers push; only the strand owner takes, all at once).
/// The owner moves what it takes into its own list, ordered by sequence — two workers may
/// serve one connection's arrivals in either order — and copies them into the ring in that
/// order, each once the ring has room, handing the buffer straight back to the kernel.
///
/// An entry belongs to whoever holds its buffer: the kernel, then the pushing worker, then the
/// strand owner; the stack's releasing push and acquiring take order the writes between them.
final class Arrivals: @unchecked Sendable {
    // @unchecked: raw entry arrays; an entry belongs to the worker that pushes it until the releasing push, then to the strand owner that takes it (acquiring).
    let count: Int
    /// Id + 1 of the next entry (in a stack or in an owner's list), 0: none.
    private let next: UnsafeMutablePointer<UInt32>
    private let length: UnsafeMutablePointer<Int32>
    private let sequence: UnsafeMutablePointer<UInt32>

    init(count: Int) {
        self.count = count
        next = .allocate(capacity: count)
        next.initialize(repeating: 0, count: count)
        length = .allocate(capacity: count)
        length.initialize(repeating: 0, count: count)
        sequence = .allocate(capacity: count)
        sequence.initialize(repeating: 0, count: count)
    }

    deinit {
        next.deallocate()
        length.deallocate()
        sequence.deallocate()
    }

    /// Records the arrival `completion` (with a buffer) and pushes it on `connection`'s stack.
    func push(_ completion: Completion, onto connection: Connection) {
        let id = Int(completion.bufferID)
        length[id] = completion.result
        sequence[id] = completion.sequence
        // relaxed first read: the compare-exchange decides.
        var top = connection.arrivals.load(ordering: .relaxed)
        while true {
            next[id] = top
            // releasing: the entry's fields happen before the owner's acquiring `take`.
            let (exchanged, current) = connection.arrivals.compareExchange(
                expected: top, desired: UInt32(id + 1), successOrdering: .releasing, failureOrdering: .relaxed)
            if exchanged { return }
            top = current
        }
    }

    /// The owner takes every arrival pushed on `connection` into its ordered list.
    func take(into connection: Connection) {
        // acquiring: pairs with the releasing push, so the entries' fields are visible.
        var taken = connection.arrivals.exchange(0, ordering: .acquiring)
        while taken != 0 {
            let id = Int(taken - 1)
            taken = next[id]
            insert(id, into: &connection.heldArrivals)
        }
    }

    /// Inserts by sequence (lists are short: usually one entry; a few when a burst arrived).
    private func insert(_ id: Int, into list: inout UInt32) {
        let key = sequence[id]
        guard list != 0, Int32(bitPattern: key &- sequence[Int(list - 1)]) > 0 else {
            next[id] = list
            list = UInt32(id + 1)
            return
        }
        var previous = Int(list - 1)
        while next[previous] != 0 && Int32(bitPattern: key &- sequence[Int(next[previous] - 1)]) > 0 {
            previous = Int(next[previous] - 1)
        }
        next[id] = next[previous]
        next[previous] = UInt32(id + 1)
    }

    /// The first entry of `list` when it is the one numbered `expected` (the owner's next in
    /// order), or nil: empty, or an earlier arrival is still on its way.
    @inline(__always)
    func first(of list: UInt32, expected: UInt32) -> (id: Int32, length: Int)? {
        guard list != 0 else { return nil }
        let id = Int(list - 1)
        guard sequence[id] == expected else { return nil }
        return (Int32(id), Int(length[id]))
    }

    /// The list after its first entry.
    @inline(__always)
    func rest(of list: UInt32) -> UInt32 { next[Int(list - 1)] }
}
