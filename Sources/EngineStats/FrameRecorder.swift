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
    // @unchecked: `fd`, `written` and the reader belong to the recorder thread after `start`;
    // `stopReason` is behind its mutex; `stopping` is atomic.
    public let path: String
    public let maxBytes: Int
    private let ring: StatsRing
    private let fd: CInt
    private var written = 0
    private var reader: StatsReader?
    private var thread = pthread_t()
    private var started = false
    private let stopping = Atomic<Bool>(false)
    private let reason = Mutex<String?>(nil)

    /// Why recording stopped early (the size bound, a write error), or nil.
    public var stopReason: String? { reason.withLock { $0 } }

    /// Frames the recorder was too slow for (the ring overwrote them first).
    public private(set) var missed: UInt64 = 0

    /// Creates `path` and writes the header. An existing file is never overwritten (an empty
    /// one is used): a mistyped `--record` must not cost someone their file.
    /// - Throws: a one-line description when the file cannot be written.
    public init(path: String, ring: StatsRing, maxBytes: Int) throws(RecorderError) {
        self.path = path
        self.ring = ring
        self.maxBytes = maxBytes
        var descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if descriptor < 0 && errno == EEXIST {
            var status = stat()
            guard stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFREG, status.st_size == 0 else {
                throw RecorderError(message: "\(path) already exists: not overwritten (remove it or record to another file)")
            }
            descriptor = open(path, O_WRONLY | O_CLOEXEC)
        }
        fd = descriptor
        guard fd >= 0 else { throw RecorderError(message: "cannot write \(path): \(String(cString: strerror(errno)))") }
        let header = FrameRecording.header(identity: ring.identity)
        guard header.count <= maxBytes, append(header) else {
            close(fd)
            throw RecorderError(message: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    deinit {
        stop()
        close(fd)
    }

    /// Starts following the ring from its newest frame (the first frame when there is none yet).
    public func start() {
        guard !started else { return }
        started = true
        reader = StatsReader(ring: ring, startingAt: Int64(max(1, ring.newest)))
        let box = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { raw in
            Unmanaged<FrameRecorder>.fromOpaque(raw!).takeRetainedValue().run()
            return nil
        }, box)
    }

    /// Writes what is left in the ring and stops.
    public func stop() {
        guard started, !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        pthread_join(thread, nil)
    }

    private func run() {
        guard var reader else { return }
        var frame = StatsFrame()
        while true {
            let last = stopping.load(ordering: .acquiring)
            while reader.next(into: &frame) {
                let record = FrameRecording.record(frame)
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
            missed = reader.missed
            if last { return }
            // Half a sampling period (at most 50 ms, so `stop` returns soon): every frame is read
            // long before the ring laps it.
            usleep(useconds_t(min(50_000, max(10_000, ring.identity.clampedPeriodNs / 2_000))))
        }
    }

    /// One `write` (retried on a partial write): true when every byte went out.
    private func append(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            offset += n
        }
        written += bytes.count
        return true
    }
}

/// Why a recording could not be started.
public struct RecorderError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
