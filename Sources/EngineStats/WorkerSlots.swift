import CAtomicWords
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The table of worker counter slots: one 128-byte, 128-byte-aligned slot per worker.
///
/// Workers write only their own slot (`WorkerSlot`). The pool's control path claims a slot for
/// each new worker; a slot whose worker has exited is reused only when no unused slot is left,
/// oldest exit first, so an exited worker stays visible for a while. Before reuse, its counters
/// are folded into `retired`, so engine totals never go backwards.
///
/// Claiming and sampling share one mutex (never taken by a worker): a sample can never see a
/// slot half reset, nor count a worker both in `retired` and in its slot.
public final class WorkerSlots: @unchecked Sendable {
    // @unchecked: raw words: each slot is written by its one worker with relaxed atomic stores, claimed and sampled under `control`.
    /// How many workers can be alive at once.
    public let capacity: Int
    private let words: UnsafeMutablePointer<UInt64>
    private let histogramWords: UnsafeMutablePointer<UInt64>
    /// What the handlers keep per worker (`HandlerSchema`), `handlerStride` words per slot.
    public let handler: HandlerSchema
    private let handlerWords: UnsafeMutablePointer<UInt64>
    private let handlerStride: Int
    private let control = Mutex<RetiredWork>(RetiredWork())

    /// Words of one slot's histograms, rounded up to whole 128-byte blocks (no shared lines).
    static let histogramStride = (2 * LatencyBuckets.count + 15) / 16 * 16

