import NativeThreads
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Appends every frame a ring publishes to a recording file, on a thread of its own.
///
/// The thread follows the ring with a `StatsReader` (every frame, in order; frames it was lapped
/// on are counted as missed) and writes each as one record with one `write`, so a kill leaves at
/// most one torn record at the end. The file never grows past `maxBytes`: the recorder stops
/// there and says so in `stopReason`.
public final class FrameRecorder: @unchecked Sendable {
    // @unchecked: `written` and the reader belong to the recorder thread after `start`;
    // `stopReason`, `thread` and `running` are behind their mutexes; `stopping` and the missed
    // count are atomic.
    public let path: String
    public let maxBytes: Int
    private let ring: StatsRing
    /// The handler metrics the ring's frames carry, written with each record.
    private let handler: HandlerSchema
    private let fd: CInt
    private var written = 0
    private var reader: StatsReader?
    private var thread: NativeThread?
    /// Whether the thread runs (until `stop` has joined it); guarded with the join by its mutex.
    private let running = Mutex(false)
    private let stopping = Atomic<Bool>(false)
    private let reason = Mutex<String?>(nil)
    private let missedFrames = Atomic<UInt64>(0)

    /// Why recording stopped early (the size bound, a write error), or nil.
    public var stopReason: String? { reason.withLock { $0 } }

    /// Frames the recorder was too slow for (the ring overwrote them first).
    // relaxed: a count read for a message; nothing else is published through it.
    public var missed: UInt64 { missedFrames.load(ordering: .relaxed) }

    /// Creates `path` and writes the header. An existing file is never overwritten (an empty
    /// one is appended to): a mistyped `--record` must not cost someone their file.
    /// - Throws: a one-line description when the file cannot be written.
    public init(path: String, ring: StatsRing, maxBytes: Int) throws(RecorderError) {
        self.path = path
        self.ring = ring
        self.maxBytes = maxBytes
        // O_APPEND: even a file that gains bytes between the check and the write is not overwritten.
        let flags = O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW
        var created = true
        var descriptor = open(path, flags | O_CREAT | O_EXCL, 0o644)
        if descriptor < 0 && errno == EEXIST {
            created = false
            descriptor = open(path, flags)
        }
        guard descriptor >= 0 else { throw RecorderError(message: "cannot write \(path): \(String(cString: strerror(errno)))") }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG, status.st_size == 0 else {
            close(descriptor)
            throw RecorderError(message: "\(path) already exists: not overwritten (remove it or record to another file)")
        }
        let identity = ring.identity
        handler = identity.handler
        let header = FrameRecording.header(identity: identity)
        guard header.count <= maxBytes, Self.append(header, to: descriptor) else {
            let code = header.count <= maxBytes ? errno : EFBIG
            close(descriptor)
            if created { unlink(path) }
            throw RecorderError(message: "cannot write \(path): \(String(cString: strerror(code)))")
        }
        fd = descriptor
        written = header.count
    }

    deinit {
        stop()
        close(fd)
    }

    /// Starts following the ring from its newest frame (the first frame when there is none yet).
    /// The thread holds the recorder until `stop`: call it (or `finish`) when done.
    public func start() {
        running.withLock { running in
            guard !running, !stopping.load(ordering: .relaxed) else { return }
            reader = StatsReader(ring: ring, startingAt: Int64(max(1, ring.newest)))
            do {
                thread = try NativeThread.start { self.run() }
                running = true
            } catch {
                reason.withLock { $0 = "recording not started: \(error)" }
            }
        }
    }

    /// Writes what is left in the ring and stops; returns once the thread has ended.
    public func stop() {
        running.withLock { running in
            // releasing: pairs with the thread's acquiring load of `stopping`.
            stopping.store(true, ordering: .releasing)
            guard running else { return }
            thread?.join()
            running = false
        }
    }

    private func run() {
        guard var reader else { return }
        var frame = StatsFrame()
        while true {
            let last = stopping.load(ordering: .acquiring)
            while reader.next(into: &frame) {
                let record = FrameRecording.record(frame, handler: handler)
                guard written + record.count <= maxBytes else {
                    reason.withLock { $0 = "recording stopped at \(written / 1_000_000) MB: --record-max-mb \(maxBytes / 1_000_000) reached (\(path))" }
                    return
                }
                guard append(record) else {
                    let code = errno
                    reason.withLock { $0 = "recording stopped: cannot write \(path): \(String(cString: strerror(code)))" }
                    return
                }
            }
            // relaxed: see `missed`.
            missedFrames.store(reader.missed, ordering: .relaxed)
            if last { return }
            // Half a sampling period (at most 50 ms, so `stop` returns soon): every frame is read
            // long before the ring laps it.
            usleep(useconds_t(min(50_000, max(10_000, ring.identity.clampedPeriodNs / 2_000))))
        }
    }

    /// One `write` (retried on a partial write): true when every byte went out.
    private func append(_ bytes: [UInt8]) -> Bool {
        guard Self.append(bytes, to: fd) else { return false }
        written += bytes.count
        return true
    }

    private static func append(_ bytes: [UInt8], to fd: CInt) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }
}

/// Why a recording could not be started.
public struct RecorderError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
