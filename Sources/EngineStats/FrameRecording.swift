#if canImport(Glibc)
import Glibc
#endif

/// The recording file: the ring's frames kept on disk, readable after fields change.
///
/// Layout (little-endian): the file header — magic `IOCPTREC`, format version, the frame
/// layout version it was written with, the engine's identity, then the field table (for each
/// frame field and each worker field: name, kind, unit, width in words) — closed by an FNV-1a
/// checksum of everything before it. Then one record per frame: a 4-byte payload length, a
/// 4-byte checksum of the payload (the low half of its 64-bit FNV-1a), and the payload: the frame's fields in the order of the
/// file's own field table (each word a LEB128 varint, each histogram its non-empty buckets as
/// index gap and count), the worker count, the worker rows. A reader maps fields by name, so
/// a recording made before a field was added still replays (the new field reads as zero), and
/// a torn tail (a kill -9 mid-write) fails its length or checksum and is where reading stops.
///
/// Format 2 adds the connection rows: after the worker table, a connection field table and the
/// name of the handler's per-connection figure; in each record, after the worker rows, the
/// connection count and rows (the frame's top connections and closes). Format 1 files read
/// with no connection rows.
public enum FrameRecording {
    static let magic: UInt64 = 0x4345_5254_5043_4F49  // "IOCPTREC"
    /// Version of this file format (not of the frame layout). A reader refuses newer ones.
    public static let formatVersion: UInt64 = 2
    /// A record larger than this is garbage, not a frame (256 workers × ~3 KiB is under 1 MiB).
    static let largestRecord = 8 << 20

    /// Why a recording cannot be read at all.
    public enum ReadError: Error, Hashable, Sendable, CustomStringConvertible {
        case unreadable(String, Int32)
        case empty
        case notARecording
        case futureVersion(UInt64)
        case damagedHeader
        case notAFile
        case tooLarge(Int)

        public var description: String {
            switch self {
            case .unreadable(let path, let code): "cannot read \(path): \(String(cString: strerror(code)))"
            case .empty: "the recording is empty"
            case .notARecording: "not an iocptop recording"
            case .futureVersion(let version):
                "recording format \(version) is newer than this iocptop reads (\(formatVersion)); use a newer iocptop"
            case .damagedHeader: "the recording's header is damaged or incomplete"
            case .notAFile: "not a regular file"
            case .tooLarge(let size): "\(size / 1_000_000) MB is larger than iocptop reads (\(largestFile / 1_000_000) MB)"
            }
        }
    }

