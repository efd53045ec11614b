import CIOURing
import CompletionPort
import EngineStats
#if canImport(Glibc)
import Glibc
#endif

/// The strand of a connection whose protocol has a handler (see `ConnectionHandler`).
///
/// The input is the connection's `buffer`, used linearly: receives append after the
/// unconsumed bytes (moved to the front first when they do not start there), the handler
/// consumes from the front. The output is a buffer of its own: the handler appends, a send
/// drains from the front, and what the handler wrote while a send was in flight goes out with
/// the next one — so the replies to everything one receive brought leave in one send.
///
/// Back-pressure: a handler whose output is full is not called (`readingPaused`) until the
/// output has been sent, and no receive is made meanwhile; a client that sends without reading
/// fills the input, then its socket, then its own window — the server holds at most one input
/// and one output buffer for it. Buffers grow from the shared pool: the input when it is full
/// and the handler cannot consume it (a message larger than the small buffer), the output
/// when the handler pauses for room (it is given back as soon as it has been sent).
extension PortServer {
    func applyHandled(_ bits: UInt32, to c: Connection, slot: WorkerSlot?) {
        var bytesArrived = false
        if bits & Connection.receiveArrived != 0 {
            switch endReceive(c) {
            case .cancelledByUs: break
            case .failed(let code): fail(c, errno: code)
            case .peerClosed: c.peerClosed = true
            case .bytes(let bytes):
                bytesArrived = true
                countBytesIn(bytes, c, slot)
                if c.lingering {
                    // Discarded: the handler is done with this connection.
                } else if c.largeIndex >= 0 {
                    c.buffered += bytes
                    // relaxed: a hint for the sweep (see `Connection.active`).
                    c.active.store(true, ordering: .relaxed)
                    c.wantsSmall = false
                } else {
                    c.buffered += bytes
                    // The receive filled the small buffer: more is arriving than it holds.
                    if bytes == c.receiveLength && bufferPool != nil { c.wantsLarge = true }
                }
            }
        }
        if bits & Connection.sendArrived != 0, let bytes = endSend(c, slot: slot) {
            c.outputHead += bytes
            c.outputCount -= bytes
            if c.outputCount == 0 { c.outputHead = 0 }
        }
        if bits & Connection.closeArrived != 0 {
            if c.closeReason == nil { c.closeReason = .byServer }
            c.closing = true
        }
        if bits & Connection.shrinkArrived != 0 && c.largeIndex >= 0 {
            c.wantsSmall = true
        }
        if bits & Connection.operatorCloseArrived != 0 { applyOperatorClose(c) }
        if bits & Connection.deadlineArrived != 0 { checkDeadline(c, bytesArrived: bytesArrived) }
    }

    /// Runs the handler on what it can take now, then starts the send and the receive that
    /// are possible.
    func advanceHandled(_ c: Connection, handler: any ConnectionHandler, worker: Worker?, submitter: Int) {
        if !c.failed && !c.closing {
            resize(c, sendReadsInput: false)
            if c.outputCount == 0 && !c.sending {
                // Everything written has been sent: a paused handler may go on.
                giveBackOutput(c)
                c.readingPaused = false
            }
            if !c.handlerOpened {
                c.handlerOpened = true
                var context = ConnectionContext(server: self, worker: worker, slot: c.slot)
                var output = OutputBuffer(base: c.output.baseAddress, capacity: c.output.count)
                let verdict = handler.opened(&output, &context)
                c.outputCount += output.count
                follow(verdict, c)
            }
            let calling = c.buffered > 0 && !c.readingPaused
            serveInput(c, handler, worker: worker)
            if c.readingPaused && !c.sending && c.outputLargeIndex < 0 && growOutput(c) {
                // Paused for room: more fits now, before anything is sent.
                c.readingPaused = false
                serveInput(c, handler, worker: worker)
            }
            if calling, let worker, worker.counts {
                // The handler's time: from the packet's start (or the last reading) to now.
                let now = UInt64(CIOURing_now_ns())
                c.figures.add(ConnectionFigures.Word.handlerNs, now > worker.strandClockNs ? now - worker.strandClockNs : 0)
                worker.strandClockNs = now
            }
            if c.readingPaused && c.outputCount == 0 && !c.sending {
                // Paused with nothing to send: a reply larger than the largest output buffer.
                if c.closeReason == nil { c.closeReason = .byServer }
                c.closing = true
            }
        }
        if !c.failed && !c.closing && !c.sending && c.outputCount > 0 {
            let start = c.outputHead
            do {
                try port.send(on: c.fd, from: UnsafeRawBufferPointer(rebasing: c.output[start..<(start + c.outputCount)]),
                              context: Self.sendContext)
                c.sending = true
                c.sendSubmitter = submitter
                c.inflight += 1
            } catch {
                c.failed = true
            }
        }
        if !c.failed && !c.closing && c.lingerAfterFlush && !c.lingering && c.outputCount == 0 && !c.sending {
            startLingering(c)
        }
        if !c.failed && !c.closing && (!c.closeAfterFlush || c.lingering) && !c.readingPaused && !c.receiving && !c.peerClosed
            && !c.wantsLarge && !c.wantsSmall && c.buffered < c.buffer.count {
            if c.head > 0 {
                // The unconsumed bytes (a partial message) move to the front: the receive gets
                // the whole rest of the buffer.
                if c.buffered > 0 {
                    c.buffer.baseAddress!.copyMemory(from: c.buffer.baseAddress! + c.head, byteCount: c.buffered)
                }
                c.head = 0
            }
            do {
                c.receiveToken = try port.receive(on: c.fd, into: UnsafeMutableRawBufferPointer(rebasing: c.buffer[c.buffered...]),
                                                  context: Self.receiveContext)
                c.receiveLength = c.buffer.count - c.buffered
                c.receiving = true
                c.receiveSubmitter = submitter
                c.inflight += 1
            } catch {
                c.failed = true
            }
        }
        if !c.failed && !c.closing && c.outputCount == 0 && !c.sending {
            if c.lingering {
                // Closes once the peer has closed too (or the deadline, or a reset).
                if c.peerClosed { c.closing = true }
            } else if c.closeAfterFlush {
                c.closing = true
            } else if c.peerClosed && !c.readingPaused {
                // Half-close: the peer is done sending and everything owed to it was sent.
                if c.closeReason == nil { c.closeReason = .peerClosed }
                c.closing = true
            }
        }
        if c.failed || c.closing { issueClose(c) }
    }