    public init(capacity: Int, handler: HandlerSchema = .empty) {
        precondition(capacity > 0)
        self.capacity = capacity
        self.handler = handler
        // Whole 128-byte blocks per slot: no line shared with another worker's words.
        handlerStride = (handler.wordCount + 15) / 16 * 16
        let handlerBytes = max(128, capacity * handlerStride * 8)
        let handlerRaw = UnsafeMutableRawPointer.allocate(byteCount: handlerBytes, alignment: 128)
        handlerRaw.initializeMemory(as: UInt8.self, repeating: 0, count: handlerBytes)
        handlerWords = handlerRaw.bindMemory(to: UInt64.self, capacity: handlerBytes / 8)
        let bytes = capacity * SlotWord.count * 8
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 128)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        words = raw.bindMemory(to: UInt64.self, capacity: capacity * SlotWord.count)
        let histogramBytes = capacity * Self.histogramStride * 8
        let histogramRaw = UnsafeMutableRawPointer.allocate(byteCount: histogramBytes, alignment: 128)
        histogramRaw.initializeMemory(as: UInt8.self, repeating: 0, count: histogramBytes)
        histogramWords = histogramRaw.bindMemory(to: UInt64.self, capacity: capacity * Self.histogramStride)
    }

    deinit {
        UnsafeMutableRawPointer(words).deallocate()
        UnsafeMutableRawPointer(histogramWords).deallocate()
        UnsafeMutableRawPointer(handlerWords).deallocate()
    }

    private func handlerRow(_ index: Int) -> UnsafeMutablePointer<UInt64> { handlerWords + index * handlerStride }

    /// Reads a slot's handler words into `row`, reusing its storage.
    private func readHandler(_ index: Int, into row: inout [UInt64]) {
        let count = handler.wordCount
        if row.count != count { row = [UInt64](repeating: 0, count: count) }
        guard count > 0 else { return }
        let first = handlerRow(index)
        row.withUnsafeMutableBufferPointer { words in
            // relaxed: each word is a counter (or a gauge) read on its own.
            for word in words.indices { words[word] = AtomicWord_loadRelaxed(first + word) }
        }
    }

    private func base(_ index: Int) -> UnsafeMutablePointer<UInt64> { words + index * SlotWord.count }

    private func histograms(_ index: Int) -> UnsafeMutablePointer<UInt64> { histogramWords + index * Self.histogramStride }

    /// Reads a slot's histogram (`second`: service time, else queue wait) word by word into
    /// `histogram`, reusing its storage (no allocation once it has its buckets and is not
    /// shared).
    private func readHistogram(_ index: Int, second: Bool, into histogram: inout LatencyHistogram) {
        let first = histograms(index) + (second ? LatencyBuckets.count : 0)
        if histogram.counts.count != LatencyBuckets.count {
            histogram.counts = [UInt64](repeating: 0, count: LatencyBuckets.count)
        }
        histogram.counts.withUnsafeMutableBufferPointer { counts in
            // relaxed: each bucket is a monotonic counter read on its own.
            for bucket in counts.indices { counts[bucket] = AtomicWord_loadRelaxed(first + bucket) }
        }
    }

    private func state(_ index: Int) -> WorkerState {
        // acquiring: pairs with the worker's releasing sequence store after its last
        // transition (to `exited`); its final counter stores are visible before we reuse them.
        _ = AtomicWord_loadAcquire(base(index) + SlotWord.timeSequence)
        return WorkerState(rawValue: AtomicWord_loadRelaxed(base(index) + SlotWord.state)) ?? .unused
    }

    /// A slot for a new worker with id `workerID`, starting in `waiting` at `now`, or nil when
    /// `capacity` workers are alive. The worker thread must be started after this returns (thread
    /// creation orders the reset before the worker's first store).
    public func claim(workerID: Int, now: UInt64) -> WorkerSlot? {
        control.withLock { retired -> WorkerSlot? in
            // An unused slot if there is one, else the one whose worker exited first.
            var chosen = (0..<capacity).first { state($0) == .unused }
            if chosen == nil {
                var oldestExit = UInt64.max
                for index in 0..<capacity where state(index) == .exited {
                    let since = AtomicWord_loadRelaxed(base(index) + SlotWord.stateSince)
                    if since < oldestExit { oldestExit = since; chosen = index }
                }
            }
            guard let index = chosen else { return nil }
            let slot = base(index)
            if state(index) == .exited {
                retired.counts += counts(slot)
                var histogram = LatencyHistogram()
                readHistogram(index, second: false, into: &histogram)
                retired.queueWait += histogram
                readHistogram(index, second: true, into: &histogram)
                retired.service += histogram
                var row: [UInt64] = []
                readHandler(index, into: &row)
                handler.fold(row, into: &retired.handler)
            }
            // Relaxed stores: no reader looks at this slot without holding `control`, and the
            // new worker starts after we return.
            for word in 0..<SlotWord.count { AtomicWord_storeRelaxed(slot + word, 0) }
            for word in 0..<Self.histogramStride { AtomicWord_storeRelaxed(histograms(index) + word, 0) }
            for word in 0..<handlerStride { AtomicWord_storeRelaxed(handlerRow(index) + word, 0) }
            AtomicWord_storeRelaxed(slot + SlotWord.workerID, UInt64(workerID))
            AtomicWord_storeRelaxed(slot + SlotWord.state, WorkerState.waiting.rawValue)
            AtomicWord_storeRelaxed(slot + SlotWord.stateSince, now)
            return WorkerSlot(index: index, words: slot, histograms: histograms(index), handlerWords: handlerRow(index))
        }
    }

    private func counts(_ slot: UnsafeMutablePointer<UInt64>) -> WorkerCounts {
        // relaxed: each counter is monotonic and read on its own.
        var counts = WorkerCounts()
        counts.accepts = AtomicWord_loadRelaxed(slot + SlotWord.accepts)
        counts.receives = AtomicWord_loadRelaxed(slot + SlotWord.receives)
        counts.sends = AtomicWord_loadRelaxed(slot + SlotWord.sends)
        counts.posted = AtomicWord_loadRelaxed(slot + SlotWord.posted)
        counts.bytesIn = AtomicWord_loadRelaxed(slot + SlotWord.bytesIn)
        counts.bytesOut = AtomicWord_loadRelaxed(slot + SlotWord.bytesOut)
        return counts
    }

    /// Reads every claimed slot at `now` into `workers` and returns what the workers whose
    /// slots were reused did. Time in the current state so far is included in that state's
    /// total. The samples already in `workers` are overwritten in place, their histograms'
    /// storage reused, so a sampler that keeps one frame allocates nothing per sample.
    public func sample(into workers: inout [WorkerSample], now: UInt64) -> RetiredWork {
        control.withLock { retired -> RetiredWork in
            var filled = 0
            for index in 0..<capacity {
                let slot = base(index)
                var sample = WorkerSample()
                readTimes(slot, into: &sample)
                guard sample.state != .unused else { continue }
                if filled < workers.count {
                    // Take the old sample's histograms (leaving it empty, so they stay unique).
                    swap(&sample.queueWait, &workers[filled].queueWait)
                    swap(&sample.service, &workers[filled].service)
                    swap(&sample.handler, &workers[filled].handler)
                }
                sample.slot = index
                sample.id = Int(truncatingIfNeeded: AtomicWord_loadRelaxed(slot + SlotWord.workerID))
                sample.counts = counts(slot)
                readHistogram(index, second: false, into: &sample.queueWait)
                readHistogram(index, second: true, into: &sample.service)
                readHandler(index, into: &sample.handler)
                sample.cpuNs = cpuTime(slot, exited: sample.state == .exited)
                if sample.state != .exited, now > sample.stateSinceNs {
                    let current = now - sample.stateSinceNs
                    switch sample.state {
                    case .running: sample.runningNs &+= current
                    case .waiting: sample.waitingNs &+= current
                    case .blocked: sample.blockedNs &+= current
                    default: break
                    }
                }
                if filled < workers.count { workers[filled] = sample } else { workers.append(sample) }
                filled += 1
            }
            workers.removeLast(workers.count - filled)
            return retired
        }
    }

    /// The worker thread's CPU time: from its clock while it lives, the recorded final value after.
    private func cpuTime(_ slot: UnsafeMutablePointer<UInt64>, exited: Bool) -> UInt64 {
        let clock = AtomicWord_loadRelaxed(slot + SlotWord.cpuClock)
        if !exited, clock > 0, let now = threadCPUNanoseconds(clock: clockid_t(Int32(bitPattern: UInt32(truncatingIfNeeded: clock - 1)))) {
            return now
        }
        return AtomicWord_loadRelaxed(slot + SlotWord.finalCPU)
    }

    /// Counts of every worker that ever had a slot here.
    public func totals() -> WorkerCounts {
        control.withLock { retired in
            (0..<capacity).reduce(retired.counts) { $0 + counts(base($1)) }
        }
    }

    /// The time fields of one slot, consistent with one transition (see `WorkerSlot.enter`).
    private func readTimes(_ slot: UnsafeMutablePointer<UInt64>, into sample: inout WorkerSample) {
        var attempts = 0
        while true {
            // acquiring: pairs with the releasing even store that ends a transition.
            let before = AtomicWord_loadAcquire(slot + SlotWord.timeSequence)
            if before & 1 == 0 {
                sample.state = WorkerState(rawValue: AtomicWord_loadRelaxed(slot + SlotWord.state)) ?? .unused
                sample.stateSinceNs = AtomicWord_loadRelaxed(slot + SlotWord.stateSince)
                sample.runningNs = AtomicWord_loadRelaxed(slot + SlotWord.runningNs)
                sample.waitingNs = AtomicWord_loadRelaxed(slot + SlotWord.waitingNs)
                sample.blockedNs = AtomicWord_loadRelaxed(slot + SlotWord.blockedNs)
                sample.lastCompletionNs = AtomicWord_loadRelaxed(slot + SlotWord.lastCompletion)
                // acquiring fence: the loads above are ordered before the re-check; if any of
                // them saw a store of a newer transition, the re-check sees its odd sequence.
                AtomicWord_fenceAcquire()
                if AtomicWord_loadRelaxed(slot + SlotWord.timeSequence) == before { return }
            }
            attempts += 1
            // The worker is mid-transition (a few stores); if it was preempted there, let it run.
            if attempts % 64 == 0 { sched_yield() }
        }
    }
}

/// What the workers whose slots were reused did: their counts and histograms, kept so engine
/// totals never go backwards.
public struct RetiredWork: Sendable, Hashable {
    public var counts = WorkerCounts()
    public var queueWait = LatencyHistogram()
    public var service = LatencyHistogram()
    /// Their handler words (`HandlerSchema`): counters, histograms and gauge shares.
    public var handler: [UInt64] = []

    public init() {}
}
