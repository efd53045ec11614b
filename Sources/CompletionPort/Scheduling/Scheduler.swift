import CIOURing
import Synchronization

/// The port's packet FIFO, concurrency gate and waiter stack: the IOCP scheduling rules.
///
/// Rules (see DESIGN.md, "IOCP semantics"):
/// - Packets leave FIFO, each exactly once — or, given back unstarted by a `PacketBatch`, go
///   back to the head in order and leave once more.
/// - At most `concurrency` threads *run*: a thread counts from the dequeue that returned it a
///   packet until it calls dequeue again (or enters `blocking {}`). Surplus threads stay parked
///   even with packets queued.
/// - Parked threads are released LIFO. A released thread gets its packet handed over directly
///   (no barging), already counted as running.
/// - Leader/follower harvesting: one thread at a time (the leader) waits in the kernel and moves
///   completions into the FIFO. The first thread to find nothing queued leads; when it leaves
///   the kernel with packets, it keeps one and hands the rest to parked threads, top first, as
///   the gate allows. Whenever nobody leads, the gate is open and threads are parked, the top
///   parked thread is promoted to leader, so completions are never left in the kernel.
///
/// The state lives behind one short critical section (the Windows kernel protects a KQUEUE with
/// a spin lock for the same reason); futex wakes are issued after it is released. Queue depth,
/// running and parked counts are mirrored into atomics for lock-free observation.
final class Scheduler: @unchecked Sendable {
    // @unchecked: the state lives behind `PortLock`; the gauges are atomics; the rest are `let`s.
    struct State: ~Copyable {
        var queue = PacketQueue()
        var running = 0
        var concurrency: Int
        /// Parked threads; the last is the most recently parked and is released first.
        var waiters: [Waiter] = []
        /// A thread is harvesting (waiting in the kernel, or about to).
        var leader = false
        var closed = false
        /// CLOCK_MONOTONIC of the last harvest (by a leader or a poll).
        var lastHarvestNs: Int64 = 0
        /// The leader took the lead while the gate was closed: it may not run, it only moves
        /// completions from the kernel into the FIFO (see `gatedHarvestPauseNs`).
        var gatedLeader = false
        /// The gated leader while it pauses before harvesting (woken at once when the gate opens).
        var pausingLeader: Waiter?

        var gateOpen: Bool { running < concurrency || closed }

        /// Puts the packets of `batch` that its thread never started back at the head of the
        /// FIFO, in order (copied out before the batch's storage is written again). Returns
        /// whether there were any.
        mutating func returnUnstarted(of batch: PacketBatch?) -> Bool {
            guard let batch, batch.unstarted > 0 else { return false }
            queue.prepend(batch.takeUnstarted())
            return true
        }
    }

    enum Step {
        case got(Int)
        case lead
        /// Take a non-blocking look in the kernel first (see `pollIntervalNs`), then decide.
        case poll
        /// Lead while the gate is closed: harvest (paced) for the threads that will run.
        case gatedLead
        case park
        case closed
        case timedOut
    }

    /// How long packets already queued may keep the kernel's completions out of the FIFO.
    /// Nobody leads while the queue is non-empty (threads take packets instead of waiting), so a
    /// stream of packets that each queue the next — epoll sends that complete inline, posted
    /// packets that post more — would leave every other completion in the kernel for as long as
    /// it lasts. A thread about to take packets looks in the kernel first (without waiting) when
    /// nobody has for this long, and appends what it finds behind them: FIFO order across both.
    static let pollIntervalNs: Int64 = 200_000

    /// A thread that may not run (the gate is closed) still leads while packets are queued — the
    /// pool is saturated: completions enter the FIFO when the kernel completes them, as on
    /// Windows, instead of waiting in the kernel until a thread may run, so queue depth and queue
    /// wait are true exactly when the queue is long. With nothing queued it parks as before (the
    /// running threads lead when they come back: one system call per batch, no hand-off).
    /// It harvests at most once per this interval (the pause before each harvest), so while the
    /// pool is saturated it costs a few thousand system calls a second, not one per completion.
    static let gatedHarvestPauseNs: Int64 = 200_000

