import CIOURing
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Per-descriptor state for the io_uring backend: the completion key and an association
/// generation (bumped by every associate and close).
struct URingHandle: ~Copyable {
    let key = Atomic<UInt64>(0)
    let associated = Atomic<Bool>(false)
    let generation = Atomic<UInt32>(0)
}

/// The port over one io_uring.
///
/// Submissions from any thread go through a short critical section on the SQ (the ring has one
/// tail). They are handed to the kernel lazily: a worker thread that is running on the port
/// defers them to its next `dequeue` (where the leader's `io_uring_enter` submits and waits in
/// one call, so an echo round costs one system call per batch), any other thread flushes at once,
/// and a submission made while the leader is blocked in the kernel is flushed at once too.
///
/// Only the leader reads the CQ, so the CQ head needs no lock.
///
/// io_uring ties a request to the thread whose `io_uring_enter` submitted it: when that thread
/// exits, the kernel completes the request with ECANCELED. Here any thread may be the one that
/// submits (the leader submits everybody's SQEs), so a worker that exits could take other
/// threads' operations with it. The leader therefore resubmits an operation that completes
/// with ECANCELED when nobody asked for a cancel: its handle is still associated with the
/// same generation and the port is open. A cancel we did ask for (`closeHandle`, `cancelAll`)
/// changes one of the two first, so it is delivered; so is one asked for by `cancel` (the
/// operation's slot records the request, `OperationTable.requestCancel`). The buffer is still the caller's until
/// the completion is delivered, so resubmitting it is safe, and a cancelled request moved no
/// bytes.
///
/// The ring runs with cooperative task running where the kernel has it (`CIOURing_map`): the
/// work that finishes a request in its submitter (a receive whose bytes arrived) waits for
/// that thread's next return from the kernel instead of interrupting it. A submitter in an
/// interruptible sleep (parked on its futex, in `blocking {}` waiting on a socket or a timer)
/// is woken for it; one that runs returns from the kernel at its next system call or timer
/// tick, so the work waits at most a tick (`TaskWorkTests`). Limits: a submitter in an
/// uninterruptible sleep (a disk read) holds it until the sleep ends, as it did before; and on
/// a CPU with the tick off (`nohz_full=`) a submitter computing without system calls holds it
/// until it makes one. Workers make one per batch; code run in `blocking {}` may not.
///
/// Internal SQEs (wake NOPs, cancels, closes) carry user data with generation 0, which no
/// operation slot ever has, and their CQEs are dropped.
final class URingBackend: BackendDriver, @unchecked Sendable {
    // @unchecked: the submission queue is written under `submitLock`, the completion queue read by the one leader; the ring's shared words use the kernel ABI's barriers.
    let kind = PortBackend.ioURing
    private let ring: UnsafeMutablePointer<CIOURing_ring>
    private let sqLock = Mutex<Void>(())
    private let operations: OperationTable
    /// unowned(unsafe): used on every submission and harvest, so no reference counting. Sound
    /// because the port owns both and calls the backend only while it is alive.
    private unowned(unsafe) let scheduler: Scheduler
    private let handles: HandleTable<URingHandle>
    /// The leader is inside io_uring_enter waiting for completions (see `afterPush`).
    private let leaderInKernel = Atomic<Bool>(false)
    /// A wake NOP is in the SQ or CQ and not yet harvested; later wakes are redundant.
    private let wakePending = Atomic<Bool>(false)
    let providedBuffers: ProvidedBuffers?
    let cooperativeTaskRunning: Bool

    private static let wakeUserData: UInt64 = 0
    private static let internalUserData: UInt64 = 1

    /// - Parameter providedBuffers: how many buffers of `providedBufferSize` bytes multishot
    ///   receives may pick from (0: none). Registered only when the kernel serves multishot
    ///   receives (`CIOURing_probe_multishot_receive`, 6.0+); otherwise there are none.
    init(entries: UInt32, operations: OperationTable, scheduler: Scheduler, descriptorLimit: Int,
         providedBuffers: Int = 0, providedBufferSize: Int = 0) throws(PortError) {
        ring = .allocate(capacity: 1)
        ring.initialize(to: CIOURing_ring())
        let result = CIOURing_map(ring, entries, entries * 4)
        guard result == 0 else {
            ring.deallocate()
            throw PortError.backendUnavailable(.ioURing, SystemCallError(.ioURingSetup, errno: -result))
        }
        self.operations = operations
        self.scheduler = scheduler
        cooperativeTaskRunning = ring.pointee.setup_flags & UInt32(IORING_SETUP_COOP_TASKRUN) != 0
        handles = HandleTable(limit: descriptorLimit) { URingHandle() }
        self.providedBuffers = providedBuffers > 0 && Self.kernelReceivesMultishot
            ? ProvidedBuffers(ringFD: ring.pointee.ring_fd, count: providedBuffers, size: providedBufferSize)
            : nil
    }

