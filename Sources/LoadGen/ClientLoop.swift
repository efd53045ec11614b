import CAtomicWords
import CIOURing
import EngineStats
import Histogram
import NativeThreads
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One client thread: drives its share of the connections with one epoll instance.
///
/// Per connection it keeps up to `pipeline` messages outstanding, writes them (several per
/// `writev` when pipelined), reads whatever arrives, compares every byte with what was sent,
/// and records each message's round trip in an HdrHistogram when its last byte comes back.
/// Nothing is allocated per message; the progress counters are single-writer atomics that
/// other threads read live.
final class ClientLoop: @unchecked Sendable {
    // @unchecked: the connections and histogram belong to the loop's thread until it is joined; live figures are atomics.
    /// One connection's state; owned by this thread.
    struct Connection {
        var fd: CInt
        /// Index among all connections (selects its payload slices).
        var index: Int
        var started: UInt64 = 0
        var completed: UInt64 = 0
        var bytesSent = 0
        var bytesReceived = 0
        var open = true
        var wantsWrite = false
        var mismatched = false
        /// When it last had an echoed byte, or started waiting for one (monotonic ns).
        var lastProgressNs: Int64 = 0
        var stalled = false
        /// HTTP: where the response being read stands.
        var response = HTTPResponseCheck.State()
    }