    let state: PortLock<State>
    let operations: OperationTable
    /// Set once, right after init, by the port that owns both.
    nonisolated(unsafe) var driver: (any BackendDriver)!

    // Mirrors of the locked state for lock-free readers. Written only under the lock, so one
    // writer at a time; relaxed: each is a standalone gauge with no cross-field meaning.
    let queueDepthGauge = Atomic<Int>(0)
    let runningGauge = Atomic<Int>(0)
    let parkedGauge = Atomic<Int>(0)
    let leaderGauge = Atomic<Bool>(false)
    let concurrencyGauge = Atomic<Int>(0)
    /// `PacketQueue.oldestQueuedAtNs`: when the oldest packet still queued entered the FIFO.
    let oldestQueuedGauge = Atomic<Int64>(0)

    init(concurrency: Int, operations: OperationTable) {
        var initial = State(concurrency: concurrency)
        initial.waiters.reserveCapacity(256)
        state = PortLock(initial)
        self.operations = operations
        concurrencyGauge.store(concurrency, ordering: .relaxed)
    }

    // MARK: dequeue

    /// Dequeues up to `out.count` packets. `timeoutNs` < 0 waits forever.
    func dequeue(into out: UnsafeMutableBufferPointer<Completion>, timeoutNs: Int64) -> BatchDequeueResult {
        dequeue(into: out, timeoutNs: timeoutNs, me: ThreadRegistry.waiter(for: self))
    }

    /// Dequeues into `batch`; its packets not started yet go back to the FIFO first.
    func dequeue(into batch: PacketBatch, timeoutNs: Int64) -> BatchDequeueResult {
        let me = ThreadRegistry.waiter(for: self)
        if me.batch !== batch {
            // Another batch than last time: the old one's unstarted packets go back first.
            if let previous = me.batch { giveBack(previous) }
            me.adopt(batch)
        }
        let result = dequeue(into: batch.storage, timeoutNs: timeoutNs, me: me)
        if case .completions(let count) = result { batch.filled(count) } else { batch.filled(0) }
        return result
    }

    private func dequeue(into buffer: UnsafeMutableBufferPointer<Completion>, timeoutNs: Int64, me: Waiter) -> BatchDequeueResult {
        // The buffer belongs to the calling thread for the whole call. One packet only right
        // after this thread gave its batch back to block (see `Waiter.gaveBackOnBlocking`).
        nonisolated(unsafe) let out = me.gaveBackOnBlocking ? UnsafeMutableBufferPointer(rebasing: buffer[0..<1]) : buffer
        me.gaveBackOnBlocking = false
        let deadline: Int64 = timeoutNs < 0 ? -1 : CIOURing_now_ns() &+ timeoutNs
        var step = state.withLock { s -> Step in
            // Packets of this thread's batch that it never started go back in front (before
            // `out`, which may be the batch's storage, is written).
            _ = s.returnUnstarted(of: me.batch)
            // Re-entering dequeue: this thread stops counting against the limit.
            if me.isRunning {
                s.running -= 1
                me.isRunning = false
            }
            return next(&s, me, out)
        }
        while true {
            wakeChosen(me)
            switch step {
            case .got(let n): return .completions(n)
            case .closed: return .portClosed
            case .timedOut: return .timeout
            case .lead: step = lead(me, out, deadline: deadline)
            case .poll: step = poll(me, out)
            case .gatedLead:
                step = gatedHarvest(me, out, deadline: deadline)
            case .park: step = parked(me, out, deadline: deadline)
            }
        }
    }