    /// Hands the handler the unconsumed input, as long as it consumes some and has room.
    private func serveInput(_ c: Connection, _ handler: any ConnectionHandler, worker: Worker?) {
        while !c.failed && !c.closing && !c.closeAfterFlush && !c.readingPaused && c.buffered > 0 {
            if !c.sending && c.outputHead > 0 && c.outputCount > 0 {
                // Room at the end: what waits to be sent moves to the front.
                c.output.baseAddress!.copyMemory(from: c.output.baseAddress! + c.outputHead, byteCount: c.outputCount)
                c.outputHead = 0
            }
            let end = c.outputHead + c.outputCount
            guard end < c.output.count else {
                c.readingPaused = true
                return
            }
            let bufferFull = c.head + c.buffered == c.buffer.count
            // Full for good only at the largest size (a small buffer grows instead).
            var input = InputBuffer(bytes: UnsafeRawBufferPointer(start: c.buffer.baseAddress! + c.head, count: c.buffered),
                                    isFull: c.buffered == c.buffer.count && (c.largeIndex >= 0 || bufferPool == nil))
            var output = OutputBuffer(base: c.output.baseAddress! + end, capacity: c.output.count - end)
            var context = ConnectionContext(server: self, worker: worker, slot: c.slot)
            let verdict = handler.received(&input, &output, &context)
            c.head += input.consumed
            c.buffered -= input.consumed
            // Not while a receive is in flight: it writes after the bytes it was given room behind.
            if c.buffered == 0 && !c.receiving { c.head = 0 }
            c.outputCount += output.count
            follow(verdict, c)
            if verdict == .continue && input.consumed == 0 {
                // The handler waits for more bytes. If none can come, the input must grow.
                if bufferFull {
                    if c.head > 0 {
                        // Not full once the unconsumed bytes move to the front (the receive does).
                    } else if bufferPool != nil && c.largeIndex < 0 {
                        c.wantsLarge = true
                        resize(c, sendReadsInput: false)
                        if c.largeIndex >= 0 { continue }
                        if c.wantsLarge { return }
                        // The pool is empty: the message cannot be received.
                        if c.closeReason == nil { c.closeReason = .byServer }
                        c.closing = true
                    } else {
                        // A message larger than the largest input buffer.
                        if c.closeReason == nil { c.closeReason = .byServer }
                        c.closing = true
                    }
                }
                return
            }
        }
    }

    private func follow(_ verdict: HandlerVerdict, _ c: Connection) {
        switch verdict {
        case .continue: break
        case .pauseReading: c.readingPaused = true
        case .closeAfterFlush:
            c.closeAfterFlush = true
            if c.closeReason == nil { c.closeReason = .byHandler }
        case .closeNow:
            c.closing = true
            if c.closeReason == nil { c.closeReason = .byHandler }
        case .lingeringClose:
            c.closeAfterFlush = true
            c.lingerAfterFlush = true
            if c.closeReason == nil { c.closeReason = .byHandler }
        }
    }

    /// Moves the output to a large buffer from the pool (nothing may be sending). False when
    /// there is no pool or it is empty.
    private func growOutput(_ c: Connection) -> Bool {
        guard let pool = bufferPool, c.outputLargeIndex < 0, let index = pool.take() else { return false }
        let large = pool.buffer(index)
        if c.outputCount > 0 {
            large.baseAddress!.copyMemory(from: c.output.baseAddress! + c.outputHead, byteCount: c.outputCount)
        }
        c.output = large
        c.outputHead = 0
        c.outputLargeIndex = index
        return true
    }

    /// Returns a large output buffer once everything in it has been sent.
    func giveBackOutput(_ c: Connection) {
        guard c.outputLargeIndex >= 0, let pool = bufferPool else { return }
        pool.give(c.outputLargeIndex)
        c.outputLargeIndex = -1
        c.output = c.smallOutput
        c.outputHead = 0
    }
}
