import Synchronization

/// Per-descriptor entries, indexed by fd, allocated in chunks of 1024 on first association.
///
/// Lookups are lock-free (an acquiring load of the chunk pointer); only creating a chunk takes
/// a lock, once per 1024 descriptors. Chunks live until the table is deallocated.
final class HandleTable<Entry: ~Copyable>: @unchecked Sendable {
    // @unchecked: chunks are published once with a releasing store and never move; an entry is guarded by its own lock.
    private static var chunkShift: Int { 10 }
    private static var chunkSize: Int { 1 << chunkShift }

    /// Descriptors at or above this limit are refused.
    let limit: Int
    private let chunkCount: Int
    private let chunks: UnsafeMutablePointer<Atomic<UnsafeMutablePointer<Entry>?>>
    private let growLock = Mutex<Void>(())
    private let makeEntry: () -> Entry

    init(limit: Int, makeEntry: @escaping () -> Entry) {
        self.limit = max(limit, Self.chunkSize)
        chunkCount = (self.limit + Self.chunkSize - 1) >> Self.chunkShift
        chunks = .allocate(capacity: chunkCount)
        for i in 0..<chunkCount { (chunks + i).initialize(to: Atomic(nil)) }
        self.makeEntry = makeEntry
    }

    deinit {
        for i in 0..<chunkCount {
            if let chunk = chunks[i].load(ordering: .relaxed) {
                chunk.deinitialize(count: Self.chunkSize)
                chunk.deallocate()
            }
        }
        chunks.deinitialize(count: chunkCount)
        chunks.deallocate()
    }

    /// The entry of `fd`, if its chunk exists.
    func entry(_ fd: CInt) -> UnsafeMutablePointer<Entry>? {
        guard fd >= 0, Int(fd) < limit else { return nil }
        // acquiring: pairs with the releasing store in `entryCreating`, so the chunk's
        // initialised entries are visible.
        guard let chunk = chunks[Int(fd) >> Self.chunkShift].load(ordering: .acquiring) else { return nil }
        return chunk + (Int(fd) & (Self.chunkSize - 1))
    }

    /// The entry of `fd`, creating its chunk if needed; nil when `fd` is out of range.
    func entryCreating(_ fd: CInt) -> UnsafeMutablePointer<Entry>? {
        if let existing = entry(fd) { return existing }
        guard fd >= 0, Int(fd) < limit else { return nil }
        let index = Int(fd) >> Self.chunkShift
        growLock.withLock { _ in
            guard chunks[index].load(ordering: .relaxed) == nil else { return }
            let chunk = UnsafeMutablePointer<Entry>.allocate(capacity: Self.chunkSize)
            for i in 0..<Self.chunkSize { (chunk + i).initialize(to: makeEntry()) }
            // releasing: publishes the initialised chunk to lock-free readers in `entry`.
            chunks[index].store(chunk, ordering: .releasing)
        }
        return entry(fd)
    }

    /// Calls `body` for every entry that exists.
    func forEach(_ body: (UnsafeMutablePointer<Entry>) -> Void) {
        for i in 0..<chunkCount {
            // acquiring: as in `entry`.
            guard let chunk = chunks[i].load(ordering: .acquiring) else { continue }
            for j in 0..<Self.chunkSize { body(chunk + j) }
        }
    }
}
