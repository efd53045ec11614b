import CIOURing

/// Why a parked thread was woken.
enum WakeReason: UInt8 {
    case none
    /// A packet was handed over in `mailbox`, and the thread already counts as running.
    case packet
    /// The thread is now the leader: it waits for completions in the kernel.
    case lead
    /// The port is closed and drained.
    case closed
}

/// One thread's parking place and per-thread state for one port.
///
/// Created once per (thread, port) by `ThreadRegistry` and reused for every dequeue, so parking
/// allocates nothing. Field access rules:
/// - `word`: written under the scheduler lock (0 when parking, 1 when chosen); read by the
///   owner with an acquiring load, which pairs with the releasing store of the waker.
/// - `reason`, `mailbox`, `isParked`: written under the scheduler lock only.
/// - `isRunning`: written under the scheduler lock; read by the owner thread without the lock
///   (only the owner's own dequeue/blocking calls, or a waker that hands it a packet while it
///   is parked, change it — and the owner reads it only while it is not parked).
/// - `harvest`: owner thread only (the leader's batch buffer).
/// - `batch`: owner thread only (the `PacketBatch` it last dequeued into; its unstarted packets
///   go back to the FIFO, under the lock, from the owner's own calls).
final class Waiter: @unchecked Sendable {
    // @unchecked: its fields are read and written under the scheduler's lock, or by its own thread; `word` only with futex atomics.
    let word: UnsafeMutablePointer<UInt32>
    var reason: WakeReason = .none
    var mailbox = Completion.empty
    var isParked = false
    var isRunning = false
    /// Waiters this thread chose under the lock and must wake after releasing it.
    /// Owner thread only (each thread wakes the waiters it chose itself).
    var pendingWakes: [Waiter] = []
    let harvest: UnsafeMutableBufferPointer<Completion>
    /// The batch this thread last dequeued into (see `PacketBatch`). unowned(unsafe): read
    /// under the scheduler lock on every dequeue, where a retain and release would lengthen the
    /// critical section; `batchReference` keeps it alive.
    unowned(unsafe) var batch: PacketBatch?
    private(set) var batchReference: PacketBatch?
    /// This thread gave its batch back because it blocked: its next dequeue takes one packet
    /// (a handler that blocks is likely to block again, and every packet it takes beyond the
    /// first would only be copied back).
    var gaveBackOnBlocking = false

    /// Makes `batch` this thread's batch. Owner thread only.
    func adopt(_ batch: PacketBatch) {
        batchReference = batch
        self.batch = batch
    }
    unowned(unsafe) let scheduler: Scheduler
    /// Keeps the scheduler alive for as long as this thread may still report its exit.
    private let schedulerReference: AnyObject

    static let harvestCapacity = 128

    init(scheduler: Scheduler) {
        word = .allocate(capacity: 1)
        word.initialize(to: 0)
        harvest = .allocate(capacity: Waiter.harvestCapacity)
        harvest.initialize(repeating: .empty)
        self.scheduler = scheduler
        schedulerReference = scheduler
        pendingWakes.reserveCapacity(64)
    }

    deinit {
        word.deallocate()
        harvest.deallocate()
    }

    /// Parks until chosen (word == 1) or until `deadline` (monotonic ns, -1 = forever).
    /// Returns false on timeout; the caller must then confirm under the lock.
    func park(deadline: Int64) -> Bool {
        while true {
            // acquiring: pairs with the waker's releasing store, so reason/mailbox are visible.
            if CIOURing_futex_word_load(word) == 1 { return true }
            var timeout: Int64 = -1
            if deadline >= 0 {
                timeout = deadline - CIOURing_now_ns()
                if timeout <= 0 { return false }
            }
            _ = CIOURing_futex_wait(word, 0, timeout)
        }
    }

    /// Marks this waiter chosen. Called under the scheduler lock.
    func markChosen() {
        // releasing: the reason and mailbox written above become visible to the owner's
        // acquiring load in `park`.
        CIOURing_futex_word_store(word, 1)
    }

    /// Wakes the owner's futex wait. Called after the scheduler lock is released.
    func wake() { CIOURing_futex_wake(word) }
}