    /// Asked once per process (see `CIOURing_probe_multishot_receive`).
    private static let kernelReceivesMultishot = CIOURing_probe_multishot_receive() == 1

    func shutdown() {
        CIOURing_unmap(ring)
        providedBuffers?.unmap()
        ring.deallocate()
    }

    // MARK: handles

    func associate(_ fd: CInt, key: UInt64) throws(PortError) {
        guard let handle = handles.entryCreating(fd) else { throw PortError.notAssociated(fd) }
        // relaxed: the key and generation are published by the releasing store of
        // `associated` below.
        handle.pointee.key.store(key, ordering: .relaxed)
        handle.pointee.generation.add(1, ordering: .relaxed)
        // releasing: pairs with the acquiring load in `submit`.
        handle.pointee.associated.store(true, ordering: .releasing)
    }

    private func key(of fd: CInt) throws(PortError) -> (key: UInt64, generation: UInt32) {
        // acquiring: pairs with the releasing store in `associate`, so key and generation are
        // current.
        guard let handle = handles.entry(fd), handle.pointee.associated.load(ordering: .acquiring) else {
            throw PortError.notAssociated(fd)
        }
        return (handle.pointee.key.load(ordering: .relaxed), handle.pointee.generation.load(ordering: .relaxed))
    }

    /// Whether a cancelled operation was cancelled by a thread exit rather than by us.
    private func cancelledByThreadExit(_ index: Int) -> Bool {
        let slot = operations.slots[index]
        guard let handle = handles.entry(slot.fd),
              // acquiring: pairs with the releasing exchange in `closeHandle`.
              handle.pointee.associated.load(ordering: .acquiring),
              handle.pointee.generation.load(ordering: .relaxed) == slot.handleGeneration else { return false }
        return !scheduler.isClosed
    }

    /// Puts a cancelled operation back into the SQ under its existing slot.
    private func resubmit(_ index: Int, userData: UInt64) -> Bool {
        let slot = operations.slots[index]
        do {
            try push { sqe, _ in
                Self.prepare(sqe, slot.operation, fd: slot.fd, buffer: slot.buffer, length: slot.length, userData: userData)
            }
            return true
        } catch {
            return false
        }
    }

    /// Fills the SQE of an operation (used by first submission and by resubmission alike).
    private static func prepare(_ sqe: UnsafeMutablePointer<io_uring_sqe>, _ operation: Operation, fd: CInt,
                                buffer: UnsafeMutableRawPointer?, length: Int, userData: UInt64) {
        let length32 = UInt32(clamping: length)
        switch operation {
        case .accept: CIOURing_prep_multishot_accept(sqe, fd, userData)
        case .receive where buffer == nil:
            CIOURing_prep_recv_multishot(sqe, fd, ProvidedBuffers.group, userData)
        case .receive: CIOURing_prep_recv(sqe, fd, buffer, length32, userData)
        case .send: CIOURing_prep_send(sqe, fd, buffer, length32, userData)
        case .posted: CIOURing_prep_nop(sqe, userData)
        }
    }

    func submit(_ operation: Operation, fd: CInt, buffer: UnsafeMutableRawPointer?, length: Int,
                context: UInt64) throws(PortError) -> UInt64 {
        let (key, generation) = try key(of: fd)
        guard let userData = operations.allocate(operation, fd: fd, key: key, context: context,
                                                 buffer: buffer, length: length,
                                                 handleGeneration: generation) else {
            throw PortError.tooManyOperations
        }
        do {
            try push { sqe, _ in
                Self.prepare(sqe, operation, fd: fd, buffer: buffer, length: length, userData: userData)
            }
        } catch {
            operations.free(Int(UInt32(truncatingIfNeeded: userData)))
            throw error
        }
        afterPush()
        return userData
    }