    /// The leader's turn: wait in the kernel, move what arrived into the FIFO, decide again.
    private func lead(_ me: Waiter, _ out: UnsafeMutableBufferPointer<Completion>, deadline: Int64) -> Step {
        nonisolated(unsafe) let out = out
        var timeout: Int64 = -1
        if deadline >= 0 { timeout = max(0, deadline - CIOURing_now_ns()) }
        let harvested = driver.harvest(into: me.harvest, timeoutNs: timeout)
        let now = CIOURing_now_ns()
        return state.withLock { s -> Step in
            s.leader = false
            s.gatedLeader = false
            s.lastHarvestNs = now
            for i in 0..<harvested {
                me.harvest[i].queuedAtNs = now
                s.queue.append(me.harvest[i])
            }
            // Out of time and nothing to take: report the timeout (a drained, closed port
            // still reports portClosed through `next`).
            let expired = deadline >= 0 && CIOURing_now_ns() >= deadline
            let canTake = !s.queue.isEmpty && s.gateOpen
            let drained = s.closed && s.queue.isEmpty && operations.inflight == 0
            if expired && !canTake && !drained {
                dispatch(&s, me)
                return .timedOut
            }
            return next(&s, me, out)
        }
    }

    /// The gated leader's pause (`gatedHarvestPauseNs` since the last harvest), parked on its own
    /// futex word: `dispatch` wakes it as soon as the gate opens, so a thread that may run again
    /// never waits for the pause.
    /// The gated leader's turn: pause, then — unless the gate opened meanwhile — look in the
    /// kernel without waiting (a leader blocked in the kernel would make every running worker
    /// flush its own submissions), then decide again.
    private func gatedHarvest(_ me: Waiter, _ out: UnsafeMutableBufferPointer<Completion>, deadline: Int64) -> Step {
        nonisolated(unsafe) let out = out
        pauseBeforeGatedHarvest(me, deadline: deadline)
        let stillGated = state.withLock { s -> Bool in
            guard s.gateOpen || s.closed else { return true }
            // The gate opened (or the port closed) while pausing: decide as any thread would.
            s.leader = false
            s.gatedLeader = false
            return false
        }
        if !stillGated { return state.withLock { s in next(&s, me, out) } }
        let harvested = driver.harvest(into: me.harvest, timeoutNs: 0)
        let now = CIOURing_now_ns()
        return state.withLock { s -> Step in
            s.leader = false
            s.gatedLeader = false
            s.lastHarvestNs = now
            for i in 0..<harvested {
                me.harvest[i].queuedAtNs = now
                s.queue.append(me.harvest[i])
            }
            if deadline >= 0 && now >= deadline && !(!s.queue.isEmpty && s.gateOpen) {
                dispatch(&s, me)
                return .timedOut
            }
            return next(&s, me, out)
        }
    }

    private func pauseBeforeGatedHarvest(_ me: Waiter, deadline: Int64) {
        let until = state.withLock { s -> Int64? in
            let until = s.lastHarvestNs + Self.gatedHarvestPauseNs
            guard !s.gateOpen, !s.closed, CIOURing_now_ns() < until else { return nil }
            CIOURing_futex_word_store(me.word, 0)
            s.pausingLeader = me
            return deadline >= 0 ? min(until, deadline) : until
        }
        guard let until else { return }
        _ = me.park(deadline: until)
        state.withLock { s in
            if s.pausingLeader === me { s.pausingLeader = nil }
        }
    }

    /// A look in the kernel without waiting, while packets are queued (`pollIntervalNs`).
    private func poll(_ me: Waiter, _ out: UnsafeMutableBufferPointer<Completion>) -> Step {
        nonisolated(unsafe) let out = out
        let harvested = driver.harvest(into: me.harvest, timeoutNs: 0)
        let now = CIOURing_now_ns()
        return state.withLock { s -> Step in
            s.leader = false
            s.lastHarvestNs = now
            for i in 0..<harvested {
                me.harvest[i].queuedAtNs = now
                s.queue.append(me.harvest[i])
            }
            return next(&s, me, out)
        }
    }

