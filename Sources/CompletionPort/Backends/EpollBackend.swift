import CIOURing
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Per-descriptor state for the epoll backend, behind a per-handle lock.
///
/// The lock is uncontended except when a submitter and the leader touch the same socket at the
/// same moment; it makes "try the I/O now, else leave it pending" atomic with respect to the
/// readiness event, which is what keeps a wakeup from being lost.
struct EpollHandleState {
    var associated = false
    /// Bumped on every association and close; carried in `epoll_data` so an event for an
    /// earlier owner of the descriptor number is dropped.
    var generation: UInt32 = 0
    var key: UInt64 = 0
    /// Pending operation slots, index + 1 (0: none).
    var receiveSlot: UInt32 = 0
    var sendSlot: UInt32 = 0
    var acceptSlot: UInt32 = 0
}

struct EpollHandle: ~Copyable {
    let state = Mutex(EpollHandleState())
}

/// The port over one epoll set: a proactor built on a reactor.
///
/// An operation first tries its system call at once (non-blocking). If that would block, it is
/// left pending on its handle, and the leader performs it when epoll reports the descriptor
/// ready; the completion is produced only when the I/O is actually done. Sockets are registered
/// edge-triggered for input and output at association, so no `epoll_ctl` is needed per
/// operation; a listening socket with an accept armed is switched to level-triggered input,
/// so connections left over when a harvest batch fills up are reported again.
///
/// `epoll_data.u64` = generation << 32 | fd (the wake eventfd uses `UInt64.max`).
final class EpollBackend: BackendDriver, @unchecked Sendable {
    // @unchecked: per-handle state is guarded by the handle's lock; the ready list belongs to the one leader.
    let kind = PortBackend.epoll
    /// epoll has no provided buffers: receives are one-shot.
    var providedBuffers: ProvidedBuffers? { nil }
    var cooperativeTaskRunning: Bool { false }
    private let epollFD: CInt
    private let eventFD: CInt
    private let operations: OperationTable
    /// unowned(unsafe): used on every submission and harvest, so no reference counting. Sound
    /// because the port owns both and calls the backend only while it is alive.
    private unowned(unsafe) let scheduler: Scheduler
    private let handles: HandleTable<EpollHandle>
    /// Leader only.
    private let events: UnsafeMutablePointer<epoll_event>
    private static let eventCapacity = 64
    private static let wakeData = UInt64.max
    /// An eventfd write is pending and not yet harvested; later wakes are redundant.
    private let wakePending = Atomic<Bool>(false)

    private static let edgeEvents = UInt32(EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue) | EPOLLET.rawValue

