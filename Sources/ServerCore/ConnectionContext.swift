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

    /// Runs `body`, which may block (a sleep, a disk read, a call to another server), inside
    /// the port's blocking scope: the worker stops counting against the concurrency limit and
    /// gives back the packets it has not started, so another worker serves meanwhile; the
    /// frames show it as blocked.
    public func blocking<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        worker?.enter(.blocked)
        defer { worker?.enter(.running) }
        return try server.port.blocking(body)
    }
}