    func cancel(_ userData: UInt64, fd: CInt) {
        // No check that it is still in flight: the slot is the leader's to free, and a cancel
        // of a finished operation finds nothing (its internal CQE is dropped). Before the
        // cancel is submitted: its ECANCELED completion is then delivered, not
        // taken for a thread exit's and resubmitted.
        operations.requestCancel(userData)
        do {
            try push { sqe, _ in CIOURing_prep_cancel(sqe, userData, Self.internalUserData) }
        } catch {
            return
        }
        afterPush()
    }

    func closeHandle(_ fd: CInt) throws(PortError) {
        guard let handle = handles.entry(fd),
              // acquiring/releasing: one closer wins; pairs with `associate`.
              handle.pointee.associated.exchange(false, ordering: .acquiringAndReleasing) else {
            throw PortError.notAssociated(fd)
        }
        // relaxed: ordered before the cancel by the SQ lock and the kernel's submission.
        handle.pointee.generation.add(1, ordering: .relaxed)
        // Cancel everything on fd, then close it: hard-linked, so the close runs after the
        // cancel whether or not the cancel found anything, and the descriptor number is not
        // reused while an operation still refers to the socket.
        try push(count: 2) { sqe, i in
            if i == 0 {
                CIOURing_prep_cancel_fd(sqe, fd, Self.internalUserData)
            } else {
                CIOURing_prep_close(sqe, fd, Self.internalUserData)
            }
        }
        afterPush()
    }

    func cancelAll() {
        try? push { sqe, _ in CIOURing_prep_cancel_any(sqe, Self.internalUserData) }
        flush()
    }

    // MARK: submission queue

    /// Writes `count` consecutive SQEs under the SQ lock and publishes them with one tail store.
    private func push(count: UInt32 = 1,
                      _ prepare: (UnsafeMutablePointer<io_uring_sqe>, UInt32) -> Void) throws(PortError) {
        try sqLock.withLock { _ throws(PortError) in
            let r = ring.pointee
            // relaxed: the tail is written only by us, under this lock.
            let tail = CIOURing_load_relaxed(r.sq_tail)
            // acquiring: pairs with the kernel's smp_store_release(sq.head) after it has read
            // the SQEs it consumed, so those slots may be overwritten.
            var head = CIOURing_load_acquire(r.sq_head)
            if tail &- head &+ count > r.sq_entries {
                // Full: hand what is queued to the kernel to make room.
                _ = enter(toSubmit: tail &- head, minComplete: 0, flags: 0, timeoutNs: -1)
                head = CIOURing_load_acquire(r.sq_head)
                guard tail &- head &+ count <= r.sq_entries else {
                    throw PortError.system(SystemCallError(.ioURingEnter, errno: EBUSY))
                }
            }
            for i in 0..<count {
                prepare(r.sqes + Int((tail &+ i) & r.sq_mask), i)
            }
            // releasing: publishes the SQE writes above to the kernel; pairs with the kernel's
            // smp_load_acquire(sq.tail) in io_submit_sqes.
            CIOURing_store_release(r.sq_tail, tail &+ count)
        }
    }

