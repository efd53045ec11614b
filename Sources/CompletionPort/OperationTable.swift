import Synchronization

/// Per-I/O slots: what an in-flight operation is, so its completion can be rebuilt.
///
/// A slot's identity travels through the kernel as 64-bit user data:
///
///     bits 63…32  generation (bumped when the slot is freed)
///     bits 31…0   slot index
///
/// so a completion for a slot that has since been freed and reused can be recognised and
/// dropped instead of being delivered to the slot's new owner. A slot returns to the free list
/// only after its final completion (for a multishot accept: the CQE without `IORING_CQE_F_MORE`).
///
/// The free list is an `IndexStack` (lock-free). Invariant: a slot is on the free list xor owned
/// by exactly one operation.
/// `CompletionPortTests.eachPacketExactlyOnce` fails if a slot is handed out twice.
final class OperationTable: @unchecked Sendable {
    // @unchecked: an entry is written by its submitter before submission and read by whoever completes it; the submission orders the two (see above).
    /// An in-flight operation. Written by the submitter before submission; read by whoever
    /// completes it. Submission (a lock or the io_uring SQ tail release) orders the two.
    struct Slot {
        var operation: Operation = .posted
        var fd: CInt = -1
        var key: UInt64 = 0
        var context: UInt64 = 0
        var buffer: UnsafeMutableRawPointer?
        var length: Int = 0
        /// The handle's association generation when the operation started (io_uring: tells a
        /// cancellation we asked for from one the kernel made because a thread exited).
        var handleGeneration: UInt32 = 0
        /// Completions delivered so far (a multishot receive numbers its completions with it).
        /// Leader only.
        var delivered: UInt32 = 0
        var generation: UInt32 = 1
    }

    let capacity: Int
    let slots: UnsafeMutablePointer<Slot>
    private let freeSlots: IndexStack
    private let inflightCount = Atomic<Int>(0)
    /// Per slot: the generation of the operation whose cancellation was asked for
    /// (`CompletionPort.cancel`), so a backend can tell it from one the kernel made on its own.
    private let cancelRequests: UnsafeMutablePointer<Atomic<UInt32>>

    init(capacity: Int) {
        self.capacity = capacity
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: Slot(), count: capacity)
        freeSlots = IndexStack(capacity: capacity, filled: true)
        cancelRequests = .allocate(capacity: capacity)
        for i in 0..<capacity { (cancelRequests + i).initialize(to: Atomic(0)) }
    }

    deinit {
        slots.deinitialize(count: capacity)
        slots.deallocate()
        cancelRequests.deinitialize(count: capacity)
        cancelRequests.deallocate()
    }

    /// Records that the operation `userData` is being cancelled on purpose. A stale request
    /// (the slot has moved on) names an old generation and matches nothing; it never replaces
    /// a newer one (the stored generation only moves forward, modulo wrap-around), so a late
    /// caller cannot undo the request of the slot's next operation.
    func requestCancel(_ userData: UInt64) {
        let index = Int(UInt32(truncatingIfNeeded: userData))
        guard index < capacity else { return }
        let generation = UInt32(truncatingIfNeeded: userData >> 32)
        // relaxed first read: the CAS below decides.
        var current = cancelRequests[index].load(ordering: .relaxed)
        while current == 0 || Int32(bitPattern: generation &- current) > 0 {
            // releasing: ordered before the cancel request the caller then submits; pairs with
            // the acquiring load in `cancelWasRequested` on the thread that sees its completion.
            let (exchanged, original) = cancelRequests[index].compareExchange(
                expected: current, desired: generation, successOrdering: .releasing, failureOrdering: .relaxed)
            if exchanged { return }
            current = original
        }
    }

    /// Whether a cancellation of the operation `userData` was asked for.
    func cancelWasRequested(_ userData: UInt64) -> Bool {
        let index = Int(UInt32(truncatingIfNeeded: userData))
        guard index < capacity else { return false }
        // acquiring: pairs with the releasing store in `requestCancel`.
        return cancelRequests[index].load(ordering: .acquiring) == UInt32(truncatingIfNeeded: userData >> 32)
    }

    /// Operations started and not yet finally completed.
    var inflight: Int {
        // relaxed: a gauge; the close path re-reads it under the scheduler lock after the
        // decrement, which the lock orders.
        inflightCount.load(ordering: .relaxed)
    }

    /// Takes a free slot and fills it. Returns its user data, or nil when every slot is in use.
    func allocate(_ operation: Operation, fd: CInt, key: UInt64, context: UInt64,
                  buffer: UnsafeMutableRawPointer?, length: Int, handleGeneration: UInt32 = 0) -> UInt64? {
        // The stack's acquiring pop pairs with the releasing push in `free`: the previous
        // owner's writes to the slot happen before ours.
        guard let i = freeSlots.pop() else { return nil }
        slots[i].operation = operation
        slots[i].fd = fd
        slots[i].key = key
        slots[i].context = context
        slots[i].buffer = buffer
        slots[i].length = length
        slots[i].handleGeneration = handleGeneration
        slots[i].delivered = 0
        // relaxed: a counter; see `inflight`.
        inflightCount.add(1, ordering: .relaxed)
        return UInt64(slots[i].generation) << 32 | UInt64(i)
    }

    /// The slot for `userData`, or nil when the generation is stale (already freed).
    func slotIndex(_ userData: UInt64) -> Int? {
        let index = Int(UInt32(truncatingIfNeeded: userData))
        guard index < capacity, slots[index].generation == UInt32(userData >> 32) else { return nil }
        return index
    }

    /// Returns a slot to the free list after its final completion.
    func free(_ index: Int) {
        slots[index].generation &+= 1
        if slots[index].generation == 0 { slots[index].generation = 1 }
        slots[index].buffer = nil
        // Releasing push: our writes to the slot happen before the next owner's pop.
        freeSlots.push(index)
        // relaxed: a counter; see `inflight`.
        inflightCount.subtract(1, ordering: .relaxed)
    }

    /// Builds the completion for slot `index` with the kernel's result and counts it as
    /// delivered (its `sequence` is the count before).
    func completion(_ index: Int, result: Int32, errno: Int32, hasMore: Bool = false) -> Completion {
        let slot = slots[index]
        var completion = Completion(operation: slot.operation, result: errno == 0 ? result : 0, key: slot.key,
                                    context: slot.context, errno: errno, hasMore: hasMore)
        completion.sequence = slot.delivered
        slots[index].delivered = slot.delivered &+ 1
        return completion
    }
}
