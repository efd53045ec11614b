import EngineStats
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Connection objects by slot, created on first use and reused forever after (pooled): a
/// closed connection returns its slot, with its buffer, to the free list.
///
/// The connections' small buffers are carved from one anonymous mapping (`capacity` × buffer
/// size, reserved, not committed): a page costs memory only once data has been written to it,
/// so a connection that has not received anything costs its object alone, and one that has
/// costs its 1 KiB share of a page. Separate heap allocations would not: the allocator's header
/// beside each buffer dirties a page per connection. Large buffers come from `BufferPool`.
///
/// Lookups by slot (every completion) are lock-free: the slot array never moves and an entry
/// is written once, before the connection's socket is associated with the port (which orders
/// it before any completion for it). Taking and returning slots (once per connection) goes
/// through a mutex.
final class ConnectionTable: @unchecked Sendable {
    // @unchecked: an entry is written once, under `freeSlots`, before its socket is associated (which orders it before every completion for it).
    let capacity: Int
    private let bufferSize: Int
    private let outputSize: Int
    private let entries: UnsafeMutablePointer<Connection?>
    private let slab: UnsafeMutableRawPointer
    private let slabBytes: Int
    private let freeSlots = Mutex<Pool>(Pool())
    /// Every slot's `ConnectionFigures` words, contiguous (the sampler scans them in order).
    private let figureWords: UnsafeMutablePointer<UInt64>
    private let figureBytes: Int

    /// The free list, how many connections exist, and the most recent closes (a ring the
    /// sampler drains each frame), all under one lock taken once per connection.
    private struct Pool {
        var free: [Int] = []
        var created = 0
        var closed: [ConnectionSample] = []
        /// Index of the oldest close held, and how many are held.
        var closedStart = 0
        var closedCount = 0
    }

    /// Closes held between two frames; beyond it the oldest give way.
    static let closedCapacity = 64

    /// Nil when the buffers' address space cannot be reserved (capacity × sizes too large).
    /// - Parameter outputSize: bytes of each connection's own output buffer (0: none, a
    ///   protocol that replies with its input).
    init?(capacity: Int, bufferSize: Int, outputSize: Int = 0) {
        self.capacity = capacity
        self.bufferSize = bufferSize
        self.outputSize = outputSize
        entries = .allocate(capacity: capacity)
        entries.initialize(repeating: nil, count: capacity)
        slabBytes = capacity * (bufferSize + outputSize)
        figureBytes = max(1, capacity * ConnectionFigures.Word.count * 8)
        let mapped = mmap(nil, slabBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        let figures = mmap(nil, figureBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let mapped, mapped != MAP_FAILED, let figures, figures != MAP_FAILED else {
            if let mapped, mapped != MAP_FAILED { munmap(mapped, slabBytes) }
            if let figures, figures != MAP_FAILED { munmap(figures, figureBytes) }
            entries.deinitialize(count: capacity)
            entries.deallocate()
            return nil
        }
        slab = mapped
        figureWords = figures.bindMemory(to: UInt64.self, capacity: figureBytes / 8)
        freeSlots.withLock { $0.closed = [ConnectionSample](repeating: ConnectionSample(), count: Self.closedCapacity) }
    }

    deinit {
        entries.deinitialize(count: capacity)
        entries.deallocate()
        munmap(slab, slabBytes)
        munmap(figureWords, figureBytes)
    }

    /// The figures of `slot` (any slot below `capacity`).
    @inline(__always)
    func figures(_ slot: Int) -> ConnectionFigures {
        ConnectionFigures(words: figureWords + slot * ConnectionFigures.Word.count)
    }

    /// The connection in `slot`. The slot must have been handed out by `take`.
    @inline(__always)
    subscript(slot: Int) -> Connection { entries[slot].unsafelyUnwrapped }

    /// A free connection, or nil when `capacity` connections are open.
    func take() -> Connection? {
        freeSlots.withLock { pool -> Connection? in
            if let slot = pool.free.popLast() { return entries[slot] }
            guard pool.created < capacity else { return nil }
            let start = slab + pool.created * (bufferSize + outputSize)
            let connection = Connection(slot: pool.created,
                                        smallBuffer: UnsafeMutableRawBufferPointer(start: start, count: bufferSize),
                                        smallOutput: UnsafeMutableRawBufferPointer(start: start + bufferSize, count: outputSize),
                                        figures: figures(pool.created))
            entries[pool.created] = connection
            pool.created += 1
            return connection
        }
    }

    /// Returns a closed connection's slot, keeping its last row (`closed`) for the next frame.
    func give(_ connection: Connection, closed: ConnectionSample? = nil) {
        freeSlots.withLock { pool in
            pool.free.append(connection.slot)
            if let closed { Self.hold(closed, in: &pool) }
        }
    }

    /// Keeps the row of a connection closed without a slot (refused) for the next frame.
    func recordClosed(_ closed: ConnectionSample) {
        freeSlots.withLock { pool in Self.hold(closed, in: &pool) }
    }

    private static func hold(_ row: ConnectionSample, in pool: inout Pool) {
        if pool.closedCount == closedCapacity {
            // Full: the oldest gives way.
            pool.closedStart = (pool.closedStart + 1) % closedCapacity
            pool.closedCount -= 1
        }
        pool.closed[(pool.closedStart + pool.closedCount) % closedCapacity] = row
        pool.closedCount += 1
    }

    /// Moves the closes held since the last call into `rows` (appended, oldest first, at most
    /// `limit`: the newest are kept).
    func takeClosed(into rows: inout [ConnectionSample], limit: Int) {
        freeSlots.withLock { pool in
            for offset in max(0, pool.closedCount - limit)..<pool.closedCount {
                rows.append(pool.closed[(pool.closedStart + offset) % Self.closedCapacity])
            }
            pool.closedStart = 0
            pool.closedCount = 0
        }
    }

    /// How many connection objects exist (open or pooled).
    var created: Int { freeSlots.withLock { $0.created } }

    /// Calls `body` for every connection object created so far.
    func forEachCreated(_ body: (Connection) -> Void) {
        let count = created
        for slot in 0..<count {
            if let connection = entries[slot] { body(connection) }
        }
    }
}