    init(operations: OperationTable, scheduler: Scheduler, descriptorLimit: Int) throws(PortError) {
        let epollFD = epoll_create1(CInt(EPOLL_CLOEXEC))
        guard epollFD >= 0 else { throw PortError.system(SystemCallError(.epollCreate, errno: errno)) }
        let eventFD = CIOURing.eventfd(0, CInt(EFD_NONBLOCK | EFD_CLOEXEC))
        guard eventFD >= 0 else {
            let error = errno
            Glibc.close(epollFD)
            throw PortError.system(SystemCallError(.eventFD, errno: error))
        }
        var event = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(u64: Self.wakeData))
        guard epoll_ctl(epollFD, EPOLL_CTL_ADD, eventFD, &event) == 0 else {
            let error = errno
            Glibc.close(epollFD)
            Glibc.close(eventFD)
            throw PortError.system(SystemCallError(.epollControl, errno: error))
        }
        self.epollFD = epollFD
        self.eventFD = eventFD
        self.operations = operations
        self.scheduler = scheduler
        handles = HandleTable(limit: descriptorLimit) { EpollHandle() }
        events = .allocate(capacity: Self.eventCapacity)
    }

    func shutdown() {
        Glibc.close(epollFD)
        Glibc.close(eventFD)
        events.deallocate()
    }

    // MARK: handles

    func associate(_ fd: CInt, key: UInt64) throws(PortError) {
        guard let handle = handles.entryCreating(fd) else { throw PortError.notAssociated(fd) }
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else {
            throw PortError.system(SystemCallError(.setOption, errno: errno))
        }
        let generation = handle.pointee.state.withLock { s -> UInt32 in
            s = EpollHandleState(associated: true, generation: s.generation &+ 1, key: key)
            return s.generation
        }
        var event = epoll_event(events: Self.edgeEvents, data: epoll_data_t(u64: UInt64(generation) << 32 | UInt64(UInt32(fd))))
        if epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) != 0 {
            let error = errno
            // Still registered from before a plain close(2) of a duplicated descriptor.
            if error == EEXIST, epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &event) == 0 { return }
            handle.pointee.state.withLock { $0.associated = false }
            throw PortError.system(SystemCallError(.epollControl, errno: error))
        }
    }

    func submit(_ operation: Operation, fd: CInt, buffer: UnsafeMutableRawPointer?, length: Int,
                context: UInt64) throws(PortError) -> UInt64 {
        guard let handle = handles.entry(fd) else { throw PortError.notAssociated(fd) }
        var inline = Completion.empty
        var completedInline = false
        let userData = try handle.pointee.state.withLock { s throws(PortError) -> UInt64 in
            guard s.associated else { throw PortError.notAssociated(fd) }
            let pending: UInt32 = switch operation {
            case .receive: s.receiveSlot
            case .send: s.sendSlot
            case .accept: s.acceptSlot
            case .posted: 0
            }
            guard pending == 0 else { throw PortError.operationInProgress(fd) }
            guard let userData = operations.allocate(operation, fd: fd, key: s.key, context: context,
                                                     buffer: buffer, length: length) else {
                throw PortError.tooManyOperations
            }
            let index = Int(UInt32(truncatingIfNeeded: userData))
            let slot = UInt32(index + 1)
            switch operation {
            case .accept:
                // Served by the leader: level-triggered input while armed.
                var event = epoll_event(events: EPOLLIN.rawValue,
                                        data: epoll_data_t(u64: UInt64(s.generation) << 32 | UInt64(UInt32(fd))))
                guard epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &event) == 0 else {
                    let error = errno
                    operations.free(index)
                    throw PortError.system(SystemCallError(.epollControl, errno: error))
                }
                s.acceptSlot = slot
            case .receive, .send:
                if let completion = perform(index) {
                    inline = completion
                    completedInline = true
                    operations.free(index)
                } else if operation == .receive {
                    s.receiveSlot = slot
                } else {
                    s.sendSlot = slot
                }
            case .posted:
                operations.free(index)
            }
            return userData
        }
        if completedInline {
            withUnsafePointer(to: inline) { scheduler.deliver(UnsafeBufferPointer(start: $0, count: 1)) }
        }
        return userData
    }

    func cancel(_ userData: UInt64, fd: CInt) {
        guard let handle = handles.entry(fd) else { return }
        let index = Int(UInt32(truncatingIfNeeded: userData))
        let slot = UInt32(truncatingIfNeeded: index + 1)
        var cancelled = Completion.empty
        // Under the handle lock the leader cannot be performing it: it is pending or gone.
        let found = handle.pointee.state.withLock { s -> Bool in
            guard s.associated, s.receiveSlot == slot || s.sendSlot == slot,
                  operations.slotIndex(userData) != nil else { return false }
            cancelled = operations.completion(index, result: 0, errno: ECANCELED)
            operations.free(index)
            if s.receiveSlot == slot { s.receiveSlot = 0 } else { s.sendSlot = 0 }
            return true
        }
        if found {
            withUnsafePointer(to: cancelled) { scheduler.deliver(UnsafeBufferPointer(start: $0, count: 1)) }
        }
    }

    /// Tries a receive or send once. Nil when it would block.
    private func perform(_ index: Int) -> Completion? {
        let slot = operations.slots[index]
        while true {
            let result = slot.operation == .receive
                ? recv(slot.fd, slot.buffer, slot.length, CInt(MSG_DONTWAIT))
                : Glibc.send(slot.fd, slot.buffer, slot.length, CInt(MSG_DONTWAIT | MSG_NOSIGNAL))
            if result >= 0 {
                return operations.completion(index, result: Int32(truncatingIfNeeded: result), errno: 0)
            }
            let error = errno
            if error == EINTR { continue }
            if error == EAGAIN || error == EWOULDBLOCK { return nil }
            return operations.completion(index, result: 0, errno: error)
        }
    }

    func closeHandle(_ fd: CInt) throws(PortError) {
        guard let handle = handles.entry(fd) else { throw PortError.notAssociated(fd) }
        var cancelled = (Completion.empty, Completion.empty, Completion.empty)
        let count = try handle.pointee.state.withLock { s throws(PortError) -> Int in
            guard s.associated else { throw PortError.notAssociated(fd) }
            let n = cancelPending(&s, into: &cancelled)
            s.associated = false
            s.generation &+= 1
            // Closed under the handle lock: the leader cannot be inside a system call on this
            // descriptor number, and cannot start one (the generation moved).
            Glibc.close(fd)
            return n
        }
        if count > 0 { deliver(&cancelled, count: count) }
    }

    /// Completes every pending operation of a handle with ECANCELED. Under its lock.
    private func cancelPending(_ s: inout EpollHandleState,
                               into out: inout (Completion, Completion, Completion)) -> Int {
        var n = 0
        if s.acceptSlot != 0 {
            // Back to edge-triggered: a level-triggered listener with nothing armed would spin.
            let fd = operations.slots[Int(s.acceptSlot - 1)].fd
            var event = epoll_event(events: Self.edgeEvents,
                                    data: epoll_data_t(u64: UInt64(s.generation) << 32 | UInt64(UInt32(fd))))
            _ = epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &event)
        }
        func cancel(_ slot: UInt32) {
            guard slot != 0 else { return }
            let completion = operations.completion(Int(slot - 1), result: 0, errno: ECANCELED)
            operations.free(Int(slot - 1))
            switch n {
            case 0: out.0 = completion
            case 1: out.1 = completion
            default: out.2 = completion
            }
            n += 1
        }
        cancel(s.acceptSlot)
        cancel(s.receiveSlot)
        cancel(s.sendSlot)
        s.acceptSlot = 0
        s.receiveSlot = 0
        s.sendSlot = 0
        return n
    }

    /// Delivers the first `count` of up to three cancellations.
    private func deliver(_ cancelled: inout (Completion, Completion, Completion), count: Int) {
        withUnsafePointer(to: &cancelled) { pointer in
            pointer.withMemoryRebound(to: Completion.self, capacity: 3) { first in
                scheduler.deliver(UnsafeBufferPointer(start: first, count: count))
            }
        }
    }

    func cancelAll() {
        handles.forEach { handle in
            var cancelled = (Completion.empty, Completion.empty, Completion.empty)
            let count = handle.pointee.state.withLock { s in cancelPending(&s, into: &cancelled) }
            if count > 0 { deliver(&cancelled, count: count) }
        }
        scheduler.recheck()
    }

    func flush() {}

    func wakeLeader() {
        // acquiring/releasing: orders with the harvest that clears it.
        guard !wakePending.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var one: UInt64 = 1
        _ = Glibc.write(eventFD, &one, 8)
    }

    // MARK: harvest

    func harvest(into buffer: UnsafeMutableBufferPointer<Completion>, timeoutNs: Int64) -> Int {
        let timeoutMs: CInt = timeoutNs < 0 ? -1 : CInt(clamping: (timeoutNs + 999_999) / 1_000_000)
        // At most two completions (a receive and a send) per event, so every edge-triggered
        // event of the batch is served: an event skipped for want of room would be lost.
        let ready = epoll_wait(epollFD, events, CInt(min(Self.eventCapacity, buffer.count / 2)), timeoutMs)
        guard ready > 0 else { return 0 }
        var n = 0
        var listeners = 0
        for i in 0..<Int(ready) {
            let data = events[i].data.u64
            let flags = events[i].events
            if data == Self.wakeData {
                var value: UInt64 = 0
                _ = Glibc.read(eventFD, &value, 8)
                // releasing: a waker after this point writes the eventfd again.
                wakePending.store(false, ordering: .releasing)
                continue
            }
            let fd = CInt(truncatingIfNeeded: UInt32(truncatingIfNeeded: data))
            guard let handle = handles.entry(fd) else { continue }
            let isListener = handle.pointee.state.withLock { s -> Bool in
                guard s.associated, s.generation == UInt32(truncatingIfNeeded: data >> 32) else { return false }
                if s.acceptSlot != 0 { return true }
                let input = flags & (EPOLLIN.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue | EPOLLRDHUP.rawValue) != 0
                let output = flags & (EPOLLOUT.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0
                if input && s.receiveSlot != 0, let completion = perform(Int(s.receiveSlot - 1)) {
                    operations.free(Int(s.receiveSlot - 1))
                    s.receiveSlot = 0
                    buffer[n] = completion
                    n += 1
                }
                if output && s.sendSlot != 0, let completion = perform(Int(s.sendSlot - 1)) {
                    operations.free(Int(s.sendSlot - 1))
                    s.sendSlot = 0
                    buffer[n] = completion
                    n += 1
                }
                return false
            }
            if isListener {
                // Served below, with the room left: listeners are level-triggered while an
                // accept is armed, so connections that do not fit are reported again.
                events[listeners].data.u64 = data
                listeners += 1
            }
        }
        for i in 0..<listeners {
            let data = events[i].data.u64
            let fd = CInt(truncatingIfNeeded: UInt32(truncatingIfNeeded: data))
            guard let handle = handles.entry(fd) else { continue }
            handle.pointee.state.withLock { s in
                guard s.associated, s.generation == UInt32(truncatingIfNeeded: data >> 32), s.acceptSlot != 0 else { return }
                n += acceptReady(&s, fd: fd, into: buffer, from: n)
            }
        }
        return n
    }

    /// Accepts while connections are waiting and the batch has room. An error ends the
    /// multishot accept (as io_uring does): it completes without `hasMore` and the listening
    /// socket goes back to edge-triggered registration.
    private func acceptReady(_ s: inout EpollHandleState, fd: CInt,
                             into buffer: UnsafeMutableBufferPointer<Completion>, from start: Int) -> Int {
        let index = Int(s.acceptSlot - 1)
        var n = start
        while n < buffer.count {
            let accepted = CIOURing_accept(fd)
            if accepted >= 0 {
                buffer[n] = operations.completion(index, result: accepted, errno: 0, hasMore: true)
                n += 1
                continue
            }
            let error = errno
            if error == EINTR || error == ECONNABORTED { continue }
            if error == EAGAIN || error == EWOULDBLOCK { break }
            buffer[n] = operations.completion(index, result: 0, errno: error, hasMore: false)
            n += 1
            operations.free(index)
            s.acceptSlot = 0
            var event = epoll_event(events: Self.edgeEvents,
                                    data: epoll_data_t(u64: UInt64(s.generation) << 32 | UInt64(UInt32(fd))))
            _ = epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &event)
            break
        }
        return n - start
    }
}
