import CAtomicWords
import CShare
#if canImport(Glibc)
import Glibc
#endif

/// A fixed-capacity, lock-free ring of `StatsFrame`s: one writer (the sampler), any number of
/// readers, none of which ever blocks the writer or another reader.
///
/// Each entry is a seqlock. Frame `n` (1, 2, …) goes to entry `(n - 1) % capacity`, whose
/// sequence word reads `2n - 1` while the frame is being written and `2n` once it is complete.
/// A reader that wants frame `n` checks the sequence is `2n`, copies the words, and checks the
/// sequence again: if the writer lapped the ring meanwhile (it is overwriting the entry with
/// frame `n + capacity`), the second check fails and the reader resynchronises on a newer frame.
/// Every word is read and written with atomic operations, so a torn copy is detected, never
/// undefined behaviour.
///
/// The storage is one shared-memory file (a memfd) mapped once, led by a `RingHeader` that
/// says what it holds: pages a frame never touches (slots of workers that do not exist) cost
/// nothing. Viewers in other processes map the same file read-only (`init(attaching:)`).
public final class StatsRing: @unchecked Sendable {
    // @unchecked: the mapping is shared by design; every access to it is an atomic word
    // operation (see the seqlock protocol above), and the other properties are immutable.
    /// How many frames the ring holds.
    public let capacity: Int
    /// How many workers one frame can hold.
    public let workerCapacity: Int
    /// The memfd holding the ring (-1 for a ring mapped from elsewhere): what an engine shares
    /// with its viewers.
    public let descriptor: CInt
    /// False for a ring attached read-only: it can be read, never published to.
    public let isWritable: Bool
    /// Words of one row of handler metrics (`HandlerSchema.wordCount`; 0: none).
    public let handlerWords: Int
    /// How many connection rows one frame can hold (the top connections plus the closed).
    public let connectionCapacity: Int
    private let frameWords: Int
    private let base: UnsafeMutablePointer<UInt64>
    private let storage: UnsafeMutablePointer<UInt64>
    private let mappedBytes: Int
    /// Number of the newest complete frame (0: none yet).
    private let head: UnsafeMutablePointer<UInt64>

