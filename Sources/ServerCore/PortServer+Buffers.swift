import CIOURing
import Synchronization

/// Buffers that grow while data flows and shrink when it stops (see `Connection`).
extension PortServer {
    /// How often the sweep looks for quiet connections: one quiet for a whole interval gives
    /// its large buffer back, so an idle connection keeps one for 1 to 2 intervals (plus up to
    /// a maintenance tick: the core's maintenance thread runs the sweep).
    static let sweepIntervalNs: Int64 = 1_000_000_000

    /// Asks every connection that held a large buffer through a whole sweep interval without
    /// receiving anything to give it back, then trims the pool's resident reserve. Called by
    /// the maintenance thread every tick; does its work at most once per interval.
    ///
    /// The request travels as a posted packet (`shrinkKey`, the slot in its context), so the
    /// worker that dequeues it runs the connection's strand — counting its bytes and submitting
    /// its cancel as for any completion — and the sampler never owns a strand.
    func sweepIdleBuffers() {
        guard let pool = bufferPool, !draining.load(ordering: .relaxed) else { return }
        let now = CIOURing_now_ns()
        guard now &- lastSweepNs >= Self.sweepIntervalNs else { return }
        lastSweepNs = now
        connections.forEachCreated { connection in
            // relaxed: hints (see `Connection.holdsLarge`); a stale read costs one packet that
            // finds nothing to do, or one more interval.
            guard connection.holdsLarge.load(ordering: .relaxed),
                  connection.isOpen.load(ordering: .relaxed) else { return }
            // Active since the last sweep: look again next time.
            guard !connection.active.exchange(false, ordering: .relaxed) else { return }
            try? port.post(key: Self.shrinkKey, context: UInt64(connection.slot))
        }
        pool.trim(keepingWarm: Self.warmReserve)
    }

    /// Large buffers lent to connections right now.
    public var largeBuffersLent: Int { bufferPool?.lent ?? 0 }

    /// Moves to a large buffer when a full receive asked for one and no send reads the small
    /// one, and back to the small buffer when the sweep asked and nothing is buffered.
    /// `sendReadsInput`: the send in flight reads the buffer being resized (echo's ring), so
    /// it must be done first; a handler's send reads its output buffer, never the input.
    func resize(_ c: Connection, sendReadsInput: Bool = true) {
        let sendHolds = sendReadsInput && c.sending
        // A multishot receive writes into provided buffers, never the ring: it may stay armed.
        if c.wantsLarge && !sendHolds && (!c.receiving || c.multishot) {
            c.wantsLarge = false
            guard let pool = bufferPool, let index = pool.take() else { return }
            c.moveContents(to: pool.buffer(index))
            c.largeIndex = index
            // relaxed: hints for the sweep (see `Connection.holdsLarge`).
            c.active.store(true, ordering: .relaxed)
            c.holdsLarge.store(true, ordering: .relaxed)
            return
        }
        guard c.wantsSmall, c.largeIndex >= 0 else { return }
        // A handler's input moves back with the partial message it holds, when that fits (an
        // idle client in the middle of a message must not pin a large buffer).
        let fits = sendReadsInput ? c.buffered == 0 : c.buffered <= c.smallBuffer.count
        guard fits && !sendHolds else {
            // Data is flowing again: keep the large buffer.
            c.wantsSmall = false
            return
        }
        if c.receiving {
            // The pending receive holds the large buffer: cancel it, then move (once it is
            // back). Asked again on every request: a cancel that found nothing (lost to a full
            // submission queue, or to a resubmission) must not pin the buffer for good.
            c.cancelling = true
            port.cancel(c.receiveToken, on: c.fd)
            return
        }
        giveBackLarge(c)
    }

    /// Returns the large buffer to the pool; the connection is on its small buffer again.
    func giveBackLarge(_ c: Connection) {
        guard c.largeIndex >= 0, let pool = bufferPool else { return }
        c.moveContents(to: c.smallBuffer)
        pool.give(c.largeIndex)
        c.largeIndex = -1
        c.wantsSmall = false
        // relaxed: a hint for the sweep (see `Connection.holdsLarge`).
        c.holdsLarge.store(false, ordering: .relaxed)
    }

}
