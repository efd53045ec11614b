/// What the port needs from a kernel interface. Two final classes implement it, `URingBackend`
/// and `EpollBackend`; the scheduling rules (FIFO, gate, LIFO, leader) live once, in `Scheduler`.
protocol BackendDriver: AnyObject, Sendable {
    var kind: PortBackend { get }

    /// Records the completion key of `fd` and prepares the kernel side.
    func associate(_ fd: CInt, key: UInt64) throws(PortError)

    /// Starts an operation. Its completion (success or failure) is delivered exactly once
    /// (a multishot accept: once per connection, the last without `hasMore`). A receive with a
    /// nil buffer is a multishot receive into `providedBuffers` (only when there are some).
    /// Returns the operation's user data (see `OperationTable`).
    func submit(_ operation: Operation, fd: CInt, buffer: UnsafeMutableRawPointer?, length: Int,
                context: UInt64) throws(PortError) -> UInt64

    /// Cancels one operation on `fd` if it is still in flight: it completes with ECANCELED
    /// (or with its result, if it finished first). A stale `userData` does nothing.
    func cancel(_ userData: UInt64, fd: CInt)

    /// Cancels every operation in flight on `fd` (they complete with ECANCELED) and closes it.
    func closeHandle(_ fd: CInt) throws(PortError)

    /// The leader's wait: hands pending submissions to the kernel, waits up to `timeoutNs`
    /// (< 0: forever) for completions, and writes up to `buffer.count` of them. Returns how many.
    /// Called by one thread at a time.
    func harvest(into buffer: UnsafeMutableBufferPointer<Completion>, timeoutNs: Int64) -> Int

    /// Makes a leader waiting in the kernel (or about to) return soon.
    func wakeLeader()

    /// Hands pending submissions to the kernel now.
    func flush()

    /// Cancels every operation in flight (port close); they complete with ECANCELED.
    func cancelAll()

    /// io_uring with cooperative task running (see `URingBackend`); false on epoll.
    var cooperativeTaskRunning: Bool { get }

    /// The buffers multishot receives pick from, when the backend has them.
    var providedBuffers: ProvidedBuffers? { get }

    /// Releases the kernel objects. Called once, when the port is deallocated.
    func shutdown()
}
