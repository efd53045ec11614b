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
    private let freeSlots = Mutex<(free: [Int], created: Int)>(([], 0))

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
        let mapped = mmap(nil, slabBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let mapped, mapped != MAP_FAILED else {
            entries.deinitialize(count: capacity)
            entries.deallocate()
            return nil
        }
        slab = mapped
    }

    deinit {
        entries.deinitialize(count: capacity)
        entries.deallocate()
        munmap(slab, slabBytes)
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
                                        smallOutput: UnsafeMutableRawBufferPointer(start: start + bufferSize, count: outputSize))
            entries[pool.created] = connection
            pool.created += 1
            return connection
        }
    }

    /// Returns a closed connection's slot.
    func give(_ connection: Connection) {
        freeSlots.withLock { $0.free.append(connection.slot) }
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
