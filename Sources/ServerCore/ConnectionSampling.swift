import CAtomicWords
import EngineStats

/// The sampler's memory of the connections between two frames: each slot's id and totals at
/// the last frame (for the interval's rates), and the candidates of the current pass. Its
/// arrays grow to the slots created and are reused: a pass allocates nothing once they have.
/// Used only under `PortServer.tallyLock`.
final class ConnectionSampling {
    private var previousID: [UInt64] = []
    private var previousIn: [UInt64] = []
    private var previousOut: [UInt64] = []
    private var previousFigure: [UInt64] = []
    private var previousNs: UInt64 = 0
    private var intervalNs: UInt64 = 0
    private var now: UInt64 = 0
    /// This pass's rows, and their candidates for `ConnectionRanking`.
    private var rows: [ConnectionSample] = []
    private var candidates: [ConnectionRanking.Candidate] = []
    private var chosen: [Int] = []

    /// Starts a pass at `now` over `slots` slots.
    func prepare(slots: Int, now: UInt64) {
        grow(to: slots)
        self.now = now
        intervalNs = previousNs > 0 && now > previousNs ? now - previousNs : 0
        previousNs = now
        rows.removeAll(keepingCapacity: true)
        candidates.removeAll(keepingCapacity: true)
    }

    /// Makes room for `slots` slots (more are created while a pass runs: `read` grows too).
    private func grow(to slots: Int) {
        guard previousID.count < slots else { return }
        let more = max(slots - previousID.count, previousID.count / 2)
        previousID += repeatElement(0, count: more)
        previousIn += repeatElement(0, count: more)
        previousOut += repeatElement(0, count: more)
        previousFigure += repeatElement(0, count: more)
    }

    /// Reads an open connection's row (nil for a free slot, or one that changed connection
    /// while it was read), computes its rates and keeps it as a candidate.
    func read(_ connection: Connection) -> ConnectionSample? {
        let figures = connection.figures, slot = connection.slot
        grow(to: slot + 1)
        // acquiring: pairs with the releasing store of the id in `ConnectionFigures.open`.
        let id = AtomicWord_loadAcquire(figures.words + ConnectionFigures.Word.id)
        guard id != 0 else {
            previousID[slot] = 0
            return nil
        }
        var row = figures.sample(slot: slot)
        row.worker = Int(connection.attribution.load(ordering: .relaxed) & 0xFFFF)
        // acquiring fence: the words above are read before the id is checked again.
        AtomicWord_fenceAcquire()
        guard figures.id == id, row.id == id else { return nil }
        if row.state == .sending {
            // Sending is a wait only once the send has stalled (the client does not read).
            if row.waitingNs(at: now) >= ConnectionSample.stalledSendNs {
                row.state = .paused
            } else {
                row.waitingSinceNs = 0
            }
        }
        let known = previousID[slot] == id
        let seconds = Double(known ? intervalNs : (now > row.openedAtNs ? now - row.openedAtNs : 0)) / 1e9
        func rate(_ total: UInt64, _ before: UInt64) -> UInt64 {
            let delta = total >= before ? total - before : 0
            return seconds > 0 ? UInt64(Double(delta) / seconds) : 0
        }
        row.bytesInPerSecond = rate(row.bytesIn, known ? previousIn[slot] : 0)
        row.bytesOutPerSecond = rate(row.bytesOut, known ? previousOut[slot] : 0)
        row.figurePerSecond = rate(row.handlerFigure, known ? previousFigure[slot] : 0)
        previousID[slot] = id
        previousIn[slot] = row.bytesIn
        previousOut[slot] = row.bytesOut
        previousFigure[slot] = row.handlerFigure
        // Waiting: blocked or paused now, or its last packet waited in the FIFO this interval.
        let recentWait = row.lastActivityNs + intervalNs >= now ? row.lastWaitNs : 0
        candidates.append(ConnectionRanking.Candidate(index: rows.count, id: id, rate: row.bytesPerSecond,
                                                      waitNs: max(row.waitingNs(at: now), recentWait)))
        rows.append(row)
        return row
    }

    /// Appends the pass's chosen rows to `out`, at most `limit`.
    func choose(limit: Int, into out: inout [ConnectionSample]) {
        ConnectionRanking.select(candidates, limit: limit, waitingReserve: ConnectionRanking.waitingReserve(limit: limit),
                                 into: &chosen)
        for index in chosen { out.append(rows[index]) }
    }
}
