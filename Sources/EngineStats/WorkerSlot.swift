import CAtomicWords
#if canImport(Glibc)
import Glibc
#endif

/// Word offsets inside one 128-byte worker slot.
enum SlotWord {
    static let workerID = 0
    static let accepts = 1
    static let receives = 2
    static let sends = 3
    static let posted = 4
    static let bytesIn = 5
    static let bytesOut = 6
    /// Sequence guarding the time fields below: odd while the worker changes them.
    static let timeSequence = 7
    static let state = 8
    /// When the current state began (monotonic ns).
    static let stateSince = 9
    static let runningNs = 10
    static let waitingNs = 11
    static let blockedNs = 12
    /// When the worker last dequeued completions (monotonic ns; 0: never).
    static let lastCompletion = 13
    /// The worker thread's CPU-time clock id (`pthread_getcpuclockid`) + 1; 0: not known yet.
    static let cpuClock = 14
    /// The thread's CPU time when it exited (its clock is gone after that), in ns.
    static let finalCPU = 15
    /// Words per slot: 16 × 8 bytes = 128 bytes, two cache lines, so no two workers' counters
    /// share a line (nor a pair of adjacent lines, which x86 prefetches together).
    static let count = 16
}

/// One worker's handle on its counter slot. Only that worker writes through it.
///
/// Every update is a relaxed load plus a relaxed store of a word in the worker's own 128-byte
/// slot: no lock, no locked read-modify-write, no cache line shared with another writer.
/// Relaxed suffices for the counters: each is monotonic and read on its own by the sampler.
/// The state and time fields change together under a sequence word (see `enter`).
public struct WorkerSlot: @unchecked Sendable {
    // @unchecked: pointers into the slot's words, written only by its worker with atomic stores (see above).
    /// The slot's index in its `WorkerSlots` table.
    public let index: Int
    @usableFromInline let words: UnsafeMutablePointer<UInt64>
    /// The worker's two histograms, `LatencyBuckets.count` words each: queue wait, then
    /// service time. Outside the 128-byte slot (they are 3 KiB), but written only by this worker.
    @usableFromInline let histograms: UnsafeMutablePointer<UInt64>
    /// The worker's handler metrics (`HandlerSchema`): written only by this worker.
    @usableFromInline let handlerWords: UnsafeMutablePointer<UInt64>

    init(index: Int, words: UnsafeMutablePointer<UInt64>, histograms: UnsafeMutablePointer<UInt64>,
         handlerWords: UnsafeMutablePointer<UInt64>) {
        self.index = index
        self.words = words
        self.histograms = histograms
        self.handlerWords = handlerWords
    }

    /// Adds `amount` to the handler counter (or, two's complement, gauge) at word `offset`
    /// (`HandlerSchema.offsets`). Single writer: relaxed load and store, read on its own.
    @inlinable @inline(__always)
    public func addHandler(at offset: Int, _ amount: UInt64) {
        AtomicWord_addSingleWriter(handlerWords + offset, amount)
    }

    /// Counts one duration in the handler histogram whose first bucket is at word `offset`.
    @inlinable @inline(__always)
    public func recordHandler(at offset: Int, nanoseconds: UInt64) {
        AtomicWord_addSingleWriter(handlerWords + offset + LatencyBuckets.index(nanoseconds), 1)
    }

    /// Counts one packet's queue wait: from the moment it entered the port's FIFO to the moment
    /// its handler starts. One bucket index (a leading-zero count) and a single-writer
    /// increment (relaxed load and store: a monotonic counter, read on its own by the sampler).
    @inlinable @inline(__always)
    public func recordQueueWait(_ nanoseconds: UInt64) {
        AtomicWord_addSingleWriter(histograms + LatencyBuckets.index(nanoseconds), 1)
    }

