import CompletionPort
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Large echo buffers lent to connections while data flows through them, and returned when they
/// go quiet (see `Connection`): bulk transfers move up to 256 KiB per system call while an idle
/// connection keeps only its small buffer.
///
/// The buffers are carved from one reserved mapping (`count` buffers, each starting on a page
/// boundary and spaced by `size` rounded up to whole pages, so that handing one buffer's pages
/// back can never touch a neighbour's bytes; reserved, not committed). Two
/// lock-free stacks hold the free ones: *warm* buffers were returned recently and their pages
/// are resident; *cold* ones have been handed back to the kernel (`MADV_DONTNEED`) and cost
/// nothing until written again. `take` prefers warm, `give` pushes warm, and `trim` — called
/// about once a second off the hot path — moves warm buffers beyond a small reserve to cold.
/// A buffer is advised away only after it has been popped, so no connection can be writing
/// into it meanwhile.
///
/// The stacks are `IndexStack`s (lock-free). Invariant: a buffer is on at most one stack, and on
/// a stack xor lent to exactly one connection.
final class BufferPool: @unchecked Sendable {
    // @unchecked: one reserved mapping; a buffer's bytes belong to the connection it is lent to, handed over by the lock-free stacks (acquire/release).
    /// Bytes per buffer.
    let size: Int
    /// Buffers in the pool.
    let count: Int
    /// Distance between buffers: `size` rounded up to whole pages.
    private let stride: Int
    private let base: UnsafeMutableRawPointer
    private let warm: IndexStack
    private let cold: IndexStack
    /// Buffers on the warm stack (approximate while pushes and pops race; exact when quiet).
    private let warmCount = Atomic<Int>(0)
    /// Buffers lent to connections right now.
    private let lentCount = Atomic<Int>(0)

    /// Nil when the address space cannot be reserved.
    init?(count: Int, size: Int) {
        precondition(count > 0 && count < Int(UInt32.max) && size > 0)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let stride = (size + page - 1) / page * page
        guard let mapped = mmap(nil, count * stride, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
              mapped != MAP_FAILED else { return nil }
        self.size = size
        self.count = count
        self.stride = stride
        base = mapped
        warm = IndexStack(capacity: count, filled: false)
        // Every buffer starts cold: never touched.
        cold = IndexStack(capacity: count, filled: true)
    }

    deinit {
        munmap(base, count * stride)
    }

    /// The memory of buffer `index`.
    @inline(__always)
    func buffer(_ index: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: base + index * stride, count: size)
    }

    /// Lends a buffer, or nil when every buffer is lent. Lock-free.
    func take() -> Int? {
        if let index = warm.pop() {
            // relaxed: gauges, read for display and for `trim`'s estimate only.
            warmCount.subtract(1, ordering: .relaxed)
            lentCount.add(1, ordering: .relaxed)
            return index
        }
        guard let index = cold.pop() else { return nil }
        lentCount.add(1, ordering: .relaxed)
        return index
    }

    /// Takes back a lent buffer. Lock-free.
    func give(_ index: Int) {
        warm.push(index)
        // relaxed: gauges (see `take`).
        warmCount.add(1, ordering: .relaxed)
        lentCount.subtract(1, ordering: .relaxed)
    }

    /// Hands the pages of warm buffers beyond `reserve` back to the kernel. Returns how many
    /// buffers it trimmed. One `madvise` per trimmed buffer; call it from a background thread.
    /// It takes from the top of the warm stack (the most recently returned: a stack has no
    /// cheap bottom); which buffers stay warm does not matter, only how many.
    @discardableResult
    func trim(keepingWarm reserve: Int) -> Int {
        var trimmed = 0
        while warmCount.load(ordering: .relaxed) > reserve, let index = warm.pop() {
            warmCount.subtract(1, ordering: .relaxed)
            // Popped: no connection holds it, so its contents may be dropped.
            madvise(base + index * stride, stride, MADV_DONTNEED)
            cold.push(index)
            trimmed += 1
        }
        return trimmed
    }

    /// Buffers lent to connections right now.
    var lent: Int { lentCount.load(ordering: .relaxed) }

    /// Free buffers whose pages are (or may be) resident.
    var warmBuffers: Int { warmCount.load(ordering: .relaxed) }

    /// Bytes of the pool the kernel holds in memory now (`mincore`): what the pool costs.
    func residentBytes() -> Int {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let pages = count * stride / page
        var resident = 0
        var vector = [UInt8](repeating: 0, count: 4096)
        var first = 0
        while first < pages {
            let chunk = min(vector.count, pages - first)
            let ok = vector.withUnsafeMutableBufferPointer { v in
                mincore(base + first * page, chunk * page, v.baseAddress) == 0
            }
            guard ok else { return -1 }
            resident += vector[0..<chunk].reduce(0) { $0 + Int($1 & 1) }
            first += chunk
        }
        return resident * page
    }
}
