import CAtomicWords
import EngineStats

/// The sampler's side of the connections view: one pass over every slot's figures per frame,
/// then full rows for the chosen ones only.
///
/// The pass reads nine words per connection (id, status, its wait, bytes, its figure, its
/// attribution), counts
/// the states, computes the interval's rates against what it kept from the last pass, and
/// keeps a small candidate for `ConnectionRanking`; `choose` then reads the chosen connections'
/// whole rows. What it keeps per slot lives in one buffer grown as slots are created; a pass
/// allocates nothing once the buffers have grown. Used only under `PortServer.tallyLock`.
final class ConnectionSampling {
    /// A slot as the last pass saw it, and the rates it computed.
    private struct Kept {
        var id: UInt64 = 0
        /// When these totals were read (rates divide by the time since, not by the period:
        /// a pass that skipped the slot must not double a rate).
        var sampledAt: UInt64 = 0
        var bytesIn: UInt64 = 0
        var bytesOut: UInt64 = 0
        var figure: UInt64 = 0
        var inPerSecond: UInt64 = 0
        var outPerSecond: UInt64 = 0
        var figurePerSecond: UInt64 = 0
        /// The pass's verdict on its state (a stalled send reads as paused) and its wait.
        var state: UInt64 = 0
        var waitingSince: UInt64 = 0
    }

    /// The least time a new connection's rates are measured over.
    static let shortestSpanNs: UInt64 = 100_000_000

    private var kept: UnsafeMutablePointer<Kept>
    private var keptCount = 0
    private var previousNs: UInt64 = 0
    private var candidates: [ConnectionRanking.Candidate] = []
    private var chosen: [Int] = []
    private var ranking = ConnectionRanking.Workspace()

    init() {
        kept = .allocate(capacity: 1)
        kept.initialize(to: Kept())
        keptCount = 1
    }

    deinit {
        kept.deinitialize(count: keptCount)
        kept.deallocate()
    }

    /// Makes room for `slots` slots.
    private func grow(to slots: Int) {
        guard keptCount < slots else { return }
        let count = max(slots, keptCount * 2)
        let larger = UnsafeMutablePointer<Kept>.allocate(capacity: count)
        larger.moveInitialize(from: kept, count: keptCount)
        (larger + keptCount).initialize(repeating: Kept(), count: count - keptCount)
        kept.deallocate()
        kept = larger
        keptCount = count
    }

