import CIOURing
import CompletionPort
import EngineStats
#if canImport(Glibc)
import Glibc
#endif

/// The connections view's side of the core: each connection's figures, the closes of the
/// interval, and the operator's close.
extension PortServer {
    /// Records the connection's state and buffers at the end of its owner's pass (`now`: the
    /// worker's last clock reading, no new one).
    @inline(__always)
    func recordFigures(_ c: Connection, now: UInt64, progressed: Bool) {
        let state: ConnectionState
        if c.closeIssued || c.closing || c.lingering {
            state = .closing
        } else if c.readingPaused || (c.handler == nil && !c.receiving && c.buffered == c.buffer.count) {
            // Back-pressure: a handler waiting for its output to drain, or an echo ring that
            // is full (the client does not read what it is sent).
            state = .paused
        } else {
            state = c.sending ? .sending : .receiving
        }
        c.figures.record(state: state, inflight: c.inflight, largeInput: c.largeIndex >= 0,
                         largeOutput: c.outputLargeIndex >= 0, held: c.buffer.count + c.output.count,
                         buffered: c.buffered + c.outputCount, progressed: progressed, now: now)
    }

    /// Keeps a refused connection's row (it never had a slot) for the next frame.
    func recordRefused(_ fd: CInt, number: UInt64) {
        var row = ConnectionSample()
        row.id = number
        row.slot = -1
        row.state = .closed
        row.closeReason = .refused
        let now = UInt64(CIOURing_now_ns())
        (row.openedAtNs, row.lastActivityNs, row.closedAtNs) = (now, now, now)
        row.peer = Self.peerAddress(of: fd)
        connections.recordClosed(row)
    }

    /// The peer of a connected socket (unknown when `getpeername` fails: a reset peer).
    static func peerAddress(of fd: CInt) -> PeerAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let found = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) == 0 }
        }
        guard found else { return PeerAddress() }
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafeBytes(of: &storage) { raw in
                let address = raw.load(as: sockaddr_in.self)
                let bytes = withUnsafeBytes(of: address.sin_addr) { Array($0) }
                return PeerAddress(ipv4: (bytes[0], bytes[1], bytes[2], bytes[3]), port: UInt16(bigEndian: address.sin_port))
            }
        case AF_INET6:
            return withUnsafeBytes(of: &storage) { raw in
                let address = raw.load(as: sockaddr_in6.self)
                return PeerAddress(ipv6: withUnsafeBytes(of: address.sin6_addr) { Array($0) }, port: UInt16(bigEndian: address.sin6_port))
            }
        default:
            return PeerAddress()
        }
    }

    /// Closes connection `id` (`ConnectionSample.id`): finds its slot, then posts a packet a
    /// worker serves under the connection's strand, which checks the id again (the slot may
    /// serve another connection by then) and closes it (`CloseReason.byOperator`).
    func closeConnection(id: UInt64) -> CommandOutcome {
        guard !isDraining else { return CommandOutcome(succeeded: false, message: "the engine is draining") }
        var found: Connection?
        connections.forEachCreated { connection in
            if found == nil && connection.figures.id == id { found = connection }
        }
        guard let connection = found else {
            return CommandOutcome(succeeded: false, message: "no open connection \(id) (it may have closed)")
        }
        let peer = connection.figures.sample(slot: connection.slot).peer
        // releasing: pairs with the acquiring load in `applyOperatorClose`.
        connection.operatorCloseID.store(id, ordering: .releasing)
        do {
            try port.post(key: Self.operatorCloseKey, context: UInt64(connection.slot))
        } catch {
            return CommandOutcome(succeeded: false, message: "close not posted: \(error)")
        }
        return CommandOutcome(succeeded: true, message: "closing connection \(id) (\(peer))")
    }

    /// Fills the frame's connection rows and the aggregates by state: one pass over every
    /// slot's figures, then `ConnectionRanking` for the rows. Called under `tallyLock`.
    func sampleConnections(into frame: inout StatsFrame, now: UInt64) {
        let sampling = connectionSampling
        let created = connections.created
        sampling.prepare(slots: created, now: now)
        var counts = (receiving: 0, sending: 0, blocked: 0, paused: 0, closing: 0, large: 0)
        var longestWaiting: UInt64 = 0
        connections.forEachCreated { connection in
            guard let row = sampling.read(connection) else { return }
            switch row.state {
            case .receiving: counts.receiving += 1
            case .sending: counts.sending += 1
            case .blocked: counts.blocked += 1
            case .paused: counts.paused += 1
            case .closing, .closed: counts.closing += 1
            }
            counts.large += (row.largeInput ? 1 : 0) + (row.largeOutput ? 1 : 0)
            longestWaiting = max(longestWaiting, row.waitingNs(at: now))
        }
        frame.engine.receiving = counts.receiving
        frame.engine.sending = counts.sending
        frame.engine.blocked = counts.blocked
        frame.engine.paused = counts.paused
        frame.engine.closing = counts.closing
        frame.engine.largeBuffers = counts.large
        frame.engine.longestWaitingMicroseconds = Int(longestWaiting / 1000)
        // relaxed: a counter read on its own.
        frame.engine.operatorCloses = operatorCloseCount.load(ordering: .relaxed)

        frame.connections.removeAll(keepingCapacity: true)
        sampling.choose(limit: configuration.connectionRows, into: &frame.connections)
        _ = connections.takeClosed(into: &frame.connections, limit: EngineConfiguration.closedRows)
        // Worker slot index + 1, as the strands record it, to the worker's id.
        for index in frame.connections.indices {
            let slotPlusOne = frame.connections[index].worker
            frame.connections[index].worker = slotPlusOne > 0 && slotPlusOne - 1 < frame.workers.count
                ? workerID(atSlot: slotPlusOne - 1, in: frame) : -1
        }
    }

    private func workerID(atSlot slot: Int, in frame: StatsFrame) -> Int {
        frame.workers.first { $0.slot == slot }?.id ?? -1
    }
}
