import CIOURing
import CompletionPort
import EngineStats
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

extension PortServer {
    /// Serves one completion on a worker. Returns true for a shutdown packet.
    func handle(_ completion: Completion, worker: Worker) -> Bool {
        let counts = worker.counts
        switch completion.key {
        case Self.listenerKey:
            if counts { worker.slot.countAccept() }
            accepted(completion, worker: worker)
        case Self.controlKey:
            if counts { worker.slot.countPosted() }
            simulateWork(worker)
            return completion.context == Self.shutdownContext
        case Self.protocolKey:
            if counts { worker.slot.countPosted() }
            serving.posted(completion.context)
        case Self.shrinkKey:
            if counts { worker.slot.countPosted() }
            // Posted only by the sweep, for a slot it found created.
            let connection = connections[Int(completion.context)]
            let owned = connection.arrive(Connection.shrinkArrived)
            if owned != 0 { pump(connection, owned, worker: worker) }
        case Self.operatorCloseKey:
            if counts { worker.slot.countPosted() }
            // Posted only by `closeConnection`, for a slot it found created.
            let connection = connections[Int(completion.context)]
            let owned = connection.arrive(Connection.operatorCloseArrived)
            if owned != 0 { pump(connection, owned, worker: worker) }
        case Self.deadlineKey:
            if counts { worker.slot.countPosted() }
            // Posted only by the deadline check, for a slot it found created. The flag clears
            // here, not on the strand: a packet that reaches a connection already finished (its
            // bit is then dropped) must not leave the slot without deadlines for good. A second
            // packet posted meanwhile is harmless: the strand checks the deadline again.
            let connection = connections[Int(completion.context)]
            // relaxed: see `Connection.deadlinePosted`.
            connection.deadlinePosted.store(false, ordering: .relaxed)
            let owned = connection.arrive(Connection.deadlineArrived)
            if owned != 0 { pump(connection, owned, worker: worker) }
        default:
            let connection = connections[Int(completion.key)]
            let bit: UInt32
            if completion.operation == .receive && completion.context == Self.multishotContext {
                if counts { worker.slot.countReceiveCompletion() }
                bit = multishotArrived(completion, connection)
            } else if completion.operation == .receive {
                if counts { worker.slot.countReceiveCompletion() }
                connection.receiveResult = completion.result
                connection.receiveErrno = completion.errno
                bit = Connection.receiveArrived
            } else {
                if counts { worker.slot.countSendCompletion() }
                connection.sendResult = completion.result
                connection.sendErrno = completion.errno
                bit = Connection.sendArrived
            }
            let owned = connection.arrive(bit)
            if owned != 0 { pump(connection, owned, worker: worker) }
        }
        simulateWork(worker)
        return false
    }

    /// Records a multishot arrival for the connection's strand; returns the bit to set.
    private func multishotArrived(_ completion: Completion, _ connection: Connection) -> UInt32 {
        if completion.bufferID >= 0 { arrivals!.push(completion, onto: connection) }
        if completion.hasMore { return Connection.shotArrived }
        connection.receiveResult = completion.result
        connection.receiveErrno = completion.errno
        connection.shotsEnd = completion.sequence &+ (completion.bufferID >= 0 ? 1 : 0)
        return Connection.shotsEnded
    }

    /// Simulated work per completion: a CPU spin, then a sleep inside the blocking scope.
    private func simulateWork(_ worker: Worker) {
        let work = workMicroseconds.load(ordering: .relaxed)
        if work > 0 {
            let until = CIOURing_now_ns() + Int64(work) * 1000
            while CIOURing_now_ns() < until {}
        }
        let block = blockMicroseconds.load(ordering: .relaxed)
        if block > 0 {
            worker.enter(.blocked)
            port.blocking { _ = usleep(useconds_t(block)) }
            worker.enter(.running)
        }
    }

    // MARK: accept