    /// One pass over the first `slots` slots of `table` at `now`: the open connections by
    /// state, their large buffers and longest wait (into `engine`), rates, candidates, and per
    /// worker slot (`connectionsBySlot`, `pendingBySlot`, zeroed by the caller) the open
    /// connections whose strand it ran last and the operations in flight it submitted.
    func scan(_ table: ConnectionTable, slots: Int, now: UInt64, into engine: inout EngineSample,
              connectionsBySlot: UnsafeMutablePointer<Int>, pendingBySlot: UnsafeMutablePointer<Int>) {
        grow(to: slots)
        let intervalNs = previousNs > 0 && now > previousNs ? now - previousNs : 0
        // Two fills may take `now` in one order and the lock in the other: never backwards.
        previousNs = max(previousNs, now)
        candidates.removeAll(keepingCapacity: true)
        (engine.receiving, engine.sending, engine.blocked, engine.paused, engine.closing, engine.largeBuffers) = (0, 0, 0, 0, 0, 0)
        var longestWaitingNs: UInt64 = 0
        typealias Word = ConnectionFigures.Word
        for slot in 0..<slots {
            let words = table.figures(slot).words
            // acquiring: pairs with the releasing store of the id in `ConnectionFigures.open`.
            let id = AtomicWord_loadAcquire(words + Word.id)
            guard id != 0 else {
                kept[slot].id = 0
                continue
            }
            // relaxed: sampled figures; the id check below rejects a row of another connection.
            let status = AtomicWord_loadRelaxed(words + Word.status)
            var since = AtomicWord_loadRelaxed(words + Word.waitingSince)
            let lastActivity = AtomicWord_loadRelaxed(words + Word.lastActivity)
            let bytesIn = AtomicWord_loadRelaxed(words + Word.bytesIn)
            let bytesOut = AtomicWord_loadRelaxed(words + Word.bytesOut)
            let figure = AtomicWord_loadRelaxed(words + Word.handlerFigure)
            let openedAt = AtomicWord_loadRelaxed(words + Word.openedAt)
            let packed = AtomicWord_loadRelaxed(words + Word.attribution)
            let waits = AtomicWord_loadRelaxed(words + Word.waits)
            // acquiring fence: the words above are read before the id is checked again.
            AtomicWord_fenceAcquire()
            guard AtomicWord_loadRelaxed(words + Word.id) == id else { continue }
            let lastWorker = Int(packed & 0xFFFF), receiver = Int(packed >> 16 & 0xFFFF), sender = Int(packed >> 32 & 0xFFFF)
            if lastWorker > 0 { connectionsBySlot[lastWorker - 1] += 1 }
            if receiver > 0 { pendingBySlot[receiver - 1] += 1 }
            if sender > 0 { pendingBySlot[sender - 1] += 1 }
            let lastWait = (waits >> 32) &* 1000
            var state = ConnectionState(rawValue: status & 0xFF) ?? .receiving
            let waited = since > 0 && now > since ? now - since : 0
            if state == .sending {
                // Sending is a wait only once the send has stalled (the client does not read).
                if waited >= ConnectionSample.stalledSendNs { state = .paused } else { since = 0 }
            }
            let waiting = since > 0 && now > since ? now - since : 0
            switch state {
            case .receiving: engine.receiving += 1
            case .sending: engine.sending += 1
            case .blocked: engine.blocked += 1
            case .paused: engine.paused += 1
            case .closing, .closed: engine.closing += 1
            }
            engine.largeBuffers += (status & 1 << 16 != 0 ? 1 : 0) + (status & 1 << 17 != 0 ? 1 : 0)
            longestWaitingNs = max(longestWaitingNs, waiting)

            let known = kept[slot].id == id
            // A connection new since the last pass: its bytes over its age, but never over
            // less than a period (one accepted a moment ago that moved 64 KiB is not 64 GB/s).
            let age = now > openedAt ? now - openedAt : 0
            let sinceKept = now > kept[slot].sampledAt ? now - kept[slot].sampledAt : 0
            let spanNs = known ? sinceKept : max(age, intervalNs, Self.shortestSpanNs)
            func rate(_ total: UInt64, _ before: UInt64) -> UInt64 {
                guard spanNs > 0, total > before else { return 0 }
                // Bounded: a handler may count any amount, and a conversion past 2^64 traps.
                return UInt64(min(Double(total - before) * 1e9 / Double(spanNs), 1.8e19))
            }
            let before = kept[slot]
            kept[slot] = Kept(id: id, sampledAt: now, bytesIn: bytesIn, bytesOut: bytesOut, figure: figure,
                              inPerSecond: rate(bytesIn, known ? before.bytesIn : 0),
                              outPerSecond: rate(bytesOut, known ? before.bytesOut : 0),
                              figurePerSecond: rate(figure, known ? before.figure : 0),
                              state: state.rawValue, waitingSince: since)
            // Waiting: blocked or paused now, or its last packet waited in the FIFO this interval.
            let recentWait = lastActivity &+ intervalNs >= now ? lastWait : 0
            candidates.append(ConnectionRanking.Candidate(
                index: slot, id: id, rate: kept[slot].inPerSecond &+ kept[slot].outPerSecond, waitNs: max(waiting, recentWait)))
        }
        engine.longestWaitingMicroseconds = Int(longestWaitingNs / 1000)
    }

    /// Appends the whole rows of the pass's chosen connections to `out`, at most `limit`
    /// (a connection that closed since the pass is left out). `worker` is the attribution's
    /// slot index + 1 (the caller names the worker).
    func choose(limit: Int, from table: ConnectionTable, into out: inout [ConnectionSample]) {
        ConnectionRanking.select(candidates, limit: limit, waitingReserve: ConnectionRanking.waitingReserve(limit: limit),
                                 into: &chosen, workspace: &ranking)
        for slot in chosen {
            let figures = table.figures(slot)
            let pass = kept[slot]
            var row = figures.sample(slot: slot)
            // acquiring fence, then the id again: the row is this connection's.
            AtomicWord_fenceAcquire()
            guard figures.id == pass.id, row.id == pass.id else { continue }
            row.stateWord = pass.state
            row.waitingSinceNs = pass.waitingSince
            row.bytesInPerSecond = pass.inPerSecond
            row.bytesOutPerSecond = pass.outPerSecond
            row.figurePerSecond = pass.figurePerSecond
            out.append(row)
        }
    }
}