    /// Thread-owned; a raw buffer, so the hot loop pays no exclusivity or uniqueness checks.
    private let connections: UnsafeMutableBufferPointer<Connection>
    private let pattern: PayloadPattern
    private let configuration: LoadConfiguration
    private let control: RunControl
    /// Send times of outstanding messages: `pipeline` per connection.
    private let sentAt: UnsafeMutablePointer<Int64>
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 64)
    private let epoll: CInt
    private var thread: NativeThread?
    /// HTTP runs: the responses' check, and each connection's head space.
    private var responses = HTTPResponseCheck()
    private let heads: UnsafeMutableRawPointer?

    // Live progress, written only by this thread. relaxed: each is read on its own, for display.
    let messagesDone = Atomic<UInt64>(0)
    let bytesDone = Atomic<UInt64>(0)
    let errorCount = Atomic<Int>(0)
    let openConnections = Atomic<Int>(0)
    let finished = Atomic<Bool>(false)

    /// Round trips per `LatencyBuckets` bucket, live: single writer (this thread), read by
    /// `LoadGenerator.roundTrips()` from any thread.
    let roundTrips = UnsafeMutablePointer<UInt64>.allocate(capacity: LatencyBuckets.count)

    // Read after the thread is joined.
    private(set) var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
    private(set) var errors: [String: Int] = [:]
    private(set) var mismatches = 0
    /// Connections that went `LoadConfiguration.stallNs` with bytes outstanding and no echo.
    private(set) var stalledConnections = 0
    private(set) var startedNs: Int64 = 0
    private(set) var endedNs: Int64 = 0

    init(sockets: [(fd: CInt, index: Int)], pattern: PayloadPattern, configuration: LoadConfiguration,
         control: RunControl) {
        connections = .allocate(capacity: sockets.count)
        _ = connections.initialize(from: sockets.map { Connection(fd: $0.fd, index: $0.index) })
        self.pattern = pattern
        self.configuration = configuration
        self.control = control
        sentAt = .allocate(capacity: max(1, sockets.count * configuration.outstandingMessages))
        roundTrips.initialize(repeating: 0, count: LatencyBuckets.count)
        heads = configuration.httpPath == nil ? nil
            : .allocate(byteCount: max(1, sockets.count) * HTTPResponseCheck.headCapacity, alignment: 64)
        epoll = epoll_create1(CInt(EPOLL_CLOEXEC))
        openConnections.store(sockets.count, ordering: .relaxed)
        for slot in connections.indices {
            var event = epoll_event(events: EPOLLIN.rawValue | EPOLLRDHUP.rawValue, data: epoll_data_t(u64: UInt64(slot)))
            epoll_ctl(epoll, EPOLL_CTL_ADD, connections[slot].fd, &event)
        }
    }

    deinit {
        for connection in connections where connection.open { close(connection.fd) }
        connections.deallocate()
        close(epoll)
        sentAt.deallocate()
        scratch.deallocate()
        roundTrips.deallocate()
        heads?.deallocate()
    }

    /// Starts the thread. When it cannot be created, its connections count as failed (they
    /// are closed with the loop) and the loop is finished.
    func start() {
        do {
            thread = try NativeThread.start { self.run() }
        } catch {
            errors["\(error)", default: 0] += connections.count
            openConnections.store(0, ordering: .relaxed)
            // releasing: as the thread's own end, the errors above happen before `finished`.
            finished.store(true, ordering: .releasing)
        }
    }

    func join() { thread?.join() }

    /// Connections this thread was given.
    var connectionCount: Int { connections.count }

    private func record(_ kind: String) {
        errors[kind, default: 0] += 1
        errorCount.store(errorCount.load(ordering: .relaxed) + 1, ordering: .relaxed)
    }

    // Thread-owned run state.
    private var allowance = Int.max
    private var startedTotal: UInt64 = 0
    private var outstandingTotal = 0
    private var budgetExhausted = false

    private func run() {
        startedNs = monotonicNanoseconds()
        let deadline = configuration.duration.map { startedNs + Int64($0 * 1e9) } ?? Int64.max
        let ratePerNs = configuration.rate.map { $0 / Double(configuration.threads) / 1e9 }
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        defer {
            endedNs = monotonicNanoseconds()
            finished.store(true, ordering: .releasing)
        }
        var first = true
        var nextStallCheck = startedNs + 100_000_000
        defer { if configuration.mode == .stream { checkStalls(now: monotonicNanoseconds()) } }
        // A local histogram: recorded into per message without touching `self`'s storage.
        var latencies = histogram
        defer { histogram = latencies }
        while !control.stopRequested {
            let now = monotonicNanoseconds()
            if now >= deadline { return }
            // Unlimited, a connection refills its pipeline when an echo completes (in `read`);
            // only the first pass, and every pass under a rate limit, visits all of them.
            if let ratePerNs {
                allowance = max(0, Int(Double(now - startedNs) * ratePerNs) + 1 - Int(startedTotal))
            }
            if first || ratePerNs != nil {
                first = false
                for slot in connections.indices where connections[slot].open { refill(slot, now: now) }
            }
            if configuration.mode == .stream && now >= nextStallCheck {
                checkStalls(now: now)
                nextStallCheck = now + 100_000_000
            }
            if budgetExhausted && outstandingTotal == 0 { return }
            if openConnections.load(ordering: .relaxed) == 0 { return }
            // Wait for echoes; wake for the deadline, the next rate token, and stop requests.
            var timeout = 100
            if deadline != Int64.max { timeout = min(timeout, Int(max(0, deadline - now) / 1_000_000) + 1) }
            if ratePerNs != nil && allowance == 0 { timeout = min(timeout, 1) }
            let ready = epoll_wait(epoll, &events, CInt(events.count), CInt(timeout))
            for index in 0..<max(0, Int(ready)) {
                let slot = Int(events[index].data.u64)
                guard connections[slot].open else { continue }
                if events[index].events & EPOLLOUT.rawValue != 0 { write(slot) }
                if events[index].events & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 {
                    read(slot, into: &latencies)
                }
            }
        }
    }

    /// Marks connections that have had bytes outstanding and no echo for `stallNs` (once each).
    private func checkStalls(now: Int64) {
        for slot in connections.indices where connections[slot].open && !connections[slot].stalled {
            let waiting = connections[slot].bytesReceived < connections[slot].bytesSent
            if waiting && now - connections[slot].lastProgressNs >= LoadConfiguration.stallNs {
                connections[slot].stalled = true
                stalledConnections += 1
            }
        }
    }

    /// Starts messages on `slot` while its pipeline has room (and the rate and budget allow),
    /// then writes them.
    private func refill(_ slot: Int, now: Int64) {
        let pipeline = UInt64(configuration.outstandingMessages)
        // Nothing was outstanding: the wait for an echo starts now.
        if connections[slot].bytesReceived == connections[slot].bytesSent { connections[slot].lastProgressNs = now }
        while allowance > 0, !budgetExhausted, connections[slot].started - connections[slot].completed < pipeline {
            if !control.takeMessage() {
                budgetExhausted = true
                break
            }
            let message = connections[slot].started
            sentAt[slot * configuration.outstandingMessages + Int(message % pipeline)] = now
            connections[slot].started += 1
            startedTotal += 1
            outstandingTotal += 1
            if configuration.rate != nil { allowance -= 1 }
        }
        if connections[slot].bytesSent < Int(connections[slot].started) * pattern.messageSize { write(slot) }
    }

    /// Writes what is queued for `slot`, up to 16 messages per call.
    private func write(_ slot: Int) {
        let size = pattern.messageSize
        let queued = Int(connections[slot].started) * size
        var vectors = (iovec(), iovec(), iovec(), iovec(), iovec(), iovec(), iovec(), iovec(),
                       iovec(), iovec(), iovec(), iovec(), iovec(), iovec(), iovec(), iovec())
        while connections[slot].bytesSent < queued {
            let count = withUnsafeMutableBytes(of: &vectors) { raw -> Int in
                let vector = raw.bindMemory(to: iovec.self)
                var offset = connections[slot].bytesSent
                var used = 0
                while offset < queued && used < vector.count {
                    let message = UInt64(offset / size), within = offset % size
                    let start = pattern.start(connection: connections[slot].index, message: message)
                    vector[used] = iovec(iov_base: pattern.bytes.baseAddress! + start + within, iov_len: size - within)
                    offset += size - within
                    used += 1
                }
                // One piece: plain write (cheaper in the kernel than a one-element writev).
                return used == 1 ? Glibc.write(connections[slot].fd, vector[0].iov_base, vector[0].iov_len)
                                 : writev(connections[slot].fd, vector.baseAddress, CInt(used))
            }
            if count > 0 {
                connections[slot].bytesSent += count
                continue
            }
            if count < 0 && errno == EINTR { continue }
            if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                setWriteInterest(slot, true)
                return
            }
            fail(slot, errno == EPIPE ? "server closed the connection" : Connector.describe(errno))
            return
        }
        setWriteInterest(slot, false)
    }

    private func setWriteInterest(_ slot: Int, _ wanted: Bool) {
        guard connections[slot].wantsWrite != wanted else { return }
        connections[slot].wantsWrite = wanted
        var event = epoll_event(events: EPOLLIN.rawValue | EPOLLRDHUP.rawValue | (wanted ? EPOLLOUT.rawValue : 0),
                                data: epoll_data_t(u64: UInt64(slot)))
        epoll_ctl(epoll, EPOLL_CTL_MOD, connections[slot].fd, &event)
    }

    /// Reads what arrived on `slot` and checks it byte for byte: at most `readsPerEvent` full
    /// reads, then back to epoll (level-triggered, so the rest is reported again). Draining
    /// here instead would let one connection whose echoes keep arriving as fast as they are
    /// read hold the loop, and every other connection would stall.
    private func read(_ slot: Int, into histogram: inout Histogram<UInt64>) {
        let size = pattern.messageSize
        var reads = 0
        while connections[slot].open && reads < Self.readsPerEvent {
            reads += 1
            let n = Glibc.read(connections[slot].fd, scratch.baseAddress, scratch.count)
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return }
            if n < 0 {
                fail(slot, errno == ECONNRESET ? "connection reset by the server" : Connector.describe(errno))
                return
            }
            if n == 0 {
                fail(slot, "server closed the connection")
                return
            }
            let now = monotonicNanoseconds()
            connections[slot].lastProgressNs = now
            if let heads {
                readResponses(slot, count: n, now: now, heads: heads, into: &histogram)
                if n < scratch.count { return }
                continue
            }
            var consumed = 0
            while consumed < n {
                let received = connections[slot].bytesReceived
                guard received < connections[slot].bytesSent else {
                    // More bytes than were sent: the echo is not an echo.
                    if !connections[slot].mismatched { mismatches += 1; connections[slot].mismatched = true }
                    fail(slot, "more bytes echoed than sent")
                    return
                }
                let message = UInt64(received / size), within = received % size
                let chunk = min(size - within, n - consumed, connections[slot].bytesSent - received)
                let start = pattern.start(connection: connections[slot].index, message: message)
                if memcmp(scratch.baseAddress! + consumed, pattern.bytes.baseAddress! + start + within, chunk) != 0 {
                    if !connections[slot].mismatched {
                        mismatches += 1
                        connections[slot].mismatched = true
                    }
                }
                consumed += chunk
                connections[slot].bytesReceived += chunk
                if within + chunk == size {
                    let sent = sentAt[slot * configuration.outstandingMessages + Int(message % UInt64(configuration.outstandingMessages))]
                    let roundTrip = UInt64(max(1, now - sent))
                    histogram.record(roundTrip)
                    // relaxed load and store: one writer; a reader sums the buckets for display.
                    AtomicWord_addSingleWriter(roundTrips + LatencyBuckets.index(roundTrip), 1)
                    connections[slot].completed += 1
                    outstandingTotal -= 1
                    connections[slot].mismatched = false
                    messagesDone.store(messagesDone.load(ordering: .relaxed) + 1, ordering: .relaxed)
                    bytesDone.store(bytesDone.load(ordering: .relaxed) + UInt64(size), ordering: .relaxed)
                }
            }
            if configuration.rate == nil { refill(slot, now: now) }
            if n < scratch.count { return }
        }
    }

    /// Checks the HTTP responses in the `count` bytes just read on `slot`, completing one
    /// message per response.
    private func readResponses(_ slot: Int, count: Int, now: Int64, heads: UnsafeMutableRawPointer,
                               into histogram: inout Histogram<UInt64>) {
        let head = heads + slot * HTTPResponseCheck.headCapacity
        var failure: String?
        let pipeline = configuration.outstandingMessages
        _ = responses.read(UnsafeRawBufferPointer(start: scratch.baseAddress, count: count),
                           state: &connections[slot].response, head: head) { event in
            guard failure == nil else { return }
            switch event {
            case .malformed(let why):
                failure = why
            case .response(let status, let bodyMatches):
                guard connections[slot].completed < connections[slot].started else {
                    failure = "more responses than requests"
                    return
                }
                if !(200..<300).contains(status) { record("HTTP \(status)") }
                if !bodyMatches { mismatches += 1 }
                let sent = sentAt[slot * pipeline + Int(connections[slot].completed % UInt64(pipeline))]
                let roundTrip = UInt64(max(1, now - sent))
                histogram.record(roundTrip)
                // relaxed load and store: one writer; a reader sums the buckets for display.
                AtomicWord_addSingleWriter(roundTrips + LatencyBuckets.index(roundTrip), 1)
                connections[slot].completed += 1
                outstandingTotal -= 1
                messagesDone.store(messagesDone.load(ordering: .relaxed) + 1, ordering: .relaxed)
            }
        }
        connections[slot].bytesReceived += count
        bytesDone.store(bytesDone.load(ordering: .relaxed) + UInt64(count), ordering: .relaxed)
        if let failure { return fail(slot, failure) }
        if configuration.rate == nil { refill(slot, now: now) }
    }

    /// Full 64 KiB reads one readiness event may do (see `read`).
    private static let readsPerEvent = 4

    private func fail(_ slot: Int, _ kind: String) {
        guard connections[slot].open else { return }
        record(kind)
        outstandingTotal -= Int(connections[slot].started - connections[slot].completed)
        connections[slot].open = false
        epoll_ctl(epoll, EPOLL_CTL_DEL, connections[slot].fd, nil)
        close(connections[slot].fd)
        openConnections.store(openConnections.load(ordering: .relaxed) - 1, ordering: .relaxed)
    }
}