    /// Decides whether new SQEs must be handed to the kernel now.
    private func afterPush() {
        // sequentially consistent: a Dekker pair with the fence in `harvest`. Either we see
        // `leaderInKernel` set (and flush ourselves), or the leader's io_uring_enter sees our
        // tail store; without the fence both could miss and the SQE would wait for a timeout.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if leaderInKernel.load(ordering: .relaxed) || !scheduler.callerIsRunning {
            flush()
        }
    }

    func flush() {
        let pending = unsubmitted
        if pending == 0 { return }
        _ = enter(toSubmit: pending, minComplete: 0, flags: 0, timeoutNs: -1)
    }

    /// SQEs published and not yet consumed by the kernel.
    ///
    /// Submissions always ask for exactly this many: `io_uring_enter` skips its wait when it
    /// submits fewer SQEs than `to_submit` says, so asking for more than are queued would turn
    /// the leader's wait into a spin.
    private var unsubmitted: UInt32 {
        let r = ring.pointee
        // acquiring tail: pairs with the releasing store in `push` by another thread (the tail
        // is only written under the SQ lock); acquiring head: as in `push`.
        return CIOURing_load_acquire(r.sq_tail) &- CIOURing_load_acquire(r.sq_head)
    }

    /// `io_uring_enter`, retried on EINTR (with the same timeout: a wake NOP or a completion
    /// ends a wait early anyway). Returns the kernel's result (-errno on failure).
    private func enter(toSubmit: UInt32, minComplete: UInt32, flags: UInt32, timeoutNs: Int64) -> CInt {
        while true {
            let result = CIOURing_enter(ring.pointee.ring_fd, toSubmit, minComplete, flags, timeoutNs)
            if result == -EINTR && minComplete == 0 { continue }
            return result
        }
    }

    func wakeLeader() {
        // acquiring/releasing: orders with the harvest that clears it (see `harvest`).
        guard !wakePending.exchange(true, ordering: .acquiringAndReleasing) else { return }
        do {
            try push { sqe, _ in CIOURing_prep_nop(sqe, Self.wakeUserData) }
        } catch {
            wakePending.store(false, ordering: .releasing)
            return
        }
        afterPush()
    }

    // MARK: completion queue

    func harvest(into buffer: UnsafeMutableBufferPointer<Completion>, timeoutNs: Int64) -> Int {
        var resubmitted = false, woken = false
        var n = copyCompletions(into: buffer, resubmitted: &resubmitted, woken: &woken)
        // A wake NOP already in the CQ was meant for this wait: return instead of waiting, or
        // the wake would be lost (the waker does not send another while one is counted).
        if n > 0 || resubmitted || woken {
            flush()
            return n
        }
        // relaxed store: ordered by the fence below.
        leaderInKernel.store(true, ordering: .relaxed)
        // sequentially consistent: the other half of the Dekker pair in `afterPush`.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        // Submit what is queued and wait, in one call. Another thread's flush may take some of
        // these SQEs first; the kernel then submits fewer than asked and returns at once (a
        // spurious wake the scheduler absorbs).
        _ = enter(toSubmit: unsubmitted, minComplete: 1,
                  flags: UInt32(IORING_ENTER_GETEVENTS), timeoutNs: timeoutNs)
        // relaxed: a late reader only flushes once more than needed.
        leaderInKernel.store(false, ordering: .relaxed)
        n = copyCompletions(into: buffer, resubmitted: &resubmitted, woken: &woken)
        if resubmitted { flush() }
        return n
    }

    /// Moves CQEs into `buffer`, dropping internal ones, and frees finished slots.
    private func copyCompletions(into buffer: UnsafeMutableBufferPointer<Completion>,
                                 resubmitted: inout Bool, woken: inout Bool) -> Int {
        let r = ring.pointee
        // relaxed: the CQ head is written only by the leader, one at a time.
        var head = CIOURing_load_relaxed(r.cq_head)
        // acquiring: pairs with the kernel's smp_store_release(cq.tail), so the CQE contents
        // up to the tail are visible.
        let tail = CIOURing_load_acquire(r.cq_tail)
        var n = 0
        while head != tail && n < buffer.count {
            let cqe = r.cqes[Int(head & r.cq_mask)]
            head &+= 1
            if cqe.user_data >> 32 == 0 {
                if cqe.user_data == Self.wakeUserData {
                    woken = true
                    // releasing: a waker after this point pushes a new NOP.
                    wakePending.store(false, ordering: .releasing)
                }
                continue
            }
            let bufferID = cqe.flags & UInt32(IORING_CQE_F_BUFFER) != 0
                ? Int32(cqe.flags >> UInt32(IORING_CQE_BUFFER_SHIFT)) : -1
            guard let index = operations.slotIndex(cqe.user_data) else {
                // Unreachable (a slot is freed only after its last CQE); a buffer must not leak.
                if bufferID >= 0 { providedBuffers?.recycle(Int(bufferID)) }
                continue
            }
            let more = cqe.flags & UInt32(IORING_CQE_F_MORE) != 0
            if cqe.res == -ECANCELED && !more && !operations.cancelWasRequested(cqe.user_data)
                && cancelledByThreadExit(index)
                && resubmit(index, userData: cqe.user_data) {
                resubmitted = true
                continue
            }
            buffer[n] = cqe.res < 0
                ? operations.completion(index, result: 0, errno: -cqe.res, hasMore: more)
                : operations.completion(index, result: cqe.res, errno: 0, hasMore: more)
            buffer[n].bufferID = bufferID
            if !more { operations.free(index) }
            n += 1
        }
        // releasing: we are done reading the CQEs before head; pairs with the kernel's
        // smp_load_acquire(cq.head) before it reuses those slots.
        CIOURing_store_release(r.cq_head, head)
        return n
    }
}
