import CAtomicWords
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
/// The storage is anonymous memory mapped once: pages a frame never touches (slots of workers
/// that do not exist) cost nothing.
public final class StatsRing: @unchecked Sendable {
    /// How many frames the ring holds.
    public let capacity: Int
    /// How many workers one frame can hold.
    public let workerCapacity: Int
    private let frameWords: Int
    private let storage: UnsafeMutablePointer<UInt64>
    private let storageBytes: Int
    /// Number of the newest complete frame (0: none yet).
    private let head: UnsafeMutablePointer<UInt64>

    public init(capacity: Int = 512, workerCapacity: Int) {
        precondition(capacity >= 2 && workerCapacity >= 1)
        self.capacity = capacity
        self.workerCapacity = workerCapacity
        frameWords = 1 + StatsFrame.headerWordCount + workerCapacity * WorkerSample.wordCount
        storageBytes = (capacity * frameWords + 16) * 8
        let raw = mmap(nil, storageBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        precondition(raw != MAP_FAILED, "cannot map \(storageBytes) bytes for the stats ring")
        // The head sits on its own cache line, before the entries.
        head = raw!.bindMemory(to: UInt64.self, capacity: capacity * frameWords + 16)
        storage = head + 16
    }

    deinit { munmap(UnsafeMutableRawPointer(head), storageBytes) }

    private func entry(_ number: UInt64) -> UnsafeMutablePointer<UInt64> {
        storage + Int((number - 1) % UInt64(capacity)) * frameWords
    }

    /// Number of the newest complete frame (0: none yet).
    public var newest: UInt64 {
        // acquiring: pairs with the releasing store in `publish`; the frame is complete.
        AtomicWord_loadAcquire(head)
    }

    /// Number of the oldest frame still held (0: none yet).
    public var oldest: UInt64 {
        let newest = newest
        return newest == 0 ? 0 : (newest > UInt64(capacity) ? newest - UInt64(capacity) + 1 : 1)
    }

    /// Appends `frame` as the next frame and returns its number. Only one thread may publish.
    /// Workers beyond `workerCapacity` are left out.
    @discardableResult
    public func publish(_ frame: StatsFrame) -> UInt64 {
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
        var workerWords = words + 1 + StatsFrame.headerWordCount
        for worker in stored.workers {
            worker.write(to: workerWords, AtomicWord_storeRelaxed)
            workerWords += WorkerSample.wordCount
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
        guard number > 0 else { return false }
        let words = entry(number)
        // acquiring: pairs with the releasing even store in `publish`.
        let before = AtomicWord_loadAcquire(words)
        guard before == 2 * number else { return false }
        let count = min(workerCapacity, frame.readHeader(from: words + 1, { AtomicWord_loadRelaxed($0) }))
        frame.workers.removeAll(keepingCapacity: true)
        var workerWords = words + 1 + StatsFrame.headerWordCount
        for _ in 0..<count {
            var sample = WorkerSample()
            sample.read(from: workerWords, { AtomicWord_loadRelaxed($0) })
            frame.workers.append(sample)
            workerWords += WorkerSample.wordCount
        }
        // acquiring fence: orders the data loads above before the re-check; if any of them saw
        // a newer frame's store, the writer's releasing fence makes the odd sequence visible.
        AtomicWord_fenceAcquire()
        return AtomicWord_loadRelaxed(words) == before && frame.number == number
    }

    /// The newest frame, or nil before the first one.
    public func latest() -> StatsFrame? {
        var frame = StatsFrame()
        while true {
            let number = newest
            guard number > 0 else { return nil }
            if read(number, into: &frame) { return frame }
        }
    }

    /// Up to `count` most recent frames, oldest first (fewer if the ring holds fewer).
    public func recent(_ count: Int) -> [StatsFrame] {
        var reader = StatsReader(ring: self, startingAt: max(Int64(oldest), Int64(newest) - Int64(count) + 1))
        var frames: [StatsFrame] = []
        var frame = StatsFrame()
        while reader.next(into: &frame) { frames.append(frame) }
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