    /// 64-bit FNV-1a.
    static func checksum<C: Collection>(_ bytes: C) -> UInt64 where C.Element == UInt8 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x100_0000_01b3
        }
        return hash
    }

    // MARK: writing

    /// The file header for an engine with `identity`, in the current layout.
    public static func header(identity: EngineIdentity) -> [UInt8] {
        var out = ByteWriter()
        out.word(magic)
        out.word(formatVersion)
        out.word(FrameLayout.version)
        out.word(UInt64(UInt32(bitPattern: identity.pid)))
        out.word(identity.processStartTicks)
        out.word(identity.periodNs)
        out.string(identity.backend)
        out.string(identity.address)
        out.string(identity.note)
        // Wall clock and monotonic clock at the same moment: a frame's wall-clock time is
        // the first plus (its monotonic timestamp − the second).
        var realtime = timespec(), monotonic = timespec()
        clock_gettime(CLOCK_REALTIME, &realtime)
        clock_gettime(CLOCK_MONOTONIC, &monotonic)
        out.word(UInt64(realtime.tv_sec) &* 1_000_000_000 &+ UInt64(realtime.tv_nsec))
        out.word(UInt64(monotonic.tv_sec) &* 1_000_000_000 &+ UInt64(monotonic.tv_nsec))
        // A server's handler metrics follow the fixed fields as columns named "handler.NAME":
        // in the frame table the retired workers' row, in the worker table each worker's (a
        // reader that does not know them skips them by width).
        let handler = identity.handler.metrics
        out.word(UInt64(FrameLayout.frameFields.count + handler.count))
        for field in FrameLayout.frameFields { out.field(field.name, field.kind, field.unit, field.width) }
        for metric in handler { out.field(handlerPrefix + metric.name, metric.fieldKind, metric.unit, metric.width) }
        out.word(UInt64(FrameLayout.workerFields.count + handler.count))
        for field in FrameLayout.workerFields { out.field(field.name, field.kind, field.unit, field.width) }
        for metric in handler { out.field(handlerPrefix + metric.name, metric.fieldKind, metric.unit, metric.width) }
        out.word(UInt64(FrameLayout.connectionFields.count))
        for field in FrameLayout.connectionFields { out.field(field.name, field.kind, field.unit, field.width) }
        out.string(identity.connectionFigure)
        out.word(checksum(out.bytes))
        return out.bytes
    }

    /// Names of handler metric columns start with this.
    static let handlerPrefix = "handler."

    /// One frame as a record (length, checksum, payload), in the current layout, with the
    /// handler rows `handler` lays out (the schema the header was written with).
    public static func record(_ frame: StatsFrame, handler: HandlerSchema) -> [UInt8] {
        var payload = ByteWriter()
        payload.bytes.reserveCapacity(512 + frame.workers.count * 256)
        for field in FrameLayout.frameFields { append(field, of: frame, to: &payload) }
        append(handler, row: frame.retiredHandler, to: &payload)
        payload.varint(UInt64(frame.workers.count))
        for worker in frame.workers {
            for field in FrameLayout.workerFields { append(field, of: worker, to: &payload) }
            append(handler, row: worker.handler, to: &payload)
        }
        payload.varint(UInt64(frame.connections.count))
        for connection in frame.connections {
            for field in FrameLayout.connectionFields { append(field, of: connection, to: &payload) }
        }
        var out = ByteWriter()
        out.u32(UInt32(payload.bytes.count))
        out.u32(UInt32(truncatingIfNeeded: checksum(payload.bytes)))
        out.bytes += payload.bytes
        return out.bytes
    }

    /// A one-word field as a varint; a histogram as its non-empty buckets only (count, then
    /// index gap and count for each): most of its 194 buckets are empty.
    private static func append<Record>(_ field: FrameField<Record>, of record: Record, to out: inout ByteWriter) {
        guard let histogram = field.histogram(of: record) else {
            out.varint(field.word(of: record))
            return
        }
        var used = 0
        for index in 0..<LatencyBuckets.count where histogram[index] != 0 { used += 1 }
        out.varint(UInt64(used))
        var last = 0
        for index in 0..<LatencyBuckets.count where histogram[index] != 0 {
            out.varint(UInt64(index - last))
            out.varint(histogram[index])
            last = index
        }
    }

    /// A row of handler words, metric by metric, encoded as the fields are (missing words: 0).
    private static func append(_ handler: HandlerSchema, row: [UInt64], to out: inout ByteWriter) {
        for (index, metric) in handler.metrics.enumerated() {
            let start = handler.offsets[index]
            let word = { (at: Int) -> UInt64 in start + at < row.count ? row[start + at] : 0 }
            guard metric.kind == .histogram else {
                out.varint(word(0))
                continue
            }
            var used = 0
            for bucket in 0..<metric.width where word(bucket) != 0 { used += 1 }
            out.varint(UInt64(used))
            var last = 0
            for bucket in 0..<metric.width where word(bucket) != 0 {
                out.varint(UInt64(bucket - last))
                out.varint(word(bucket))
                last = bucket
            }
        }
    }

    // MARK: reading

    /// A recording read: its engine, its whole frames (kept encoded, decoded on demand: a frame
    /// decoded takes ~12× its encoded size), and where (if anywhere) it stopped early.
    public struct Contents: Sendable {
        public var identity: EngineIdentity
        /// CLOCK_REALTIME and CLOCK_MONOTONIC (ns) read together when the recording started.
        public var realtimeNs: UInt64 = 0
        public var monotonicNs: UInt64 = 0
        /// Set when the file ends in a torn or damaged record: what was wrong, at which byte.
        public var truncation: String?
        /// Each whole frame's CLOCK_MONOTONIC timestamp, in order.
        public let timestamps: [UInt64]
        private let bytes: [UInt8]
        private let records: [Range<Int>]
        private let frameColumns: [Column]
        private let workerColumns: [Column]
        /// Nil for a format 1 recording (no connection rows).
        private let connectionColumns: [Column]?

        init(identity: EngineIdentity, realtimeNs: UInt64, monotonicNs: UInt64, truncation: String?, timestamps: [UInt64],
             bytes: [UInt8], records: [Range<Int>], frameColumns: [Column], workerColumns: [Column], connectionColumns: [Column]?) {
            (self.identity, self.realtimeNs, self.monotonicNs, self.truncation, self.timestamps) =
                (identity, realtimeNs, monotonicNs, truncation, timestamps)
            (self.bytes, self.records, self.frameColumns, self.workerColumns, self.connectionColumns) =
                (bytes, records, frameColumns, workerColumns, connectionColumns)
        }

        /// Whole frames in the recording.
        public var count: Int { records.count }

        /// The frame at `index` (0 ..< count). Every record was checked when the file was read.
        public func frame(at index: Int) -> StatsFrame {
            decode(bytes[records[index]], frameColumns, workerColumns, connectionColumns) ?? StatsFrame()
        }

        /// Every frame, decoded (for small recordings and tests).
        public var frames: [StatsFrame] { (0..<count).map(frame(at:)) }

        /// A frame's wall-clock time (ns since the epoch), from its monotonic timestamp.
        public func wallClockNs(ofTimestamp timestampNs: UInt64) -> UInt64 { realtimeNs &+ (timestampNs &- monotonicNs) }
        public func wallClockNs(of frame: StatsFrame) -> UInt64 { wallClockNs(ofTimestamp: frame.timestampNs) }
    }

    /// Largest recording read (`--record-max-mb` stops writers below it).
    public static let largestFile = 4_000_000_000

    /// Reads a recording. Whole records are returned even when the tail is torn.
    public static func read(path: String) throws(ReadError) -> Contents {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .unreadable(path, errno) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw .unreadable(path, errno) }
        guard status.st_mode & S_IFMT == S_IFREG else { throw .notAFile }
        guard Int(status.st_size) <= largestFile else { throw .tooLarge(Int(status.st_size)) }
        var bytes = [UInt8](repeating: 0, count: Int(status.st_size))
        var filled = 0
        while filled < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw .unreadable(path, errno) }
            if n == 0 { break }
            filled += n
        }
        // A file that shrank while being read: what was read.
        bytes.removeLast(bytes.count - filled)
        return try parse(bytes)
    }

    /// Fields renamed since recordings were first written: old name → current name.
    static let renamedFields = ["auto_completions_per_s": "auto_throughput"]

    /// Whether a field recorded with `recorded` kind reads as one of `current` kind: the same,
    /// or a one-word gauge of ns later marked an instant (same value, not exported).
    static func compatible(recorded: String, current: FieldKind) -> Bool {
        recorded == current.rawValue || (recorded == FieldKind.gauge.rawValue && current == .instant)
    }

    /// A recorded field: its width in the file, and the current field of the same name, kind,
    /// unit and width (nil: a field this iocptop does not know, skipped).
    struct Column: Sendable {
        var width: Int
        var frameField: FrameField<StatsFrame>?
        var workerField: FrameField<WorkerSample>?
        var connectionField: FrameField<ConnectionSample>?
        /// A handler metric's column: where its words go in a row of `handlerWords`.
        var handlerOffset: Int?
        var handlerWords = 0
    }

    static func parse(_ bytes: [UInt8]) throws(ReadError) -> Contents {
        guard !bytes.isEmpty else { throw .empty }
        var input = ByteReader(bytes: bytes)
        guard let magicWord = input.word(), magicWord == magic else { throw .notARecording }
        guard let version = input.word() else { throw .damagedHeader }
        guard version <= formatVersion else { throw .futureVersion(version) }
        guard input.word() != nil else { throw .damagedHeader }  // layout version: the table says it all
        var identity = EngineIdentity()
        guard let pid = input.word(), let ticks = input.word(), let period = input.word(),
              let backend = input.string(), let address = input.string(), let note = input.string()
        else { throw .damagedHeader }
        identity.pid = Int32(bitPattern: UInt32(truncatingIfNeeded: pid))
        identity.processStartTicks = ticks
        identity.periodNs = period
        identity.backend = backend
        identity.address = address
        identity.note = note
        guard let realtime = input.word(), let monotonic = input.word() else { throw .damagedHeader }
        // Handler metric columns, as the frame table declares them (the worker table repeats them).
        var handlerMetrics: [HandlerMetric] = []
        var handlerNames: [String] = []
        func columns<Record>(_ current: [FrameField<Record>], _ make: (Int, FrameField<Record>?) -> Column) throws(ReadError) -> [Column] {
            guard let count = input.word(), count <= 4096 else { throw .damagedHeader }
            var result: [Column] = []
            for _ in 0..<count {
                guard let field = input.field(), field.width >= 1, field.width <= 4096 else { throw .damagedHeader }
                if field.name.hasPrefix(handlerPrefix) {
                    var column = Column(width: field.width)
                    let name = String(field.name.dropFirst(handlerPrefix.count))
                    if let metric = HandlerMetric(recordedName: name, kind: field.kind, unit: field.unit, width: field.width) {
                        if Record.self == StatsFrame.self, !handlerNames.contains(name) {
                            handlerMetrics.append(metric)
                            handlerNames.append(name)
                        }
                        column.handlerOffset = handlerNames.firstIndex(of: name)
                    }
                    result.append(column)
                    continue
                }
                let name = renamedFields[field.name] ?? field.name
                let match = current.first {
                    $0.name == name && $0.width == field.width && $0.unit.rawValue == field.unit
                        && compatible(recorded: field.kind, current: $0.kind)
                }
                result.append(make(field.width, match))
            }
            return result
        }
        var frameColumns = try columns(FrameLayout.frameFields) { Column(width: $0, frameField: $1) }
        var workerColumns = try columns(FrameLayout.workerFields) { Column(width: $0, workerField: $1) }
        var connectionColumns: [Column]?
        if version >= 2 {
            connectionColumns = try columns(FrameLayout.connectionFields) { Column(width: $0, connectionField: $1) }
            guard let figure = input.string() else { throw .damagedHeader }
            identity.connectionFigure = figure
        }
        // The handler schema the recording carries; metric indices become word offsets.
        if let schema = try? HandlerSchema(handlerMetrics) {
            identity.handler = schema
            for index in frameColumns.indices {
                // A second column of a name, with another width, is skipped.
                let width = frameColumns[index].width
                frameColumns[index].handlerOffset = frameColumns[index].handlerOffset.flatMap {
                    schema.metrics[$0].width == width ? schema.offsets[$0] : nil
                }
                frameColumns[index].handlerWords = schema.wordCount
            }
            for index in workerColumns.indices {
                // A worker column of a metric the frame table did not declare is skipped.
                let width = workerColumns[index].width
                workerColumns[index].handlerOffset = workerColumns[index].handlerOffset.flatMap {
                    $0 < schema.offsets.count && schema.metrics[$0].width == width ? schema.offsets[$0] : nil
                }
                workerColumns[index].handlerWords = schema.wordCount
            }
        } else {
            for index in frameColumns.indices { frameColumns[index].handlerOffset = nil }
            for index in workerColumns.indices { workerColumns[index].handlerOffset = nil }
        }
        // A frame is nothing without its number and its time.
        for required in ["frame", "timestamp"] where !frameColumns.contains(where: { $0.frameField?.name == required }) {
            throw .damagedHeader
        }
        let headerEnd = input.offset
        guard let sum = input.word(), sum == checksum(bytes[0..<headerEnd]) else { throw .damagedHeader }
        identity.layoutVersion = FrameLayout.version

        var records: [Range<Int>] = []
        var timestamps: [UInt64] = []
        var truncation: String?
        while input.offset < bytes.count {
            let start = input.offset
            guard let length = input.u32(), let sum = input.u32() else {
                truncation = "torn record header at byte \(start)"
                break
            }
            let payloadStart = input.offset
            guard Int(length) <= largestRecord, let payload = input.take(Int(length)) else {
                truncation = "torn record at byte \(start) (\(length) bytes announced, \(bytes.count - start - 8) left)"
                break
            }
            guard UInt32(truncatingIfNeeded: checksum(payload)) == sum,
                  let frame = decode(payload, frameColumns, workerColumns, connectionColumns) else {
                truncation = "damaged record at byte \(start) (checksum mismatch)"
                break
            }
            records.append(payloadStart..<input.offset)
            timestamps.append(frame.timestampNs)
        }
        return Contents(identity: identity, realtimeNs: realtime, monotonicNs: monotonic, truncation: truncation,
                        timestamps: timestamps, bytes: bytes, records: records,
                        frameColumns: frameColumns, workerColumns: workerColumns, connectionColumns: connectionColumns)
    }

    fileprivate static func decode(_ payload: ArraySlice<UInt8>, _ frameColumns: [Column], _ workerColumns: [Column],
                                   _ connectionColumns: [Column]?) -> StatsFrame? {
        var input = ByteReader(bytes: Array(payload))
        var frame = StatsFrame()
        for column in frameColumns {
            if let offset = column.handlerOffset {
                guard let words = input.fieldWords(width: column.width) else { return nil }
                place(words, at: offset, in: &frame.retiredHandler, rowWords: column.handlerWords)
                continue
            }
            guard let field = column.frameField else {
                guard input.skipField(width: column.width) else { return nil }
                continue
            }
            guard let words = input.fieldWords(width: column.width) else { return nil }
            field.set(words: words, in: &frame)
        }
        // Each worker takes at least one byte per column: a count the bytes left cannot hold is
        // garbage (and must not make a 10-byte record decode into thousands of rows).
        guard let count = input.varint(), count <= 4096,
              workerColumns.isEmpty ? count == 0 : count <= UInt64((input.bytes.count - input.offset) / workerColumns.count)
        else { return nil }
        frame.workers.reserveCapacity(Int(count))
        for _ in 0..<count {
            var worker = WorkerSample()
            for column in workerColumns {
                if let offset = column.handlerOffset {
                    guard let words = input.fieldWords(width: column.width) else { return nil }
                    place(words, at: offset, in: &worker.handler, rowWords: column.handlerWords)
                    continue
                }
                guard let field = column.workerField else {
                    guard input.skipField(width: column.width) else { return nil }
                    continue
                }
                guard let words = input.fieldWords(width: column.width) else { return nil }
                field.set(words: words, in: &worker)
            }
            frame.workers.append(worker)
        }
        if let connectionColumns {
            // As for workers: a count the bytes left cannot hold is garbage.
            guard let count = input.varint(), count <= 4096,
                  connectionColumns.isEmpty ? count == 0 : count <= UInt64((input.bytes.count - input.offset) / connectionColumns.count)
            else { return nil }
            frame.connections.reserveCapacity(Int(count))
            for _ in 0..<count {
                var connection = ConnectionSample()
                for column in connectionColumns {
                    // A handler column here is not one this iocptop wrote: skipped by width.
                    guard let field = column.connectionField, column.handlerOffset == nil else {
                        guard input.skipField(width: column.width) else { return nil }
                        continue
                    }
                    guard let words = input.fieldWords(width: column.width) else { return nil }
                    field.set(words: words, in: &connection)
                }
                frame.connections.append(connection)
            }
        }
        // Every byte of a record belongs to its fields.
        return input.offset == input.bytes.count ? frame : nil
    }

    /// Puts a handler metric's words at `offset` of a row of `rowWords` words.
    private static func place(_ words: ArraySlice<UInt64>, at offset: Int, in row: inout [UInt64], rowWords: Int) {
        if row.count != rowWords { row = [UInt64](repeating: 0, count: rowWords) }
        for (index, word) in words.enumerated() where offset + index < rowWords { row[offset + index] = word }
    }
}

