import CAtomicWords

/// Who an engine is and how it was started: what its ring's header says to every viewer.
public struct EngineIdentity: Sendable, Hashable {
    /// The engine's process.
    public var pid: Int32 = 0
    /// The process's start time in clock ticks since boot (field 22 of /proc/PID/stat): with
    /// the pid, it names the process even after the pid is reused.
    public var processStartTicks: UInt64 = 0
    /// "io_uring" or "epoll".
    public var backend = ""
    /// "address:port" the engine listens on.
    public var address = ""
    /// Why io_uring was not used, when the backend fell back to epoll ("" otherwise).
    public var note = ""
    /// The protocol served (`ServerProtocol.name`: "echo", "http", a server's own); at most
    /// 16 bytes. A ring written before the field existed reads as "echo".
    public var protocolName = "echo"
    /// The sampling period, in ns.
    public var periodNs: UInt64 = 0
    /// The layout version the ring was written with.
    public var layoutVersion: UInt64 = FrameLayout.version
    /// The handler metrics its frames carry (`HandlerSchema.empty`: none).
    public var handler = HandlerSchema.empty
    /// The name of the handler's per-connection figure (`ServerProtocol.connectionFigure`:
    /// "requests" for HTTP; "" when it has none); at most 15 bytes.
    public var connectionFigure = ""

    /// The period within the sampler's range (50 ms … 60 s), whatever a shared header says.
    public var clampedPeriodNs: UInt64 { min(max(periodNs, 50_000_000), 60_000_000_000) }

    public init() {}
}

/// Why a shared ring could not be attached.
public enum RingAttachError: Error, Hashable, Sendable, CustomStringConvertible {
    /// fstat or mmap failed with this errno.
    case unreadable(Int32)
    /// The file does not start with a ring header.
    case notARing
    /// A ring written with another layout version.
    case layoutVersion(UInt64)
    /// The header's sizes do not match the file.
    case inconsistent

    public var description: String {
        switch self {
        case .unreadable(let code): "cannot map the stats ring (errno \(code))"
        case .notARing: "not an iocptop stats ring"
        case .layoutVersion(let version):
            "the engine writes frame layout version \(version); this iocptop reads version \(FrameLayout.version) (use the same iocptop build)"
        case .inconsistent: "the stats ring's header does not match its size"
        }
    }
}

/// The first page of a stats ring: magic, layout version, sizes, and the engine's identity.
///
/// Word layout (64-bit words): 0 magic, 1 layout version, 2 capacity, 3 worker capacity,
/// 4 frame field count, 5 worker field count, 6 words per frame, 7 sampling period (ns),
/// 8 pid, 9 process start ticks, then four strings of fixed size (backend, address, note,
/// protocol — the last in words that older rings leave zero).
/// Word `headWord` is the newest frame number, alone on its cache line; entries start at
/// `firstEntryWord`. Every word is written with relaxed atomic stores before the ring is
/// shared (a descriptor passed over a socket: the kernel orders it), except the period, which a
/// running engine may change: a relaxed word that means nothing beyond itself.
enum RingHeader {
    /// "IOCPTOPR" in little-endian ASCII.
    static let magic: UInt64 = 0x5250_4F54_5043_4F49
    static let headWord = 512
    static let firstEntryWord = 528
    static let backendWords = (offset: 10, count: 2)
    static let addressWords = (offset: 12, count: 8)
    static let noteWords = (offset: 20, count: 24)
    static let protocolWords = (offset: 44, count: 2)
    /// The handler schema (part of the layout, written with it): word 46 the metric count,
    /// word 47 the words of one row, then one 16-word entry per metric from word 48 — name (3
    /// words), help (10), kind, unit, one spare. Zero in rings written before it existed.
    static let handlerCountWord = 46
    static let handlerWordsWord = 47
    static let handlerEntriesWord = 48
    static let handlerEntryWords = 16
    /// Connection rows a frame holds, and the fields of one (after the handler schema).
    static let connectionCapacityWord = 304
    static let connectionFieldsWord = 305
    static let connectionFigureWords = (offset: 306, count: 2)

    /// Words of one frame: the sequence word, the fixed fields, the retired workers' handler
    /// row, then one row per worker (its fields and its handler words).
    static func frameWords(workerCapacity: Int, handlerWords: Int = 0, connectionCapacity: Int = 0) -> Int {
        1 + FrameLayout.frameWordCount + handlerWords + workerCapacity * (FrameLayout.workerWordCount + handlerWords)
            + 1 + connectionCapacity * FrameLayout.connectionWordCount
    }