    /// Creates a ring in a fresh memfd (shared memory: never written back to a disk).
    /// - Parameter handler: the handler metrics every frame carries (part of the layout).
    /// - Parameter connectionCapacity: connection rows a frame holds (0: none).
    public init(capacity: Int = 512, workerCapacity: Int, handler: HandlerSchema = .empty, connectionCapacity: Int = 0) {
        precondition(capacity >= 2 && workerCapacity >= 1 && connectionCapacity >= 0 && connectionCapacity <= 1 << 12)
        self.capacity = capacity
        self.workerCapacity = workerCapacity
        self.connectionCapacity = connectionCapacity
        handlerWords = handler.wordCount
        frameWords = RingHeader.frameWords(workerCapacity: workerCapacity, handlerWords: handlerWords,
                                           connectionCapacity: connectionCapacity)
        mappedBytes = RingHeader.mappedBytes(capacity: capacity, frameWords: frameWords)
        isWritable = true
        let fd = CShare_memfd("iocptop-stats")
        var raw: UnsafeMutableRawPointer? = MAP_FAILED
        if fd >= 0, ftruncate(fd, off_t(mappedBytes)) == 0 {
            raw = mmap(nil, mappedBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
            _ = CShare_sealFutureWrites(fd)
        }
        if raw == MAP_FAILED {
            // No memfd (an old kernel or a sandbox): private memory, not shareable.
            if fd >= 0 { close(fd) }
            raw = mmap(nil, mappedBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            descriptor = -1
        } else {
            descriptor = fd
        }
        precondition(raw != MAP_FAILED, "cannot map \(mappedBytes) bytes for the stats ring")
        base = raw!.bindMemory(to: UInt64.self, capacity: mappedBytes / 8)
        head = base + RingHeader.headWord
        storage = base + RingHeader.firstEntryWord
        RingHeader.writeLayout(to: base, capacity: capacity, workerCapacity: workerCapacity,
                               connectionCapacity: connectionCapacity, frameWords: frameWords)
        RingHeader.writeSchema(handler, to: base)
    }

    /// Maps the ring another process shares through `descriptor`, read-only: a viewer cannot
    /// change what the engine publishes. Takes ownership of the descriptor.
    /// - Throws: `RingAttachError` when the descriptor does not hold a ring of this layout.
    public init(attaching fd: CInt) throws(RingAttachError) {
        var status = stat()
        guard fstat(fd, &status) == 0 else { close(fd); throw .unreadable(errno) }
        // Only a sealed memfd cannot shrink under the mapping (which would be SIGBUS, not an
        // error): the engine's ring always is.
        guard status.st_mode & S_IFMT == S_IFREG, CShare_isSealedAgainstShrinking(fd) != 0 else {
            close(fd)
            throw .notARing
        }
        let size = Int(status.st_size)
        guard size >= RingHeader.firstEntryWord * 8 else { close(fd); throw .notARing }
        guard let raw = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), raw != MAP_FAILED else {
            close(fd)
            throw .unreadable(errno)
        }
        let words = raw.bindMemory(to: UInt64.self, capacity: size / 8)
        let layout = RingHeader.readLayout(from: words)
        do throws(RingAttachError) {
            try layout.check(mappedBytes: size)
        } catch {
            munmap(raw, size)
            close(fd)
            throw error
        }
        capacity = layout.capacity
        workerCapacity = layout.workerCapacity
        handlerWords = layout.handlerWords ?? 0
        connectionCapacity = layout.connectionCapacity
        frameWords = layout.frameWords
        mappedBytes = size
        descriptor = fd
        isWritable = false
        base = words
        head = base + RingHeader.headWord
        storage = base + RingHeader.firstEntryWord
    }

    deinit {
        munmap(UnsafeMutableRawPointer(base), mappedBytes)
        if descriptor >= 0 { close(descriptor) }
    }

    /// Bytes one frame takes in the ring (its sequence word, fields and rows at capacity).
    public var frameBytes: Int { frameWords * 8 }

    /// The engine's identity and settings as the header holds them now.
    public var identity: EngineIdentity { RingHeader.readIdentity(from: base) }

    /// Writes the engine's identity into the header (before the ring is shared).
    public func describe(_ identity: EngineIdentity) {
        precondition(isWritable)
        RingHeader.writeIdentity(identity, to: base)
    }

    /// Records the sampling period in the header (the sampler calls it when the period changes).
    public func recordPeriod(_ periodNs: UInt64) {
        guard isWritable else { return }
        RingHeader.writePeriod(periodNs, to: base)
    }

    private func entry(_ number: UInt64) -> UnsafeMutablePointer<UInt64> {
        storage + Int((number - 1) % UInt64(capacity)) * frameWords
    }

    /// Number of the newest complete frame (0: none yet). A shared ring is read from memory
    /// another process writes, so numbers are kept to a range no arithmetic here overflows.
    public var newest: UInt64 {
        // acquiring: pairs with the releasing store in `publish`; the frame is complete.
        min(AtomicWord_loadAcquire(head), Self.largestNumber)
    }

    /// Frames past this are not believed (2^62: 70 billion years at 50 ms).
    static let largestNumber: UInt64 = 1 << 62

    /// Number of the oldest frame still held (0: none yet).
    public var oldest: UInt64 {
        let newest = newest
        return newest == 0 ? 0 : (newest > UInt64(capacity) ? newest - UInt64(capacity) + 1 : 1)
    }

    /// Appends `frame` as the next frame and returns its number. Only one thread may publish.
    /// Workers beyond `workerCapacity`, and connections beyond `connectionCapacity`, are left out.
    @discardableResult
    public func publish(_ frame: StatsFrame) -> UInt64 {
        precondition(isWritable, "a ring attached read-only cannot be published to")
        let number = AtomicWord_loadRelaxed(head) + 1
        let words = entry(number)
        // Odd sequence first; the releasing fence orders it before every data store below, so
        // a reader that sees any new data word also sees the sequence change on its re-check.
        AtomicWord_storeRelaxed(words, 2 * number - 1)
        AtomicWord_fenceRelease()
        var stored = frame
        stored.number = number
        if stored.workers.count > workerCapacity { stored.workers.removeLast(stored.workers.count - workerCapacity) }
        // relaxed data stores: ordered by the fence above and the releasing store below.
        stored.writeHeader(to: words + 1, AtomicWord_storeRelaxed)
        var workerWords = words + 1 + FrameLayout.frameWordCount
        writeHandlerRow(stored.retiredHandler, to: workerWords)
        workerWords += handlerWords
        for worker in stored.workers {
            worker.write(to: workerWords, AtomicWord_storeRelaxed)
            workerWords += FrameLayout.workerWordCount
            writeHandlerRow(worker.handler, to: workerWords)
            workerWords += handlerWords
        }
        let connectionCount = min(stored.connections.count, connectionCapacity)
        let connectionsAt = connectionRows(of: words)
        // relaxed data stores, as above.
        AtomicWord_storeRelaxed(connectionsAt, UInt64(connectionCount))
        var connectionWords = connectionsAt + 1
        for connection in stored.connections.prefix(connectionCount) {
            connection.write(to: connectionWords, AtomicWord_storeRelaxed)
            connectionWords += FrameLayout.connectionWordCount
        }
        // releasing: the data stores happen before a reader that acquires the even sequence.
        AtomicWord_storeRelease(words, 2 * number)
        // releasing: a reader that acquires the head finds the frame complete.
        AtomicWord_storeRelease(head, number)
        return number
    }

    /// Copies frame `number` into `frame` (reusing its worker array). False if that frame is
    /// not published yet, or was overwritten before or while it was read.
    public func read(_ number: UInt64, into frame: inout StatsFrame) -> Bool {
        guard number > 0, number <= Self.largestNumber else { return false }
        let words = entry(number)
        // acquiring: pairs with the releasing even store in `publish`.
        let before = AtomicWord_loadAcquire(words)
        guard before == 2 * number else { return false }
        let count = min(workerCapacity, max(0, frame.readHeader(from: words + 1, { AtomicWord_loadRelaxed($0) })))
        frame.workers.removeAll(keepingCapacity: true)
        var workerWords = words + 1 + FrameLayout.frameWordCount
        readHandlerRow(from: workerWords, into: &frame.retiredHandler)
        workerWords += handlerWords
        for _ in 0..<count {
            var sample = WorkerSample()
            sample.read(from: workerWords, { AtomicWord_loadRelaxed($0) })
            workerWords += FrameLayout.workerWordCount
            readHandlerRow(from: workerWords, into: &sample.handler)
            workerWords += handlerWords
            frame.workers.append(sample)
        }
        let connectionsAt = connectionRows(of: words)
        let connectionCount = min(connectionCapacity, max(0, Int(truncatingIfNeeded: AtomicWord_loadRelaxed(connectionsAt))))
        frame.connections.removeAll(keepingCapacity: true)
        var connectionWords = connectionsAt + 1
        for _ in 0..<connectionCount {
            var connection = ConnectionSample()
            connection.read(from: connectionWords, { AtomicWord_loadRelaxed($0) })
            connectionWords += FrameLayout.connectionWordCount
            frame.connections.append(connection)
        }
        // acquiring fence: orders the data loads above before the re-check; if any of them saw
        // a newer frame's store, the writer's releasing fence makes the odd sequence visible.
        AtomicWord_fenceAcquire()
        return AtomicWord_loadRelaxed(words) == before && frame.number == number
    }

    /// Where an entry's connection count lies, followed by its rows: after room for
    /// `workerCapacity` worker rows, however many a frame holds.
    private func connectionRows(of entry: UnsafeMutablePointer<UInt64>) -> UnsafeMutablePointer<UInt64> {
        entry + 1 + FrameLayout.frameWordCount + handlerWords + workerCapacity * (FrameLayout.workerWordCount + handlerWords)
    }

    /// Stores a row of handler words (missing words as 0, extra ones left out).
    private func writeHandlerRow(_ row: [UInt64], to words: UnsafeMutablePointer<UInt64>) {
        // relaxed data stores: ordered by the frame's sequence (see `publish`).
        for index in 0..<handlerWords { AtomicWord_storeRelaxed(words + index, index < row.count ? row[index] : 0) }
    }

    private func readHandlerRow(from words: UnsafeMutablePointer<UInt64>, into row: inout [UInt64]) {
        if row.count != handlerWords { row = [UInt64](repeating: 0, count: handlerWords) }
        // relaxed data loads: checked by the frame's sequence (see `read`).
        for index in 0..<handlerWords { row[index] = AtomicWord_loadRelaxed(words + index) }
    }

    /// The newest frame, or nil before the first one.
    public func latest() -> StatsFrame? {
        var frame = StatsFrame()
        // Bounded: a writer laps a reader only so often, and a foreign ring whose head names a
        // frame that never completes must not hang the reader.
        for _ in 0..<(4 * capacity + 16) {
            let number = newest
            guard number > 0 else { return nil }
            if read(number, into: &frame) { return frame }
        }
        return nil
    }

    /// Up to `count` most recent frames, oldest first (fewer if the ring holds fewer).
    public func recent(_ count: Int) -> [StatsFrame] {
        var reader = StatsReader(ring: self, startingAt: max(Int64(oldest), Int64(newest) - Int64(max(0, count)) + 1))
        var frames: [StatsFrame] = []
        var frame = StatsFrame()
        while frames.count < 4 * capacity, reader.next(into: &frame) { frames.append(frame) }
        return frames.suffix(count)
    }

    /// A reader positioned at the oldest frame still held.
    public func reader() -> StatsReader { StatsReader(ring: self, startingAt: Int64(max(1, oldest))) }

    /// A reader that will return only frames published from now on.
    public func readerFromNow() -> StatsReader { StatsReader(ring: self, startingAt: Int64(newest) + 1) }
}

/// A cursor over a `StatsRing`: returns each frame once, in order. A reader that falls more
/// than the ring's capacity behind skips to the oldest frame still held and counts the frames
/// it lost in `missed`.
public struct StatsReader: Sendable {
    public let ring: StatsRing
    /// Number of the next frame to return.
    public private(set) var nextNumber: UInt64
    /// Frames overwritten before this reader got to them.
    public private(set) var missed: UInt64 = 0

    init(ring: StatsRing, startingAt number: Int64) {
        self.ring = ring
        nextNumber = UInt64(max(1, number))
    }

    /// Copies the next frame into `frame`; false when the reader has caught up.
    public mutating func next(into frame: inout StatsFrame) -> Bool {
        while true {
            let newest = ring.newest
            guard nextNumber <= newest else { return false }
            if ring.read(nextNumber, into: &frame) {
                nextNumber += 1
                return true
            }
            // Overwritten: resynchronise on the oldest frame still held, one lap back.
            let oldest = newest > UInt64(ring.capacity) ? newest - UInt64(ring.capacity) + 1 : 1
            let resume = max(nextNumber + 1, oldest + 1)
            missed += resume - nextNumber
            nextNumber = resume
        }
    }
}
