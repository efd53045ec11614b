import CIOURing
import EngineStats

/// What a handler may use while it runs: the connection's slot, the worker running it, and the
/// port's blocking scope. Valid only during the handler's call.
public struct ConnectionContext {
    /// unowned(unsafe): a handler runs only while the server serves (the server outlives every
    /// strand), and no reference counting per call.
    private unowned(unsafe) let server: PortServer
    private unowned(unsafe) let worker: Worker?

    /// The connection's slot: stable while it is open, reused by a later connection.
    public let slot: Int

    init(server: PortServer, worker: Worker?, slot: Int) {
        self.server = server
        self.worker = worker
        self.slot = slot
    }

    /// The index of the worker's counter slot (nil when the drain runs the strand).
    public var workerIndex: Int? { worker?.slot.index }

    /// Posts a packet to the port (IOCP's `PostQueuedCompletionStatus`): a worker dequeues it
    /// in FIFO order with every other packet and runs `ServerProtocol.posted(context)`. False
    /// when the port no longer takes packets (it is closing).
    @discardableResult
    public func post(_ context: UInt64) -> Bool {
        (try? server.port.post(key: PortServer.protocolKey, context: context)) != nil
    }

    // MARK: deadlines

    /// Closes the connection (`CloseReason.timedOut`) unless the handler moves or clears this
    /// deadline before `nanoseconds` have passed: a header timeout, an idle keep-alive timeout.
    /// Checked by the core's maintenance thread every 100 ms, so a connection closes up to
    /// 100 ms late; the close is served by a worker like any completion. One relaxed store.
    @inline(__always)
    public func setDeadline(in nanoseconds: Int64) {
        // relaxed: see `Connection.deadline`.
        server.connections[slot].deadline.store(max(1, CIOURing_now_ns() &+ nanoseconds), ordering: .relaxed)
    }

    /// Sets the deadline to `nanoseconds` after `now` (a `CIOURing_now_ns` reading the
    /// handler already took): no clock read.
    @inline(__always)
    public func setDeadline(in nanoseconds: Int64, from now: Int64) {
        server.connections[slot].deadline.store(max(1, now &+ nanoseconds), ordering: .relaxed)
    }

    /// No deadline: the connection stays open however long it is quiet.
    @inline(__always)
    public func clearDeadline() {
        server.connections[slot].deadline.store(0, ordering: .relaxed)
    }

    /// The core's monotonic clock, in ns (what deadlines are measured on).
    @inline(__always)
    public static func now() -> Int64 { CIOURing_now_ns() }

    // MARK: handler metrics (`ServerProtocol.metrics`, by index)
    // Kept in the running worker's own slot: a relaxed load and store, no lock, no shared line.
    // Nothing is counted while the drain runs a strand, or in an engine that does not count.

    /// Adds `amount` to counter `metric`.
    @inline(__always)
    public func count(_ metric: Int, by amount: UInt64 = 1) {
        guard let worker, worker.counts else { return }
        worker.slot.addHandler(at: server.handlerOffset(metric, .counter), amount)
    }

    /// Moves gauge `metric` up or down by `delta` (each worker keeps its share; the total is
    /// their sum, so a connection may go up on one worker and down on another). Like every
    /// handler metric it is not kept while the drain runs a strand: a gauge stays exact when
    /// raised and lowered within handler calls of a serving engine (work in progress around a
    /// blocking call, requests between their parse and their response).
    @inline(__always)
    public func adjust(_ metric: Int, by delta: Int) {
        guard let worker, worker.counts else { return }
        worker.slot.addHandler(at: server.handlerOffset(metric, .gauge), UInt64(bitPattern: Int64(delta)))
    }

    /// Counts one duration, in ns, in histogram `metric`.
    @inline(__always)
    public func record(_ metric: Int, nanoseconds: UInt64) {
        guard let worker, worker.counts else { return }
        worker.slot.recordHandler(at: server.handlerOffset(metric, .histogram), nanoseconds: nanoseconds)
    }

    /// Runs `body`, which may block (a sleep, a disk read, a call to another server), inside
    /// the port's blocking scope: the worker stops counting against the concurrency limit and
    /// gives back the packets it has not started, so another worker serves meanwhile; the
    /// frames show it as blocked.
    public func blocking<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        let figures = server.connections[slot].figures
        let saved = figures.beginBlocking(now: UInt64(CIOURing_now_ns()))
        // A scope inside another leaves the worker blocked until the outer one ends.
        let nested = saved.status & 0xFF == ConnectionState.blocked.rawValue
        if !nested { worker?.enter(.blocked) }
        defer {
            figures.endBlocking(restoring: saved)
            if !nested { worker?.enter(.running) }
        }
        return try server.port.blocking(body)
    }

    /// Adds `amount` to the connection's own figure (`ServerProtocol.connectionFigure`:
    /// requests for HTTP), shown in the connections view. One relaxed load and store on the
    /// connection's own words; not kept in an engine that does not count.
    @inline(__always)
    public func countForConnection(by amount: UInt64 = 1) {
        guard worker?.counts ?? true else { return }
        server.connections[slot].figures.add(ConnectionFigures.Word.handlerFigure, amount)
    }
}

extension PortServer {
    /// Where handler metric `index` lives in a worker's handler words; traps on a metric that
    /// was not declared, or was declared as another kind (a programming error, like an index
    /// out of range).
    @inline(__always)
    func handlerOffset(_ index: Int, _ kind: HandlerMetric.Kind) -> Int {
        precondition(index >= 0 && index < handlerTable.count && handlerTable[index].kind == kind,
                     "handler metric \(index) is not a declared \(kind)")
        return handlerTable[index].offset
    }
}