extension FrameField {
    /// Sets the field from its words (one, or a histogram's buckets).
    func set(words: ArraySlice<UInt64>, in record: inout Record) {
        if width == 1 {
            set(words.first ?? 0, in: &record)
            return
        }
        var copy = Array(words)
        _ = copy.withUnsafeMutableBufferPointer { buffer in
            load(into: &record, from: buffer.baseAddress!) { $0.pointee }
        }
    }
}

/// Little-endian bytes out.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func word(_ value: UInt64) { for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) } }
    /// LEB128: seven bits per byte, low first.
    mutating func varint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }
    mutating func u32(_ value: UInt32) { for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) } }
    mutating func string(_ text: String) {
        let utf8 = Array(text.utf8.prefix(4096))
        word(UInt64(utf8.count))
        bytes += utf8
    }
    mutating func field(_ name: String, _ kind: FieldKind, _ unit: FieldUnit, _ width: Int) {
        string(name)
        string(kind.rawValue)
        string(unit.rawValue)
        word(UInt64(width))
    }
}

/// Little-endian bytes in; every read is bounds-checked (nil past the end).
struct ByteReader {
    let bytes: [UInt8]
    var offset = 0

    mutating func take(_ count: Int) -> ArraySlice<UInt8>? {
        guard count >= 0, offset <= bytes.count - count else { return nil }
        defer { offset += count }
        return bytes[offset..<(offset + count)]
    }

