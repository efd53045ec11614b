import CAtomicWords
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
            // Bytes in network order, read as one big-endian word: nothing allocated.
            return withUnsafeBytes(of: &storage) { raw in
                let address = raw.load(as: sockaddr_in.self)
                let value = withUnsafeBytes(of: address.sin_addr) { UInt32(bigEndian: $0.loadUnaligned(as: UInt32.self)) }
                return PeerAddress(ipv4: value, port: UInt16(bigEndian: address.sin_port))
            }
        case AF_INET6:
            return withUnsafeBytes(of: &storage) { raw in
                let address = raw.load(as: sockaddr_in6.self)
                let (high, low) = withUnsafeBytes(of: address.sin6_addr) {
                    (UInt64(bigEndian: $0.loadUnaligned(as: UInt64.self)), UInt64(bigEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
                }
                return PeerAddress(ipv6High: high, low: low, port: UInt16(bigEndian: address.sin6_port))
            }
        default:
            return PeerAddress()
        }
    }

    /// Closes connection `id` (`ConnectionSample.id`): finds its slot, then posts a packet a
    /// worker serves under the connection's strand, which checks the id again (the slot may
    /// serve another connection by then) and closes it (`CloseReason.byOperator`).
    func closeConnection(id: UInt64) -> CommandOutcome {
        // Under the commands' lock: two closes cannot overwrite each other's request.
        applyLock.withLock { _ in closeConnectionLocked(id: id) }
    }

    private func closeConnectionLocked(id: UInt64) -> CommandOutcome {
        guard !isDraining else { return CommandOutcome(succeeded: false, message: "the engine is draining") }
        guard id != 0 else { return CommandOutcome(succeeded: false, message: "connection numbers start at 1") }
        var found: Connection?
        connections.forEachCreated { connection in
            // acquiring: pairs with the releasing store of the id in `ConnectionFigures.open`.
            if found == nil && AtomicWord_loadAcquire(connection.figures.words + ConnectionFigures.Word.id) == id {
                found = connection
            }
        }
        guard let connection = found else {
            return CommandOutcome(succeeded: false, message: "no open connection \(id) (it may have closed)")
        }
        let peer = connection.figures.sample(slot: connection.slot).peer
        // acquiring fence: the peer is read before the id is checked again (as the sampler does).
        AtomicWord_fenceAcquire()
        guard connection.figures.id == id else {
            return CommandOutcome(succeeded: false, message: "connection \(id) has just closed")
        }
        // releasing: pairs with the acquiring load in `applyOperatorClose`.
        connection.operatorCloseID.store(id, ordering: .releasing)
        do {
            try port.post(key: Self.operatorCloseKey, context: UInt64(connection.slot))
        } catch {
            return CommandOutcome(succeeded: false, message: "close not posted: \(error)")
        }
        return CommandOutcome(succeeded: true, message: "closing connection \(id) (\(peer))")
    }

    /// Fills the frame's connection rows, the aggregates by state and the per-worker tallies:
    /// one pass over every slot's figures, then `ConnectionRanking` for the rows. Called under
    /// `tallyLock`.
    func sampleConnections(into frame: inout StatsFrame, now: UInt64,
                           connectionsBySlot: UnsafeMutablePointer<Int>, pendingBySlot: UnsafeMutablePointer<Int>) {
        connectionSampling.scan(connections, slots: connections.created, now: now, into: &frame.engine,
                                connectionsBySlot: connectionsBySlot, pendingBySlot: pendingBySlot)
        // relaxed: a counter read on its own.
        frame.engine.operatorCloses = operatorCloseCount.load(ordering: .relaxed)

        frame.connections.removeAll(keepingCapacity: true)
        connectionSampling.choose(limit: configuration.connectionRows, from: connections, into: &frame.connections)
        connections.takeClosed(into: &frame.connections, limit: EngineConfiguration.closedRows)
        // Worker slot index + 1, as the strands record it, to the worker's id (-1: none).
        for index in frame.connections.indices {
            let slot = frame.connections[index].worker - 1
            frame.connections[index].worker = frame.workers.first { $0.slot == slot }?.id ?? -1
        }
    }
}