    /// Waits parked until chosen or until the deadline.
    private func parked(_ me: Waiter, _ out: UnsafeMutableBufferPointer<Completion>, deadline: Int64) -> Step {
        nonisolated(unsafe) let out = out
        if !me.park(deadline: deadline) {
            let stillParked = state.withLock { s -> Bool in
                guard me.isParked else { return false }  // chosen while timing out
                if let index = s.waiters.lastIndex(where: { $0 === me }) {
                    s.waiters.remove(at: index)
                }
                me.isParked = false
                publish(&s)
                return true
            }
            if stillParked { return .timedOut }
        }
        switch me.reason {
        case .packet:
            out[0] = me.mailbox
            guard out.count > 1 else { return .got(1) }
            // Already running: take more of the queue for the batch, without the gate.
            return state.withLock { s -> Step in
                var n = 1
                while n < out.count && !s.queue.isEmpty {
                    out[n] = s.queue.removeFirst()
                    n += 1
                }
                publish(&s)
                return .got(n)
            }
        case .lead: return state.withLock { $0.gatedLeader } ? .gatedLead : .lead
        case .closed: return .closed
        case .none: return .timedOut
        }
    }

    /// Decides what the calling thread does next. Under the lock.
    private func next(_ s: inout State, _ me: Waiter, _ out: UnsafeMutableBufferPointer<Completion>) -> Step {
        defer { publish(&s) }
        if !s.queue.isEmpty && s.gateOpen {
            if !s.leader && !s.closed && CIOURing_now_ns() - s.lastHarvestNs >= Self.pollIntervalNs {
                s.leader = true
                return .poll
            }
            var n = 0
            while n < out.count && !s.queue.isEmpty {
                out[n] = s.queue.removeFirst()
                n += 1
            }
            s.running += 1
            me.isRunning = true
            dispatch(&s, me)
            return .got(n)
        }
        if s.closed && s.queue.isEmpty && operations.inflight == 0 {
            dispatch(&s, me)
            return .closed
        }
        if !s.leader && s.gateOpen {
            s.leader = true
            return .lead
        }
        if !s.leader && !s.closed && !s.queue.isEmpty {
            s.leader = true
            s.gatedLeader = true
            return .gatedLead
        }
        if let pausing = s.pausingLeader, s.gateOpen {
            // The gate opened for the leader that pauses: it harvests now, this thread waits.
            s.pausingLeader = nil
            pausing.markChosen()
            me.pendingWakes.append(pausing)
        }
        me.isParked = true
        me.reason = .none
        // Not yet chosen. Under the lock, so a waker cannot have chosen us already.
        CIOURing_futex_word_store(me.word, 0)
        s.waiters.append(me)
        return .park
    }

    /// Hands queued packets to parked threads (LIFO) while the gate allows, promotes a leader
    /// when nobody harvests, and wakes everyone once the port is closed and drained. Chosen
    /// waiters are collected in `caller.pendingWakes` and woken by `wakeChosen` after unlock.
    func dispatch(_ s: inout State, _ caller: Waiter) {
        if let pausing = s.pausingLeader, s.gateOpen || s.closed {
            s.pausingLeader = nil
            pausing.markChosen()
            if pausing !== caller { caller.pendingWakes.append(pausing) }
        }
        while !s.queue.isEmpty && s.gateOpen, let top = s.waiters.popLast() {
            top.isParked = false
            top.mailbox = s.queue.removeFirst()
            top.reason = .packet
            s.running += 1
            top.isRunning = true
            choose(top, caller)
        }
        let drained = s.closed && s.queue.isEmpty && operations.inflight == 0
        if s.queue.isEmpty && !s.leader && s.gateOpen && !drained, let top = s.waiters.popLast() {
            top.isParked = false
            top.reason = .lead
            s.leader = true
            choose(top, caller)
        }
        // Nobody harvests while the gate is closed: a parked thread leads (gated, see
        // `gatedHarvestPauseNs`) so completions keep entering the FIFO.
        if !s.leader && !s.gateOpen && !s.closed && !s.queue.isEmpty, let top = s.waiters.popLast() {
            top.isParked = false
            top.reason = .lead
            s.leader = true
            s.gatedLeader = true
            choose(top, caller)
        }
        if drained && !s.leader {
            while let top = s.waiters.popLast() {
                top.isParked = false
                top.reason = .closed
                choose(top, caller)
            }
        }
        publish(&s)
    }

