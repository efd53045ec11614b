/// One thread's batch of dequeued packets, served one at a time — the batch form of dequeue
/// that does not hide packets from the rest of the pool.
///
/// `CompletionPort.dequeue(into:timeout:)` fills it (as `GetQueuedCompletionStatusEx` fills an
/// array); the thread then starts each packet with `next()`. The port knows which packets the
/// thread has not started yet, and gives them back to the head of its FIFO, in order, when the
/// thread
/// - enters the port's blocking scope (`CompletionPort.blocking {}`) — the handler of the
///   packet it is serving blocks, so the rest would wait behind it while other threads may be
///   free to run them;
/// - calls `CompletionPort.giveBack(_:)` (a packet ran long: the caller decides how long);
/// - dequeues again.
///
/// This is a deliberate step beyond IOCP: on Windows the packets of a
/// `GetQueuedCompletionStatusEx` array belong to the thread that dequeued them, and wait there,
/// counted nowhere, for as long as it blocks. Here they are queued again — counted in
/// `queueDepth`, their age in `oldestQueuedAtNs` — and the next thread released (a parked one,
/// or one that `blocking {}` let through the concurrency gate) takes them at once. Their
/// `queuedAtNs` is kept, so a queue wait read when a packet starts covers all of it.
///
/// A batch belongs to the thread that dequeues into it: `next()` and the give-backs are that
/// thread's calls. It allocates nothing after `init`.
public final class PacketBatch: @unchecked Sendable {
    // @unchecked: used by one thread at a time (the one that dequeues into it), see above.
    let storage: UnsafeMutableBufferPointer<Completion>
    /// Packets the last dequeue put in the batch (less those given back).
    var count = 0
    /// Index of the next packet to start.
    var cursor = 0

    /// A batch that holds up to `capacity` packets (at least 1).
    public init(capacity: Int) {
        storage = .allocate(capacity: max(1, capacity))
        storage.initialize(repeating: .empty)
    }

    deinit { storage.deallocate() }

    /// The most packets one dequeue puts in the batch.
    public var capacity: Int { storage.count }

    /// Packets dequeued into the batch and not started yet.
    public var unstarted: Int { count - cursor }

    /// Starts the next packet: returns it, or nil when every packet of the batch has started.
    public func next() -> Completion? {
        guard cursor < count else { return nil }
        defer { cursor &+= 1 }
        return storage[cursor]
    }

    /// The unstarted packets, which leave the batch: it ends after the packet being served.
    func takeUnstarted() -> UnsafeMutableBufferPointer<Completion> {
        let rest = UnsafeMutableBufferPointer(rebasing: storage[cursor..<count])
        count = cursor
        return rest
    }

    /// Called with the count a dequeue put in the batch.
    func filled(_ packets: Int) {
        count = packets
        cursor = 0
    }
}