    private static let unitCodes: [FieldUnit] = [.none, .nanoseconds, .microseconds, .bytes]

    static func writeSchema(_ schema: HandlerSchema, to words: UnsafeMutablePointer<UInt64>) {
        // relaxed: written before the ring is shared (see the type's comment).
        AtomicWord_storeRelaxed(words + handlerCountWord, UInt64(schema.metrics.count))
        AtomicWord_storeRelaxed(words + handlerWordsWord, UInt64(schema.wordCount))
        for (index, metric) in schema.metrics.enumerated() {
            let entry = handlerEntriesWord + index * handlerEntryWords
            writeString(metric.name, to: words, (entry, 3))
            writeString(metric.help, to: words, (entry + 3, 10))
            AtomicWord_storeRelaxed(words + entry + 13, metric.kind.rawValue)
            AtomicWord_storeRelaxed(words + entry + 14, UInt64(unitCodes.firstIndex(of: metric.unit) ?? 0))
        }
    }

    /// The schema the header declares, or nil when it is not a valid one.
    static func readSchema(from words: UnsafeMutablePointer<UInt64>) -> HandlerSchema? {
        // relaxed: immutable once the ring is shared.
        let count = Int(truncatingIfNeeded: AtomicWord_loadRelaxed(words + handlerCountWord))
        guard count >= 0, count <= HandlerSchema.maxMetrics else { return nil }
        var metrics: [HandlerMetric] = []
        for index in 0..<count {
            let entry = handlerEntriesWord + index * handlerEntryWords
            let unitCode = Int(truncatingIfNeeded: AtomicWord_loadRelaxed(words + entry + 14))
            guard let kind = HandlerMetric.Kind(rawValue: AtomicWord_loadRelaxed(words + entry + 13)),
                  unitCodes.indices.contains(unitCode) else { return nil }
            metrics.append(HandlerMetric(name: readString(from: words, (entry, 3)), kind: kind,
                                         unit: unitCodes[unitCode], help: readString(from: words, (entry + 3, 10))))
        }
        guard let schema = try? HandlerSchema(metrics),
              schema.wordCount == Int(truncatingIfNeeded: AtomicWord_loadRelaxed(words + handlerWordsWord)) else { return nil }
        return schema
    }

    static func mappedBytes(capacity: Int, frameWords: Int) -> Int {
        let bytes = (firstEntryWord + capacity * frameWords) * 8
        return (bytes + 4095) & ~4095
    }

    /// Sizes a reader needs to check before trusting the ring.
    struct Layout {
        var magic: UInt64
        var version: UInt64
        var capacity: Int
        var workerCapacity: Int
        var frameFields: Int
        var workerFields: Int
        var frameWords: Int
        /// Words of one handler row, when the header's schema is valid.
        var handlerWords: Int?
        var connectionCapacity: Int
        var connectionFields: Int

        func check(mappedBytes: Int) throws(RingAttachError) {
            guard magic == RingHeader.magic else { throw .notARing }
            guard version == FrameLayout.version else { throw .layoutVersion(version) }
            guard frameFields == FrameLayout.frameFields.count, workerFields == FrameLayout.workerFields.count,
                  capacity >= 2, capacity <= 1 << 20, workerCapacity >= 1, workerCapacity <= 1 << 16,
                  connectionFields == FrameLayout.connectionFields.count, connectionCapacity >= 0, connectionCapacity <= 1 << 12,
                  let handlerWords,
                  frameWords == RingHeader.frameWords(workerCapacity: workerCapacity, handlerWords: handlerWords,
                                                      connectionCapacity: connectionCapacity),
                  RingHeader.mappedBytes(capacity: capacity, frameWords: frameWords) <= mappedBytes
            else { throw .inconsistent }
        }
    }