    /// Counts one service time: one packet's handling, from its start to the next packet's
    /// start (or the worker's next dequeue).
    @inlinable @inline(__always)
    public func recordService(_ nanoseconds: UInt64) {
        AtomicWord_addSingleWriter(histograms + LatencyBuckets.count + LatencyBuckets.index(nanoseconds), 1)
    }

    @inlinable @inline(__always)
    func bump(_ word: Int, by amount: UInt64) { AtomicWord_addSingleWriter(words + word, amount) }

    @inlinable @inline(__always) public func countAccept() { bump(1, by: 1) }
    @inlinable @inline(__always) public func countReceiveCompletion() { bump(2, by: 1) }
    @inlinable @inline(__always) public func countSendCompletion() { bump(3, by: 1) }
    @inlinable @inline(__always) public func countBytesIn(_ bytes: UInt64) { bump(5, by: bytes) }
    @inlinable @inline(__always) public func countBytesOut(_ bytes: UInt64) { bump(6, by: bytes) }
    @inlinable @inline(__always) public func countPosted() { bump(4, by: 1) }

    /// Called by the worker thread when it starts: publishes its CPU-time clock, so the sampler
    /// can read how much CPU (user and kernel, I/O done inside system calls included) it used.
    public func registerCurrentThread() {
        var clock = clockid_t()
        if pthread_getcpuclockid(pthread_self(), &clock) == 0 {
            // relaxed: read on its own by the sampler; a sample taken before it is simply 0.
            AtomicWord_storeRelaxed(words + SlotWord.cpuClock, UInt64(UInt32(bitPattern: clock)) + 1)
        }
    }

    /// Called by the worker thread as it exits, before `enter(.exited…)`: keeps its CPU time.
    public func recordFinalCPU() {
        AtomicWord_storeRelaxed(words + SlotWord.finalCPU, threadCPUNanoseconds(clock: CLOCK_THREAD_CPUTIME_ID) ?? 0)
    }

    /// Records that the worker enters `state` at `now` (monotonic ns): the time since the
    /// previous transition is added to the previous state's total. Entering `running` from
    /// `waiting` means completions were just dequeued, and stamps the last-completion time.
    ///
    /// A seqlock with one writer: the sequence goes odd (relaxed store, then a releasing fence,
    /// so the odd value is ordered before the field stores for any reader that sees one of
    /// them), the fields are stored (relaxed), and the sequence goes even with a releasing
    /// store (the fields happen before a reader that acquires the even value). A reader that
    /// sees the same even sequence before and after reading knows it read one transition's
    /// state, never a mix. Called once per dequeue, not per completion.
    public func enter(_ state: WorkerState, at now: UInt64) {
        let sequence = AtomicWord_loadRelaxed(words + SlotWord.timeSequence)
        AtomicWord_storeRelaxed(words + SlotWord.timeSequence, sequence &+ 1)
        AtomicWord_fenceRelease()
        let previous = AtomicWord_loadRelaxed(words + SlotWord.state)
        let since = AtomicWord_loadRelaxed(words + SlotWord.stateSince)
        let elapsed = now > since ? now - since : 0
        switch WorkerState(rawValue: previous) {
        case .running: bump(SlotWord.runningNs, by: elapsed)
        case .waiting: bump(SlotWord.waitingNs, by: elapsed)
        case .blocked: bump(SlotWord.blockedNs, by: elapsed)
        default: break
        }
        AtomicWord_storeRelaxed(words + SlotWord.state, state.rawValue)
        AtomicWord_storeRelaxed(words + SlotWord.stateSince, now)
        if state == .running && previous == WorkerState.waiting.rawValue {
            AtomicWord_storeRelaxed(words + SlotWord.lastCompletion, now)
        }
        AtomicWord_storeRelease(words + SlotWord.timeSequence, sequence &+ 2)
    }
}

/// CPU time of a clock in ns, or nil when the clock is gone (its thread exited).
func threadCPUNanoseconds(clock: clockid_t) -> UInt64? {
    var time = timespec()
    guard clock_gettime(clock, &time) == 0 else { return nil }
    return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
}