    private func choose(_ waiter: Waiter, _ caller: Waiter) {
        waiter.markChosen()
        caller.pendingWakes.append(waiter)
    }

    /// Issues the futex wakes collected by `dispatch`. Outside the lock.
    func wakeChosen(_ caller: Waiter) {
        guard !caller.pendingWakes.isEmpty else { return }
        for waiter in caller.pendingWakes { waiter.wake() }
        caller.pendingWakes.removeAll(keepingCapacity: true)
    }

    private func publish(_ s: inout State) {
        // relaxed: standalone gauges (see the property comment).
        queueDepthGauge.store(s.queue.count, ordering: .relaxed)
        oldestQueuedGauge.store(s.queue.oldestQueuedAtNs, ordering: .relaxed)
        runningGauge.store(s.running, ordering: .relaxed)
        // A gated leader waits like a parked thread: it may not run.
        parkedGauge.store(s.waiters.count + (s.gatedLeader ? 1 : 0), ordering: .relaxed)
        leaderGauge.store(s.leader, ordering: .relaxed)
    }

    // MARK: packets from outside dequeue

    /// Appends packets (posted, or completed outside the leader) and releases threads for them.
    /// Never refused: a completion of an operation already started is delivered even while
    /// the port is closing (that is how in-flight operations drain).
    func deliver(_ packets: UnsafeBufferPointer<Completion>) {
        let me = ThreadRegistry.waiter(for: self)
        let now = CIOURing_now_ns()
        let wakeLeader = state.withLock { s -> Bool in
            for var packet in packets {
                packet.queuedAtNs = now
                s.queue.append(packet)
            }
            dispatch(&s, me)
            return !s.queue.isEmpty && s.leader && s.gateOpen
        }
        wakeChosen(me)
        if wakeLeader { driver.wakeLeader() }
    }

    /// Appends one posted packet unless the port is closed.
    func post(_ packet: Completion) throws(PortError) {
        let me = ThreadRegistry.waiter(for: self)
        var stamped = packet
        stamped.queuedAtNs = CIOURing_now_ns()
        let wakeLeader = try state.withLock { s throws(PortError) -> Bool in
            guard !s.closed else { throw PortError.portClosed }
            s.queue.append(stamped)
            dispatch(&s, me)
            return !s.queue.isEmpty && s.leader && s.gateOpen
        }
        wakeChosen(me)
        if wakeLeader { driver.wakeLeader() }
    }

    /// See `CompletionPort.harvestIfNobodyLeads`. The caller leads for one non-blocking harvest.
    func harvestIfNobodyLeads() {
        let me = ThreadRegistry.waiter(for: self)
        let leading = state.withLock { s -> Bool in
            guard !s.leader, !s.closed else { return false }
            s.leader = true
            return true
        }
        guard leading else { return }
        let harvested = driver.harvest(into: me.harvest, timeoutNs: 0)
        let now = CIOURing_now_ns()
        let wakeLeader = state.withLock { s -> Bool in
            s.leader = false
            s.lastHarvestNs = now
            for i in 0..<harvested {
                me.harvest[i].queuedAtNs = now
                s.queue.append(me.harvest[i])
            }
            dispatch(&s, me)
            return !s.queue.isEmpty && s.leader && s.gateOpen
        }
        wakeChosen(me)
        if wakeLeader { driver.wakeLeader() }
    }

