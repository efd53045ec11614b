import CIOURing
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Buffers the kernel picks from for multishot receives: io_uring's provided-buffer ring
/// (buffer group 0), shared by every socket of a port.
///
/// A multishot receive takes one buffer per arrival and names it in the completion
/// (`Completion.bufferID`); the buffer is then the receiver's until it hands it back with
/// `CompletionPort.recycle(providedBuffer:)`. While the ring is empty, a multishot receive
/// ends with ENOBUFS.
///
/// Memory: `count × size` bytes of address space and a page or two of descriptors, touched
/// only as the kernel writes into them.
final class ProvidedBuffers: @unchecked Sendable {
    // @unchecked: the kernel's buffer ring is written under `lock` (tail published with a releasing store); a buffer's bytes belong to whoever holds its id.
    /// The buffer group every multishot receive names.
    static let group: UInt16 = 0

    let count: Int
    let size: Int
    private let area: UnsafeMutableRawPointer
    private let ring: UnsafeMutablePointer<io_uring_buf_ring>
    private let ringBytes: Int
    /// Serialises hand-backs: the ring has one tail.
    private let tailLock = Mutex<Void>(())

    /// Maps `count` (a power of two ≤ 32768) buffers of `size` bytes and registers them with
    /// the io_uring `ringFD`. Nil when the kernel refuses.
    init?(ringFD: CInt, count: Int, size: Int) {
        precondition(count > 0 && count <= 32768 && count & (count - 1) == 0 && size > 0)
        self.count = count
        self.size = size
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        ringBytes = (count * MemoryLayout<io_uring_buf>.stride + page - 1) / page * page
        guard let ringMemory = mmap(nil, ringBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              ringMemory != MAP_FAILED else { return nil }
        guard let areaMemory = mmap(nil, count * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              areaMemory != MAP_FAILED else {
            munmap(ringMemory, ringBytes)
            return nil
        }
        ring = ringMemory.bindMemory(to: io_uring_buf_ring.self, capacity: 1)
        area = areaMemory
        guard CIOURing_register_buffer_ring(ringFD, ringMemory, UInt32(count), Self.group) == 0 else {
            munmap(ringMemory, ringBytes)
            munmap(areaMemory, count * size)
            return nil
        }
        for id in 0..<count {
            CIOURing_buffer_ring_put(ring, UInt32(count - 1), 0, UInt32(id), area + id * size, UInt32(size), UInt16(id))
        }
        CIOURing_buffer_ring_publish(ring, UInt16(truncatingIfNeeded: count))
    }

    /// Called after the ring is closed (which drops the registration).
    func unmap() {
        munmap(UnsafeMutableRawPointer(ring), ringBytes)
        munmap(area, count * size)
    }

    /// The memory of buffer `id`.
    @inline(__always)
    func buffer(_ id: Int) -> UnsafeMutableRawPointer {
        area + id * size
    }

    /// Gives buffer `id` back to the kernel.
    func recycle(_ id: Int) {
        tailLock.withLock { _ in
            let tail = CIOURing_buffer_ring_tail(ring)
            CIOURing_buffer_ring_put(ring, UInt32(count - 1), tail, 0, area + id * size, UInt32(size), UInt16(id))
            // releasing (inside the C helper): the descriptor is visible before the tail; pairs
            // with the kernel's acquiring load of the tail when it picks a buffer.
            CIOURing_buffer_ring_publish(ring, tail &+ 1)
        }
    }
}
