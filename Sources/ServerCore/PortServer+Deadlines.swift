import CIOURing
#if canImport(Glibc)
import Glibc
#endif

/// Deadlines and lingering closes (protocols with a handler; echo has neither).
extension PortServer {
    /// How long a lingering close (`HandlerVerdict.lingeringClose`) reads and discards what
    /// the peer still sends before closing anyway.
    public static let lingerNs: Int64 = 2_000_000_000

    /// Posts a `deadlineKey` packet for every open connection whose deadline has passed; the
    /// worker that dequeues it runs the connection's strand, which checks the deadline again
    /// and closes (`CloseReason.timedOut`). Called by the maintenance thread every tick: one
    /// relaxed load per connection slot, nothing for echo.
    func expireDeadlines() {
        guard !serving.repliesWithInput, !draining.load(ordering: .relaxed) else { return }
        let now = CIOURing_now_ns()
        connections.forEachCreated { connection in
            // relaxed: see `Connection.deadline`.
            let deadline = connection.deadline.load(ordering: .relaxed)
            guard deadline != 0, deadline <= now, connection.isOpen.load(ordering: .relaxed),
                  // Not posted again while one waits (every worker may be blocked).
                  !connection.deadlinePosted.exchange(true, ordering: .relaxed) else { return }
            if (try? port.post(key: Self.deadlineKey, context: UInt64(connection.slot))) == nil {
                connection.deadlinePosted.store(false, ordering: .relaxed)
            }
        }
    }

    /// The strand's side of a deadline packet: closes the connection if its deadline is still
    /// passed (the handler may have moved it meanwhile, or the slot serves another connection).
    ///
    /// Not when this batch brought bytes: a request that arrived in time and waited in the
    /// queue (every worker busy) is handed to the handler, which sets the next deadline; if it
    /// does not, the next tick posts again.
    func checkDeadline(_ c: Connection, bytesArrived: Bool) {
        guard !bytesArrived || c.lingering else { return }
        // relaxed: see `Connection.deadline`.
        let deadline = c.deadline.load(ordering: .relaxed)
        guard deadline != 0, deadline <= CIOURing_now_ns() else { return }
        if c.closeReason == nil { c.closeReason = .timedOut }
        c.closing = true
    }

    /// Shuts down the sending side once everything owed has been sent, and starts discarding
    /// what arrives (`lingeringClose`), for at most `lingerNs`.
    func startLingering(_ c: Connection) {
        c.lingering = true
        c.readingPaused = false
        c.wantsLarge = false
        // What the handler left unread is dropped; receives reuse the whole buffer.
        c.buffered = 0
        if !c.receiving { c.head = 0 }
        shutdown(c.fd, Int32(SHUT_WR))
        let until = CIOURing_now_ns() &+ Self.lingerNs
        // relaxed: see `Connection.deadline`.
        let current = c.deadline.load(ordering: .relaxed)
        if current == 0 || current > until { c.deadline.store(until, ordering: .relaxed) }
    }
}
