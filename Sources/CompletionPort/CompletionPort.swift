import CIOURing
#if canImport(Glibc)
import Glibc
#endif

/// An I/O completion port: the Windows IOCP model on Linux, over io_uring or epoll.
///
/// Threads call `dequeue` to receive completion packets: results of overlapped operations
/// (`acceptMultishot`, `receive`, `send`) on associated sockets, and packets posted with
/// `post`. Packets leave in FIFO order and each is started exactly once (one given back by a
/// `PacketBatch` is queued again at the head, never duplicated). At most `concurrency` threads run at
/// a time (a thread runs from a dequeue that gave it a packet until its next dequeue); parked
/// threads are released most-recent-first; a running thread that must block wraps the wait in
/// `blocking {}` so another thread may run meanwhile.
///
/// | Windows                                   | here                              |
/// |-------------------------------------------|-----------------------------------|
/// | `CreateIoCompletionPort(INVALID_HANDLE…)` | `CompletionPort(concurrency:)`    |
/// | `CreateIoCompletionPort(socket, port, k)` | `associate(_:key:)`               |
/// | `AcceptEx` (served by the port)           | `acceptMultishot(on:context:)`    |
/// | `WSARecv` / `WSASend` with `OVERLAPPED`   | `receive` / `send` with `context` |
/// | (RIO's registered buffers, roughly)       | `receiveMultishot(on:context:)`   |
/// | `GetQueuedCompletionStatus(Ex)`           | `dequeue(timeout:)` / `dequeue(into:timeout:)` |
/// | `PostQueuedCompletionStatus`              | `post(bytes:key:context:)`        |
/// | `CancelIoEx(socket, overlapped)`          | `cancel(_:on:)`                   |
/// | `closesocket` (aborts pending I/O)        | `close(handle:)`                  |
/// | `CloseHandle(port)`                       | `close()`                         |
///
/// Every method may be called from any thread.
public final class CompletionPort: Sendable {
    /// The backend in use.
    public let backend: PortBackend
    /// Why `.auto` did not choose io_uring, when it did not.
    public let fallbackReason: SystemCallError?

    let scheduler: Scheduler
    let operations: OperationTable
    private let driver: any BackendDriver

    /// Creates a port.
    ///
    /// - Parameters:
    ///   - concurrency: how many threads may run at once; 0 means one per online CPU.
    ///   - backend: `.auto` uses io_uring when the kernel allows it, and epoll otherwise
    ///     (`fallbackReason` says why).
    ///   - maxOperations: how many operations may be in flight at once.
    ///   - ringEntries: io_uring submission queue size (the completion queue is 4× larger).
    ///   - providedBuffers: on io_uring, how many buffers multishot receives may pick from (a
    ///     power of two ≤ 32768; 0: none). Only a kernel that serves multishot receives (6.0+)
    ///     gets them; `receivesMultishot` says whether this port has them.
    ///   - providedBufferSize: the size of each.
    /// - Throws: `PortError.backendUnavailable` when `.ioURing` is forced and io_uring_setup
    ///   fails (ENOSYS: no kernel support; EPERM: `kernel.io_uring_disabled` or seccomp);
    ///   `PortError.system` when epoll cannot be created.
    public init(concurrency: Int = 0, backend choice: BackendChoice = .auto,
                maxOperations: Int = 1 << 16, ringEntries: UInt32 = 4096,
                providedBuffers: Int = 0, providedBufferSize: Int = 1024) throws(PortError) {
        guard concurrency >= 0 else { throw PortError.invalidArgument("concurrency must be >= 0") }
        guard maxOperations > 0, maxOperations <= Int(UInt32.max - 1) else {
            throw PortError.invalidArgument("maxOperations out of range")
        }
        guard providedBuffers == 0 || (providedBuffers <= 32768 && providedBuffers & (providedBuffers - 1) == 0
                                       && providedBufferSize > 0 && providedBufferSize <= 1 << 20) else {
            throw PortError.invalidArgument("providedBuffers must be a power of two up to 32768, of 1 byte to 1 MiB")
        }
        operations = OperationTable(capacity: maxOperations)
        scheduler = Scheduler(concurrency: concurrency == 0 ? Self.onlineCPUs : concurrency,
                              operations: operations)
        let limit = Self.descriptorLimit
        var reason: SystemCallError?
        var chosen: (any BackendDriver)?
        if choice != .epoll {
            do {
                chosen = try URingBackend(entries: ringEntries, operations: operations,
                                          scheduler: scheduler, descriptorLimit: limit,
                                          providedBuffers: providedBuffers, providedBufferSize: providedBufferSize)
            } catch {
                guard choice == .auto, case .backendUnavailable(_, let cause) = error else { throw error }
                reason = cause
            }
        }
        if chosen == nil {
            chosen = try EpollBackend(operations: operations, scheduler: scheduler, descriptorLimit: limit)
        }
        driver = chosen!
        backend = driver.kind
        fallbackReason = reason
        scheduler.driver = driver
    }