    // MARK: gate control

    func setConcurrency(_ limit: Int) {
        let me = ThreadRegistry.waiter(for: self)
        let wakeLeader = state.withLock { s -> Bool in
            s.concurrency = limit
            concurrencyGauge.store(limit, ordering: .relaxed)
            dispatch(&s, me)
            return !s.queue.isEmpty && s.leader && s.gateOpen
        }
        wakeChosen(me)
        if wakeLeader { driver.wakeLeader() }
    }

    var concurrency: Int { concurrencyGauge.load(ordering: .relaxed) }

    /// Gives the unstarted packets of the calling thread's batch back to the head of the FIFO
    /// (see `PacketBatch`) and releases threads for them as the gate allows.
    func giveBack(_ batch: PacketBatch) {
        guard batch.unstarted > 0 else { return }
        let me = ThreadRegistry.waiter(for: self)
        // Only this thread's batch of this port holds packets that belong in this FIFO.
        guard me.batch === batch else { return }
        let wakeLeader = state.withLock { s -> Bool in
            _ = s.returnUnstarted(of: batch)
            dispatch(&s, me)
            return !s.queue.isEmpty && s.leader && s.gateOpen
        }
        wakeChosen(me)
        if wakeLeader { driver.wakeLeader() }
    }

    /// The calling thread stops counting as running, if it was, and gives back the packets of
    /// its batch that it has not started. Returns whether it was running.
    func enterBlocking() -> Bool {
        guard let me = ThreadRegistry.existingWaiter(for: self), me.isRunning else { return false }
        let wakeLeader = state.withLock { s -> Bool in
            if s.returnUnstarted(of: me.batch) { me.gaveBackOnBlocking = true }
            s.running -= 1
            me.isRunning = false
            dispatch(&s, me)
            return !s.queue.isEmpty && s.leader && s.gateOpen
        }
        wakeChosen(me)
        if wakeLeader { driver.wakeLeader() }
        return true
    }

    /// The calling thread counts again; the running count may briefly exceed the limit.
    func leaveBlocking() {
        guard let me = ThreadRegistry.existingWaiter(for: self) else { return }
        state.withLock { s in
            s.running += 1
            me.isRunning = true
            publish(&s)
        }
    }

    /// Whether the calling thread currently counts as running on this port.
    var callerIsRunning: Bool {
        ThreadRegistry.existingWaiter(for: self)?.isRunning ?? false
    }

    /// A thread that had a waiter here exited.
    func threadExited(_ waiter: Waiter) {
        let wakeLeader = state.withLock { s -> Bool in
            // What it dequeued and never started is not lost with it.
            _ = s.returnUnstarted(of: waiter.batch)
            if waiter.isRunning {
                s.running -= 1
                waiter.isRunning = false
            }
            dispatch(&s, waiter)
            return !s.queue.isEmpty && s.leader && s.gateOpen
        }
        wakeChosen(waiter)
        if wakeLeader { driver?.wakeLeader() }
    }

    // MARK: close

    /// Marks the port closed. Returns false if it already was.
    func close() -> Bool {
        let me = ThreadRegistry.waiter(for: self)
        let first = state.withLock { s -> Bool in
            guard !s.closed else { return false }
            s.closed = true
            dispatch(&s, me)
            return true
        }
        wakeChosen(me)
        return first
    }

    /// Re-evaluates the drained condition after the in-flight count fell (close in progress).
    func recheck() {
        let me = ThreadRegistry.waiter(for: self)
        let wakeLeader = state.withLock { s -> Bool in
            dispatch(&s, me)
            return s.leader
        }
        wakeChosen(me)
        if wakeLeader { driver.wakeLeader() }
    }

    var isClosed: Bool { state.withLock { $0.closed } }
}