    private func accepted(_ completion: Completion, worker: Worker) {
        if completion.succeeded {
            admit(completion.acceptedDescriptor, worker: worker)
            if completion.hasMore { return }
        }
        // The multishot accept ended: re-arm it unless the engine is draining.
        guard !draining.load(ordering: .relaxed) else { return }
        if !completion.succeeded {
            acceptErrorCount.add(1, ordering: .relaxed)
            // Out of descriptors or memory: back off instead of spinning on the error, inside
            // the blocking scope so another worker serves meanwhile.
            let pause: useconds_t = switch completion.errno {
            case EMFILE, ENFILE, ENOBUFS, ENOMEM: 20_000
            default: 1_000
            }
            worker.enter(.blocked)
            port.blocking { _ = usleep(pause) }
            worker.enter(.running)
        }
        guard !draining.load(ordering: .relaxed) else { return }
        try? port.acceptMultishot(on: listener.fd, context: 0)
    }

    /// Takes an accepted socket into service, or closes it at once when full.
    private func admit(_ fd: CInt, worker: Worker) {
        let number = acceptedCount.add(1, ordering: .relaxed).newValue
        guard !draining.load(ordering: .relaxed),
              openCount.load(ordering: .relaxed) < configuration.maxConnections,
              let connection = connections.take() else {
            refusedCount.add(1, ordering: .relaxed)
            recordRefused(fd, number: number)
            close(fd)
            return
        }
        var one: CInt = 1
        setsockopt(fd, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
        // Become the strand's owner before the socket can produce a completion. A pooled
        // connection is busy only while a worker serving a late shrink packet, or the drain,
        // runs its strand (it finds it closed and hands it straight back).
        var acquired = connection.acquireFresh(), tries = 0
        while !acquired && tries < 10_000 {
            sched_yield()
            acquired = connection.acquireFresh()
            tries += 1
        }
        guard acquired else {
            refusedCount.add(1, ordering: .relaxed)
            recordRefused(fd, number: number)
            close(fd)
            // Back to the pool: whoever holds the strand finds it closed and releases it.
            connections.give(connection)
            return
        }
        connection.reset(fd: fd)
        connection.figures.open(id: number, at: UInt64(CIOURing_now_ns()), peer: Self.peerAddress(of: fd))
        // Once per slot: the handler is reused by the slot's later connections.
        if connection.handler == nil && !serving.repliesWithInput { connection.handler = serving.makeHandler() }
        connection.isOpen.store(true, ordering: .releasing)
        let open = openCount.add(1, ordering: .relaxed).newValue
        peakCount.max(open, ordering: .relaxed)
        do {
            try port.associate(fd, key: UInt64(connection.slot))
        } catch {
            close(fd)
            connection.fd = -1
            finish(connection)
            return
        }
        pump(connection, 0, worker: worker)
    }

    // MARK: the echo

    /// Runs a connection's strand as its owner: applies the results that arrived, runs its
    /// handler, starts the receive and send that are now possible, and hands the strand back.
    /// `worker` is nil when the drain closes the connection from the control thread.
    func pump(_ connection: Connection, _ arrived: UInt32, worker: Worker?) {
        var bits = arrived
        let slot = worker.map { $0.counts ? $0.slot : nil } ?? nil
        while true {
            if connection.fd >= 0 {
                if let worker, slot != nil {
                    connection.figures.served(at: worker.packetStartNs, queueWait: worker.packetWaitNs,
                                              completions: UInt64((bits & Connection.packetMask).nonzeroBitCount))
                }
                let submitter = worker.map { $0.slot.index + 1 } ?? 0
                if let handler = connection.handler {
                    applyHandled(bits, to: connection, slot: slot)
                    advanceHandled(connection, handler: handler, worker: worker, submitter: submitter)
                } else {
                    apply(bits, to: connection, slot: slot)
                    advance(connection, submitter: submitter, slot: slot)
                }
                if connection.closeIssued && connection.inflight == 0 {
                    finish(connection)
                    return
                }
                if let worker {
                    connection.publishAttribution(lastWorker: worker.slot.index + 1)
                    if slot != nil {
                        recordFigures(connection, now: worker.strandClockNs, progressed: bits & Connection.sendArrived != 0)
                    }
                }
            }
            if connection.release() { return }
            bits = connection.take()
        }
    }

    /// How a receive ended, once the connection no longer counts it in flight.
    enum ReceiveEnd {
        /// We cancelled it (to give a large buffer back, or to grow): nothing arrived.
        case cancelledByUs
        case failed(Int32)
        /// 0 bytes: the peer is done sending.
        case peerClosed
        case bytes(Int)
    }

    /// Ends the connection's receive in flight (its result and errno were posted with its
    /// bit): what every path that applies a receive does first.
    @inline(__always)
    func endReceive(_ c: Connection) -> ReceiveEnd {
        c.inflight -= 1
        c.receiving = false
        c.receiveToken = .none
        let cancelled = c.cancelling
        c.cancelling = false
        if c.receiveErrno == ECANCELED && cancelled && !c.closeIssued { return .cancelledByUs }
        if c.receiveErrno != 0 { return .failed(c.receiveErrno) }
        return c.receiveResult == 0 ? .peerClosed : .bytes(Int(c.receiveResult))
    }

    /// Ends the connection's send in flight: the bytes it took out (counted for the worker),
    /// or nil when it failed (the connection is failing).
    @inline(__always)
    func endSend(_ c: Connection, slot: WorkerSlot?) -> Int? {
        c.inflight -= 1
        c.sending = false
        guard c.sendErrno == 0 else {
            fail(c, errno: c.sendErrno)
            return nil
        }
        if let slot {
            slot.countBytesOut(UInt64(c.sendResult))
            c.figures.add(ConnectionFigures.Word.bytesOut, UInt64(c.sendResult))
        }
        return Int(c.sendResult)
    }

    /// Counts received bytes for the worker and the connection (when the worker counts).
    @inline(__always)
    func countBytesIn(_ bytes: Int, _ c: Connection, _ slot: WorkerSlot?) {
        guard let slot else { return }
        slot.countBytesIn(UInt64(bytes))
        c.figures.add(ConnectionFigures.Word.bytesIn, UInt64(bytes))
    }

    /// An operator's close reached the strand: it closes the connection it was meant for.
    func applyOperatorClose(_ c: Connection) {
        // acquiring: pairs with the releasing store in `closeConnection`.
        guard c.operatorCloseID.load(ordering: .acquiring) == c.figures.id, !c.closeIssued else { return }
        if c.closeReason == nil { c.closeReason = .byOperator }
        operatorCloseCount.add(1, ordering: .relaxed)
        c.closing = true
    }

    private func apply(_ bits: UInt32, to c: Connection, slot: WorkerSlot?) {
        if bits & Connection.receiveArrived != 0 {
            switch endReceive(c) {
            case .cancelledByUs: break
            case .failed(let code): fail(c, errno: code)
            case .peerClosed: c.peerClosed = true
            case .bytes(let bytes):
                c.buffered += bytes
                c.moreWaiting = bytes == c.receiveLength
                countBytesIn(bytes, c, slot)
                if c.largeIndex >= 0 {
                    // relaxed: a hint for the sweep (see `Connection.active`).
                    c.active.store(true, ordering: .relaxed)
                    c.wantsSmall = false
                } else if c.buffered == c.buffer.count && bufferPool != nil {
                    // The small ring is full: more is arriving than it holds. (Messages shorter
                    // than the ring, echoed one at a time, never fill it, however it wraps.)
                    c.wantsLarge = true
                }
            }
        }
        if bits & Connection.sendArrived != 0, let bytes = endSend(c, slot: slot) {
            c.head = (c.head + bytes) % c.buffer.count
            c.buffered -= bytes
        }
        if bits & (Connection.shotArrived | Connection.shotsEnded) != 0 {
            arrivals!.take(into: c)
            if bits & Connection.shotsEnded != 0 { c.multishotEnded = true }
        }
        if bits & Connection.closeArrived != 0 {
            if c.closeReason == nil { c.closeReason = .byServer }
            c.closing = true
        }
        if bits & Connection.operatorCloseArrived != 0 { applyOperatorClose(c) }
        if bits & Connection.shrinkArrived != 0 && c.largeIndex >= 0 {
            c.wantsSmall = true
        }
    }

    /// Copies the multishot arrivals the connection holds into its ring, in sequence order and
    /// as far as it has room, handing each buffer back to the kernel; then, once every arrival
    /// before the receive's end is in, applies the end. An arrival that does not fit says more is
    /// arriving than the ring holds: the connection grows (see `resize`, which does not wait for
    /// the multishot receive to end: it writes into provided buffers, not the ring) and the
    /// receive is cancelled, the next ones going straight into the large buffer.
    /// A failed or closing connection drops what arrives.
    private func deliverArrivals(_ c: Connection, slot: WorkerSlot?) {
        let table = arrivals!
        let dropping = c.failed || c.closing || c.closeIssued
        while let (id, length) = table.first(of: c.heldArrivals, expected: c.nextShot) {
            if !dropping {
                guard length <= c.free else {
                    // More is arriving than the ring holds: stop the multishot (whatever it
                    // would take next would wait here, out of the shared provided buffers),
                    // asked again on every pass while it does not fit (a cancel can be lost to
                    // a full submission queue), and grow if there is a pool.
                    if c.multishot {
                        if bufferPool != nil && c.largeIndex < 0 { c.wantsLarge = true }
                        c.cancelling = true
                        port.cancel(c.receiveToken, on: c.fd)
                    }
                    break
                }
                c.append(port.providedBuffer(id).baseAddress!, count: length)
                countBytesIn(length, c, slot)
                // relaxed: a hint for the sweep (see `Connection.active`).
                if c.largeIndex >= 0 { c.active.store(true, ordering: .relaxed) }
            }
            c.heldArrivals = table.rest(of: c.heldArrivals)
            c.nextShot &+= 1
            port.recycle(providedBuffer: id)
        }
        guard c.multishotEnded && c.nextShot == c.shotsEnd else { return }
        c.multishotEnded = false
        c.multishot = false
        switch endReceive(c) {
        case .cancelledByUs: break  // to grow: `resize` moves the ring to a large buffer
        case .failed(ENOBUFS):
            // Every provided buffer is held: receive into the connection's own ring for a while.
            c.oneShotReceivesLeft = Connection.oneShotReceivesAfterENOBUFS
        case .failed(let code): fail(c, errno: code)
        case .peerClosed: c.peerClosed = true
        case .bytes: break  // the kernel stopped it after bytes: `advance` arms another
        }
    }

    func fail(_ c: Connection, errno: Int32) {
        // A cancellation our own close caused says nothing about why the connection closed.
        if c.closeReason == nil && !(errno == ECANCELED && c.closeIssued) { c.closeReason = .failed(errno: errno) }
        // A cancellation we caused by closing is not an error of the connection.
        if !(errno == ECANCELED && c.closeIssued) && !c.failed && !c.closing {
            closedByErrorCount.add(1, ordering: .relaxed)
        }
        c.failed = true
    }

    /// Starts whatever the connection can do now.
    /// `submitter`: slot index + 1 of the worker submitting, 0 for none.
    private func advance(_ c: Connection, submitter: Int, slot: WorkerSlot?) {
        if c.heldArrivals != 0 || c.multishotEnded { deliverArrivals(c, slot: slot) }
        if !c.failed && !c.closing {
            resize(c)
            // Grown: what did not fit fits now.
            if c.heldArrivals != 0 { deliverArrivals(c, slot: slot) }
            let capacity = c.buffer.count
            if !c.failed && !c.sending && c.buffered > 0 {
                let start = c.head
                let length = min(c.buffered, capacity - start)
                do {
                    try port.send(on: c.fd, from: UnsafeRawBufferPointer(rebasing: c.buffer[start..<(start + length)]), context: Self.sendContext)
                    c.sending = true
                    c.sendSubmitter = submitter
                    c.inflight += 1
                } catch {
                    c.failed = true
                }
            }
            // Waiting to grow or to shrink: the next receive goes into the other buffer. While
            // a send is in flight, receive only if the last receive filled what it was given
            // (more is waiting); otherwise — a message echoed whole, as in request/response —
            // receive once the send is done, at the start of the emptied ring, so a connection
            // keeps reusing the same bytes instead of walking its whole buffer.
            if !c.failed && !c.receiving && !c.peerClosed && !c.wantsLarge && !c.wantsSmall
                && c.largeIndex < 0 && c.buffered == 0 && arrivals != nil && c.oneShotReceivesLeft == 0 {
                // On its own, empty buffer: one multishot receive for every message to come.
                // (Not while the ring holds bytes: arrivals it has no room for would wait in
                // the shared provided buffers; a one-shot receive into the free part waits
                // in the socket instead.)
                do {
                    c.receiveToken = try port.receiveMultishot(on: c.fd, context: Self.multishotContext)
                    c.multishot = true
                    c.nextShot = 0
                    c.receiving = true
                    c.receiveSubmitter = submitter
                    c.inflight += 1
                } catch {
                    c.failed = true
                }
            }
            if !c.failed && !c.receiving && !c.peerClosed && c.free > 0 && !c.wantsLarge && !c.wantsSmall
                && (!c.sending || c.moreWaiting) {
                // Empty: start the ring over, so this receive gets it whole.
                if c.buffered == 0 { c.head = 0 }
                let start = (c.head + c.buffered) % capacity
                let length = min(c.free, capacity - start)
                do {
                    c.receiveToken = try port.receive(on: c.fd, into: UnsafeMutableRawBufferPointer(rebasing: c.buffer[start..<(start + length)]), context: Self.receiveContext)
                    if c.oneShotReceivesLeft > 0 { c.oneShotReceivesLeft -= 1 }
                    c.receiveLength = length
                    c.receiving = true
                    c.receiveSubmitter = submitter
                    c.inflight += 1
                } catch {
                    c.failed = true
                }
            }
            // Half-close: the peer is done sending and everything has been echoed.
            if c.peerClosed && c.buffered == 0 && !c.sending { c.closing = true }
        }
        if c.failed || c.closing { issueClose(c) }
    }

    /// Closes the connection's socket (once), which cancels the receive and send in flight:
    /// they complete with ECANCELED, and the last one finishes the connection.
    func issueClose(_ c: Connection) {
        guard !c.closeIssued else { return }
        c.closeIssued = true
        // relaxed: see `Connection.deadline`; closing, it has no deadline left to keep.
        c.deadline.store(0, ordering: .relaxed)
        do {
            try port.close(handle: c.fd)
        } catch {
            // Not associated (association failed): close the descriptor directly.
            close(c.fd)
        }
    }

    /// Returns a connection whose socket is closed and whose operations are all complete.
    private func finish(_ connection: Connection) {
        if let handler = connection.handler, connection.handlerOpened {
            handler.closed(connection.closeReason ?? .byServer)
        }
        giveBackOutput(connection)
        connection.outputCount = 0
        connection.buffered = 0
        if let arrivals {
            // Every arrival came before the receive's end, so none is left; should one be,
            // its buffer must not leak.
            arrivals.take(into: connection)
            while connection.heldArrivals != 0 {
                let id = Int32(connection.heldArrivals - 1)
                connection.heldArrivals = arrivals.rest(of: connection.heldArrivals)
                port.recycle(providedBuffer: id)
            }
        }
        giveBackLarge(connection)
        // `worker` is the worker's slot index + 1 (the sampler names the worker).
        var row = connection.figures.sample(slot: connection.slot)
        row.state = .closed
        let reason = (connection.closeReason ?? (connection.peerClosed ? .peerClosed : .byServer)).frameReason
        row.closeReason = reason.reason
        row.closeErrno = reason.errno
        row.closedAtNs = UInt64(CIOURing_now_ns())
        row.inflight = 0
        row.waitingSinceNs = 0
        connection.figures.store(ConnectionFigures.Word.attribution, 0)
        connection.figures.close()
        connection.fd = -1
        connection.isOpen.store(false, ordering: .releasing)
        openCount.subtract(1, ordering: .relaxed)
        // Hand back the strand; a late close request (drain) is absorbed: fd < 0.
        while !connection.release() { _ = connection.take() }
        connections.give(connection, closed: row.id != 0 ? row : nil)
    }
}