    deinit {
        _ = scheduler.close()
        driver.shutdown()
    }

    /// Online CPUs (`sysconf(_SC_NPROCESSORS_ONLN)`), at least 1.
    /// CPUs this process may run on: its affinity mask (`taskset`), else the online CPUs.
    public static var onlineCPUs: Int {
        let allowed = Int(CIOURing_affinity_cpus())
        return allowed > 0 ? allowed : max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }

    static var descriptorLimit: Int {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1 << 16 }
        let hard = limit.rlim_max == rlim_t.max ? 1 << 20 : Int(limit.rlim_max)
        return min(max(hard, 1024), 1 << 24)
    }

    // MARK: handles and operations

    /// Associates a socket with the port, with its completion key (per-handle data).
    /// The descriptor is made non-blocking.
    /// - Throws: `PortError.notAssociated` for a descriptor out of range; `.system` if the
    ///   kernel refuses it.
    public func associate(_ fd: CInt, key: UInt64) throws(PortError) {
        try driver.associate(fd, key: key)
    }

    /// Arms a multishot accept on a listening socket: one completion per accepted connection
    /// (`acceptedDescriptor`, non-blocking and close-on-exec), each with `hasMore` while it
    /// stays armed. An error (EMFILE, ECANCELED, …) ends it: that completion has no `hasMore`.
    public func acceptMultishot(on fd: CInt, context: UInt64) throws(PortError) {
        try checkOpen()
        _ = try driver.submit(.accept, fd: fd, buffer: nil, length: 0, context: context)
    }

    /// Starts an overlapped receive into `buffer`. Returns a token for `cancel(_:on:)`.
    ///
    /// The completion's `bytes` says how many bytes arrived; 0 means the peer closed its side.
    /// - Important: `buffer` must stay valid and untouched until the completion is dequeued.
    @discardableResult
    public func receive(on fd: CInt, into buffer: UnsafeMutableRawBufferPointer, context: UInt64) throws(PortError) -> OperationToken {
        guard let base = buffer.baseAddress, buffer.count > 0 else {
            throw PortError.invalidArgument("empty receive buffer")
        }
        try checkOpen()
        return OperationToken(userData: try driver.submit(.receive, fd: fd, buffer: base, length: buffer.count, context: context))
    }

    /// Whether the ring runs with cooperative task running (io_uring on Linux 5.19+): the kernel
    /// finishes a request in its submitting thread at that thread's next return from the kernel
    /// rather than interrupting it. False on epoll and on older kernels.
    public var cooperativeTaskRunning: Bool { driver.cooperativeTaskRunning }

    /// Whether `receiveMultishot` is available: io_uring with provided buffers (see `init`).
    public var receivesMultishot: Bool { driver.providedBuffers != nil }

    /// Starts a multishot receive: one `.receive` completion per arrival of bytes, each in a
    /// buffer the kernel picked (`Completion.bufferID`, read with `providedBuffer(_:)`, handed
    /// back with `recycle(providedBuffer:)`), numbered by `Completion.sequence`, with `hasMore`
    /// while it stays armed. The last completion has no `hasMore`: the peer closed (0 bytes),
    /// an error, ECANCELED (`cancel`, `close(handle:)`), ENOBUFS (no provided buffer was free),
    /// or — rarely — bytes after which the kernel stopped it (start another).
    /// - Throws: `PortError.invalidArgument` when `receivesMultishot` is false.
    @discardableResult
    public func receiveMultishot(on fd: CInt, context: UInt64) throws(PortError) -> OperationToken {
        guard receivesMultishot else {
            throw PortError.invalidArgument("this port has no provided buffers for multishot receives")
        }
        try checkOpen()
        return OperationToken(userData: try driver.submit(.receive, fd: fd, buffer: nil, length: 0, context: context))
    }

    /// The memory of provided buffer `id` (from `Completion.bufferID`): its first
    /// `Completion.bytes` bytes are the ones received.
    @inline(__always)
    public func providedBuffer(_ id: Int32) -> UnsafeMutableRawBufferPointer {
        let buffers = driver.providedBuffers!
        return UnsafeMutableRawBufferPointer(start: buffers.buffer(Int(id)), count: buffers.size)
    }

    /// Hands provided buffer `id` back to the kernel, for another multishot arrival. Once per
    /// completion that named it.
    public func recycle(providedBuffer id: Int32) {
        driver.providedBuffers?.recycle(Int(id))
    }

    /// Starts an overlapped send of `buffer`.
    ///
    /// The completion's `bytes` says how many bytes were sent, possibly fewer than asked:
    /// resubmit the rest, as with a partial `WSASend`.
    /// - Important: `buffer` must stay valid and untouched until the completion is dequeued.
    @discardableResult
    public func send(on fd: CInt, from buffer: UnsafeRawBufferPointer, context: UInt64) throws(PortError) -> OperationToken {
        guard let base = buffer.baseAddress, buffer.count > 0 else {
            throw PortError.invalidArgument("empty send buffer")
        }
        try checkOpen()
        return OperationToken(userData: try driver.submit(.send, fd: fd, buffer: UnsafeMutableRawPointer(mutating: base),
                                                          length: buffer.count, context: context))
    }

    /// Cancels one receive or send started on `fd` with the token it returned, as
    /// `CancelIoEx` does: if it is still in flight it completes with ECANCELED (moving no
    /// bytes); if it already finished, its completion stands and nothing happens. The buffer
    /// stays the caller's until that completion is dequeued.
    public func cancel(_ token: OperationToken, on fd: CInt) {
        guard token != .none, !scheduler.isClosed else { return }
        driver.cancel(token.userData, fd: fd)
    }

    /// Closes an associated socket: every operation in flight on it completes with ECANCELED,
    /// then the descriptor is closed (as `closesocket` aborts pending overlapped I/O).
    /// No other thread may start an operation on `fd` concurrently.
    public func close(handle fd: CInt) throws(PortError) {
        try driver.closeHandle(fd)
    }

    // MARK: packets

    /// Dequeues one packet, waiting up to `timeout` (nil: forever).
    /// The corresponding Windows call is `GetQueuedCompletionStatus`.
    public func dequeue(timeout: Duration? = nil) -> DequeueResult {
        var packet = Completion.empty
        let result = withUnsafeMutablePointer(to: &packet) { pointer in
            scheduler.dequeue(into: UnsafeMutableBufferPointer(start: pointer, count: 1),
                              timeoutNs: Self.nanoseconds(timeout))
        }
        switch result {
        case .completions: return .completion(packet)
        case .timeout: return .timeout
        case .portClosed: return .portClosed
        }
    }

    /// Dequeues up to `buffer.count` packets in one call, waiting up to `timeout` (nil: forever)
    /// for the first. The corresponding Windows call is `GetQueuedCompletionStatusEx`. The
    /// port cannot know which of them the caller has started, so none is ever given back (use
    /// a `PacketBatch` for that); the unstarted packets of the thread's `PacketBatch`, if it
    /// has one, go back first.
    public func dequeue(into buffer: UnsafeMutableBufferPointer<Completion>, timeout: Duration? = nil) -> BatchDequeueResult {
        guard buffer.count > 0 else { return .timeout }
        return scheduler.dequeue(into: buffer, timeoutNs: Self.nanoseconds(timeout))
    }

    /// Dequeues up to `batch.capacity` packets into `batch`, waiting up to `timeout` (nil:
    /// forever) for the first; start them one by one with `batch.next()`. The batch form of
    /// `GetQueuedCompletionStatusEx` that keeps packets visible: what the thread has not started
    /// goes back to the head of the FIFO when it blocks (`blocking {}`), gives it back
    /// (`giveBack(_:)`) or dequeues again — see `PacketBatch`.
    public func dequeue(into batch: PacketBatch, timeout: Duration? = nil) -> BatchDequeueResult {
        scheduler.dequeue(into: batch, timeoutNs: Self.nanoseconds(timeout))
    }

    /// Puts the packets of `batch` that the calling thread has not started back at the head of
    /// the FIFO, in their order, and releases waiting threads for them as the concurrency limit
    /// allows. For a thread whose packet ran long (`blocking {}` does this by itself). The batch
    /// ends after the packet being served. Only the thread that dequeued into `batch`, on this
    /// port, can give it back: for any other caller this does nothing.
    public func giveBack(_ batch: PacketBatch) {
        scheduler.giveBack(batch)
    }

    /// Queues a packet that a thread will dequeue as `.posted`, in FIFO order with I/O
    /// completions. The corresponding Windows call is `PostQueuedCompletionStatus`.
    /// - Throws: `PortError.portClosed` after `close()`.
    public func post(bytes: Int32 = 0, key: UInt64, context: UInt64 = 0) throws(PortError) {
        try scheduler.post(Completion(operation: .posted, result: bytes, key: key, context: context))
    }

    // MARK: concurrency

    /// How many threads may run at once. Setting it takes effect at once: raising it releases
    /// parked threads for queued packets; lowering it lets running threads finish their packet.
    public var concurrency: Int { scheduler.concurrency }

    /// Moves what the kernel has completed into the FIFO when no thread is there to do it —
    /// every worker blocked, say — without waiting. Completions then count as queued (and their
    /// queue wait starts) when they happen, as on Windows, instead of when a worker comes back.
    /// For a monitor's periodic tick; a no-op while a thread leads or the port is closed.
    public func harvestIfNobodyLeads() {
        scheduler.harvestIfNobodyLeads()
    }

    /// Changes the concurrency limit while running; 0 means one per online CPU.
    public func setConcurrency(_ limit: Int) throws(PortError) {
        guard limit >= 0 else { throw PortError.invalidArgument("concurrency must be >= 0") }
        scheduler.setConcurrency(limit == 0 ? Self.onlineCPUs : limit)
    }

    /// Runs `body` with the calling thread not counted as running, so another waiter may be
    /// released meanwhile (Windows does this when a worker blocks in the kernel). On return the
    /// thread counts again, and the running count may briefly exceed the limit.
    ///
    /// The packets of the thread's `PacketBatch` that it has not started go back to the head of
    /// the FIFO on entry, so they wait where every thread can take them, not behind the block.
    public func blocking<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        let wasRunning = scheduler.enterBlocking()
        if wasRunning { driver.flush() }
        defer { if wasRunning { scheduler.leaveBlocking() } }
        return try body()
    }

    // MARK: observation (lock-free gauges)

    /// Packets queued and not yet dequeued.
    public var queueDepth: Int { scheduler.queueDepthGauge.load(ordering: .relaxed) }
    /// CLOCK_MONOTONIC (ns, as `Completion.queuedAtNs`) when the oldest packet still queued
    /// entered the FIFO; 0 when none is queued. Its age shows a stall while it lasts, before
    /// any stalled packet is dequeued.
    public var oldestQueuedAtNs: Int64 { scheduler.oldestQueuedGauge.load(ordering: .relaxed) }
    /// Threads counted as running.
    public var runningThreads: Int { scheduler.runningGauge.load(ordering: .relaxed) }
    /// Threads parked in dequeue (not counting the leader waiting in the kernel).
    public var parkedThreads: Int { scheduler.parkedGauge.load(ordering: .relaxed) }
    /// Whether a packet given back now would run at once: a thread is parked and the
    /// concurrency limit lets one more run. (Two relaxed reads: a hint, as the gauges are.)
    public var couldRunAnotherThread: Bool { parkedThreads > 0 && runningThreads < concurrency }
    /// Operations started and not yet completed.
    public var pendingOperations: Int { operations.inflight }

    // MARK: close

    /// Closes the port. Operations still in flight are cancelled and complete with ECANCELED;
    /// queued packets are still delivered; then every dequeue returns `.portClosed`. Posts and
    /// new operations fail with `PortError.portClosed`. Idempotent.
    public func close() {
        guard scheduler.close() else { return }
        driver.cancelAll()
        driver.wakeLeader()
    }

    private func checkOpen() throws(PortError) {
        if scheduler.isClosed { throw PortError.portClosed }
    }

    static func nanoseconds(_ duration: Duration?) -> Int64 {
        guard let duration else { return -1 }
        let (seconds, attoseconds) = duration.components
        if seconds < 0 { return 0 }
        if seconds > Int64.max / 1_000_000_000 - 1 { return -1 }
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