    mutating func word() -> UInt64? {
        guard let slice = take(8) else { return nil }
        return slice.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    mutating func u32() -> UInt32? {
        guard let slice = take(4) else { return nil }
        return slice.reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func varint() -> UInt64? {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 64, by: 7) {
            guard offset < bytes.count else { return nil }
            let byte = bytes[offset]
            offset += 1
            value |= UInt64(byte & 0x7f) << UInt64(shift)
            if byte & 0x80 == 0 { return value }
        }
        return nil  // more than ten bytes: not a varint
    }

    /// A field's words as `FrameRecording.record` wrote them: one varint, or (width > 1) a
    /// histogram's non-empty buckets. Nil when the bytes do not fit the width.
    mutating func fieldWords(width: Int) -> ArraySlice<UInt64>? {
        guard width > 1 else { return varint().map { [$0][...] } }
        guard let used = varint(), used <= UInt64(width) else { return nil }
        var words = [UInt64](repeating: 0, count: width)
        var index = 0
        for _ in 0..<used {
            guard let gap = varint(), let count = varint(), gap <= UInt64(width - index) else { return nil }
            index += Int(gap)
            guard index < width else { return nil }
            words[index] = count
        }
        return words[...]
    }

    mutating func string() -> String? {
        guard let length = word(), length <= 4096, let slice = take(Int(length)) else { return nil }
        return String(decoding: slice, as: UTF8.self)
    }

    mutating func field() -> (name: String, kind: String, unit: String, width: Int)? {
        guard let name = string(), let kind = string(), let unit = string(), let width = word(), width <= 1 << 20 else { return nil }
        return (name, kind, unit, Int(width))
    }

    /// Skips a field this iocptop does not know, without allocating: false when it does not fit.
    mutating func skipField(width: Int) -> Bool {
        guard width > 1 else { return varint() != nil }
        guard let used = varint(), used <= UInt64(width) else { return false }
        var index: UInt64 = 0
        for _ in 0..<used {
            guard let gap = varint(), varint() != nil, gap <= UInt64(width) - index else { return false }
            index += gap
        }
        return index < UInt64(width) || used == 0
    }
}