    static func writeLayout(to words: UnsafeMutablePointer<UInt64>, capacity: Int, workerCapacity: Int,
                            connectionCapacity: Int, frameWords: Int) {
        // relaxed: written before the ring is shared (see the type's comment).
        let values: [UInt64] = [magic, FrameLayout.version, UInt64(capacity), UInt64(workerCapacity),
                                UInt64(FrameLayout.frameFields.count), UInt64(FrameLayout.workerFields.count), UInt64(frameWords)]
        for (index, value) in values.enumerated() { AtomicWord_storeRelaxed(words + index, value) }
        AtomicWord_storeRelaxed(words + connectionCapacityWord, UInt64(connectionCapacity))
        AtomicWord_storeRelaxed(words + connectionFieldsWord, UInt64(FrameLayout.connectionFields.count))
    }

    static func readLayout(from words: UnsafeMutablePointer<UInt64>) -> Layout {
        // relaxed: immutable once the ring is shared.
        let load = { (index: Int) in AtomicWord_loadRelaxed(words + index) }
        return Layout(magic: load(0), version: load(1), capacity: Int(truncatingIfNeeded: load(2)),
                      workerCapacity: Int(truncatingIfNeeded: load(3)), frameFields: Int(truncatingIfNeeded: load(4)),
                      workerFields: Int(truncatingIfNeeded: load(5)), frameWords: Int(truncatingIfNeeded: load(6)),
                      handlerWords: readSchema(from: words)?.wordCount,
                      connectionCapacity: Int(truncatingIfNeeded: load(connectionCapacityWord)),
                      connectionFields: Int(truncatingIfNeeded: load(connectionFieldsWord)))
    }

    static func writeIdentity(_ identity: EngineIdentity, to words: UnsafeMutablePointer<UInt64>) {
        // relaxed: written before the ring is shared (see the type's comment).
        AtomicWord_storeRelaxed(words + 7, identity.periodNs)
        AtomicWord_storeRelaxed(words + 8, UInt64(UInt32(bitPattern: identity.pid)))
        AtomicWord_storeRelaxed(words + 9, identity.processStartTicks)
        writeString(identity.backend, to: words, backendWords)
        writeString(identity.address, to: words, addressWords)
        writeString(identity.note, to: words, noteWords)
        writeString(identity.protocolName, to: words, protocolWords)
        writeString(identity.connectionFigure, to: words, connectionFigureWords)
    }

    static func writePeriod(_ periodNs: UInt64, to words: UnsafeMutablePointer<UInt64>) {
        // relaxed: a setting that means nothing beyond itself; readers pick it up when they look.
        AtomicWord_storeRelaxed(words + 7, periodNs)
    }

    static func readIdentity(from words: UnsafeMutablePointer<UInt64>) -> EngineIdentity {
        var identity = EngineIdentity()
        // relaxed: see writeIdentity and writePeriod.
        identity.layoutVersion = AtomicWord_loadRelaxed(words + 1)
        identity.periodNs = AtomicWord_loadRelaxed(words + 7)
        identity.pid = Int32(bitPattern: UInt32(truncatingIfNeeded: AtomicWord_loadRelaxed(words + 8)))
        identity.processStartTicks = AtomicWord_loadRelaxed(words + 9)
        identity.backend = readString(from: words, backendWords)
        identity.address = readString(from: words, addressWords)
        identity.note = readString(from: words, noteWords)
        let protocolName = readString(from: words, protocolWords)
        identity.protocolName = protocolName.isEmpty ? "echo" : protocolName
        identity.handler = readSchema(from: words) ?? .empty
        identity.connectionFigure = readString(from: words, connectionFigureWords)
        return identity
    }

    /// Stores UTF-8 bytes (cut to fit, zero-padded) in `place.count` words.
    private static func writeString(_ text: String, to words: UnsafeMutablePointer<UInt64>, _ place: (offset: Int, count: Int)) {
        var bytes = Array(text.utf8.prefix(place.count * 8 - 1))
        bytes += [UInt8](repeating: 0, count: place.count * 8 - bytes.count)
        for index in 0..<place.count {
            var word: UInt64 = 0
            for byte in 0..<8 { word |= UInt64(bytes[index * 8 + byte]) << (8 * UInt64(byte)) }
            AtomicWord_storeRelaxed(words + place.offset + index, word)
        }
    }

    private static func readString(from words: UnsafeMutablePointer<UInt64>, _ place: (offset: Int, count: Int)) -> String {
        var bytes: [UInt8] = []
        for index in 0..<place.count {
            let word = AtomicWord_loadRelaxed(words + place.offset + index)
            for byte in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: word >> (8 * UInt64(byte)))) }
        }
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }
}
