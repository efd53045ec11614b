@testable import EngineStats
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The recording format: frames come back as written, old tables still read, damage is found.
@Suite struct FrameRecordingTests {
    func recordedFrame(number: UInt64) -> StatsFrame {
        var frame = expectedFrame(number: number)
        frame.timestampNs = number * 500_000_000
        for index in frame.workers.indices {
            for sample in 0..<Int(number % 7 + 1) { frame.workers[index].queueWait.record(UInt64(1000 << sample)) }
            frame.workers[index].service.record(number * 40_000)
        }
        frame.load.roundTrip.record(123_456)
        // Connection rows: the top ones and a close, every field a function of the number.
        for index in 0..<Int(number % 4) {
            var row = ConnectionSample()
            row.id = number * 10 + UInt64(index)
            row.slot = index
            row.state = index == 2 ? .closed : .receiving
            row.closeReason = index == 2 ? .reset : .none
            row.closeErrno = index == 2 ? 104 : 0
            row.bytesIn = number * 1_000_003
            row.bytesOutPerSecond = number * 77
            row.handlerFigure = number
            row.worker = index - 1
            row.peer = PeerAddress(ipv4: (127, 0, 0, 1), port: UInt16(40_000 + index))
            frame.connections.append(row)
        }
        return frame
    }

    func identity() -> EngineIdentity {
        var identity = EngineIdentity()
        identity.pid = 4242
        identity.processStartTicks = 99
        identity.periodNs = 500_000_000
        identity.backend = "io_uring"
        identity.address = "127.0.0.1:7007"
        identity.note = "test"
        identity.connectionFigure = "requests"
        return identity
    }

    func file(frames: [StatsFrame]) -> [UInt8] {
        frames.reduce(FrameRecording.header(identity: identity())) { $0 + FrameRecording.record($1, handler: .empty) }
    }

    @Test func handlerMetricsAreRecordedAndReadBack() throws {
        let schema = try HandlerSchema([
            .counter("requests", help: "Requests answered."),
            .gauge("in_flight", help: "Requests in progress."),
            .histogram("latency", help: "Request latency."),
            .counter("body", unit: .bytes, help: "Body bytes."),
        ])
        var described = identity()
        described.handler = schema
        let frames = (1...5 as ClosedRange<UInt64>).map { number -> StatsFrame in
            var frame = recordedFrame(number: number)
            var row = [UInt64](repeating: 0, count: schema.wordCount)
            row[schema.offsets[0]] = number * 100
            row[schema.offsets[1]] = UInt64(bitPattern: -2)
            row[schema.offsets[2] + LatencyBuckets.index(number * 1_000_000)] = number
            row[schema.offsets[3]] = 4096
            frame.retiredHandler = row
            for index in frame.workers.indices { frame.workers[index].handler = row.map { $0 &* UInt64(index + 1) } }
            return frame
        }
        let bytes = frames.reduce(FrameRecording.header(identity: described)) { $0 + FrameRecording.record($1, handler: schema) }
        let contents = try FrameRecording.parse(bytes)
        #expect(contents.truncation == nil)
        #expect(contents.identity.handler.metrics.map(\.name) == ["requests", "in_flight", "latency", "body"])
        #expect(contents.identity.handler.metrics.map(\.kind) == schema.metrics.map(\.kind))
        #expect(contents.identity.handler.metrics.map(\.unit) == schema.metrics.map(\.unit))
        #expect(contents.frames == frames, "every handler row comes back as recorded")
        // A recording written without handler metrics reads without a schema.
        let fixedOnly = try FrameRecording.parse(file(frames: frames))
        #expect(fixedOnly.identity.handler == .empty)
        #expect(fixedOnly.frames.map(\.number) == frames.map(\.number))
    }

    @Test func framesComeBackAsRecorded() throws {
        let frames = (1...20 as ClosedRange<UInt64>).map(recordedFrame)
        let contents = try FrameRecording.parse(file(frames: frames))
        #expect(contents.truncation == nil)
        #expect(contents.frames == frames)
        #expect(contents.identity.pid == 4242)
        #expect(contents.identity.address == "127.0.0.1:7007")
        #expect(contents.identity.backend == "io_uring")
        #expect(contents.identity.periodNs == 500_000_000)
        #expect(contents.identity.connectionFigure == "requests")
        #expect(contents.frames.contains { $0.connections.count == 3 })
        // The wall clock of the first frame is near now (the header was written now).
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let wall = contents.wallClockNs(of: contents.frames[0])
        #expect(abs(Int64(bitPattern: wall) / 1_000_000_000 - Int64(now.tv_sec)) < 3 * 86_400 * 365)
    }

    @Test func aTornTailKeepsEveryWholeFrame() throws {
        let frames = (1...10 as ClosedRange<UInt64>).map(recordedFrame)
        let bytes = file(frames: frames)
        let header = FrameRecording.header(identity: identity()).count
        for cut in [bytes.count * 6 / 10, bytes.count - 1, bytes.count - 5, header + 3] {
            let contents = try FrameRecording.parse(Array(bytes[0..<cut]))
            let whole = frames.indices.filter { index in
                header + frames[0...index].reduce(0) { $0 + FrameRecording.record($1, handler: .empty).count } <= cut
            }.count
            #expect(contents.frames == Array(frames.prefix(whole)), "cut at \(cut)")
            #expect(contents.truncation != nil, "cut at \(cut)")
        }
    }

    @Test func aDamagedRecordStopsReadingThere() throws {
        let frames = (1...6 as ClosedRange<UInt64>).map(recordedFrame)
        var bytes = file(frames: frames)
        let third = FrameRecording.header(identity: identity()).count
            + frames.prefix(2).reduce(0) { $0 + FrameRecording.record($1, handler: .empty).count }
        bytes[third + 20] ^= 0x55
        let contents = try FrameRecording.parse(bytes)
        #expect(contents.frames == Array(frames.prefix(2)))
        #expect(contents.truncation?.contains("checksum") == true)
    }

    @Test func filesThatAreNotRecordingsAreRefused() throws {
        #expect(throws: FrameRecording.ReadError.empty) { try FrameRecording.parse([]) }
        #expect(throws: FrameRecording.ReadError.notARecording) { try FrameRecording.parse(Array("#!/bin/sh\necho hello\n".utf8)) }
        #expect(throws: FrameRecording.ReadError.notARecording) { try FrameRecording.parse([0x7f, 0x45, 0x4c, 0x46]) }
        var generator = SystemRandomNumberGenerator()
        let garbage = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) }
        #expect(throws: FrameRecording.ReadError.notARecording) { try FrameRecording.parse(garbage) }
        // The right magic and nothing after it, or a damaged header.
        let header = FrameRecording.header(identity: identity())
        #expect(throws: FrameRecording.ReadError.damagedHeader) { try FrameRecording.parse(Array(header.prefix(12))) }
        var flipped = header
        flipped[40] ^= 1
        #expect(throws: FrameRecording.ReadError.damagedHeader) { try FrameRecording.parse(flipped) }
        // Random bytes after a valid magic and version: refused or read, never a trap.
        for _ in 0..<200 {
            let tail = (0..<Int.random(in: 0...2000, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = try? FrameRecording.parse(Array(header.prefix(16)) + tail)
            _ = try? FrameRecording.parse(header + tail)
        }
        #expect(throws: FrameRecording.ReadError.unreadable("/nonexistent/iocptop.rec", ENOENT)) {
            try FrameRecording.read(path: "/nonexistent/iocptop.rec")
        }
    }

    @Test func aFormatFromTheFutureIsRefusedByName() throws {
        var header = FrameRecording.header(identity: identity())
        header[8] = UInt8(FrameRecording.formatVersion + 1)
        #expect(throws: FrameRecording.ReadError.futureVersion(FrameRecording.formatVersion + 1)) {
            try FrameRecording.parse(header)
        }
        #expect(FrameRecording.ReadError.futureVersion(2).description.contains("newer"))
    }

    /// A recording written by an iocptop whose table lacked `queue_depth` and had a field this
    /// one does not know: read through its own table, the missing field reads zero, the unknown
    /// one is skipped.
    @Test func anOlderFieldTableStillReads() throws {
        let dropped = "queue_depth"
        var frame = recordedFrame(number: 3)
        frame.port.queueDepth = 77
        var out = ByteWriter()
        out.word(FrameRecording.magic)
        out.word(1)  // format 1: no connection table
        out.word(1)
        out.word(1); out.word(2); out.word(500_000_000)
        out.string("epoll"); out.string("127.0.0.1:9"); out.string("")
        out.word(0); out.word(0)
        let frameFields = FrameLayout.frameFields.filter { $0.name != dropped }
        out.word(UInt64(frameFields.count + 1))
        out.field("a_field_from_elsewhere", .gauge, .none, 1)
        for field in frameFields { out.field(field.name, field.kind, field.unit, field.width) }
        out.word(UInt64(FrameLayout.workerFields.count))
        for field in FrameLayout.workerFields { out.field(field.name, field.kind, field.unit, field.width) }
        out.word(FrameRecording.checksum(out.bytes))
        // The record in that table: the unknown field first, then the others.
        var payload = ByteWriter()
        payload.varint(31337)
        let current = FrameRecording.record(frame, handler: .empty)
        let full = try FrameRecording.parse(FrameRecording.header(identity: identity()) + current)
        #expect(full.frames == [frame])
        for field in frameFields { encode(field, of: frame, into: &payload) }
        payload.varint(UInt64(frame.workers.count))
        for worker in frame.workers { for field in FrameLayout.workerFields { encode(field, of: worker, into: &payload) } }
        out.u32(UInt32(payload.bytes.count))
        out.u32(UInt32(truncatingIfNeeded: FrameRecording.checksum(payload.bytes)))
        out.bytes += payload.bytes
        let contents = try FrameRecording.parse(out.bytes)
        #expect(contents.truncation == nil)
        var expected = frame
        expected.port.queueDepth = 0
        expected.connections = []
        #expect(contents.frames == [expected])
        #expect(contents.identity.backend == "epoll")
    }

    private func encode<Record>(_ field: FrameField<Record>, of record: Record, into out: inout ByteWriter) {
        if let histogram = field.histogram(of: record) {
            let used = (0..<LatencyBuckets.count).filter { histogram[$0] != 0 }
            out.varint(UInt64(used.count))
            var last = 0
            for index in used {
                out.varint(UInt64(index - last))
                out.varint(histogram[index])
                last = index
            }
        } else {
            out.varint(field.word(of: record))
        }
    }

    @Test func theRecorderFollowsTheRingAndHonoursItsBound() throws {
        let path = "/tmp/iocptop-recording-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).rec"
        defer { unlink(path) }
        let ring = StatsRing(capacity: 64, workerCapacity: 8)
        ring.describe(identity())
        let recorder = try FrameRecorder(path: path, ring: ring, maxBytes: 1 << 20)
        recorder.start()
        for number in 1...30 as ClosedRange<UInt64> { ring.publish(recordedFrame(number: number)) }
        recorder.stop()
        #expect(recorder.stopReason == nil)
        let contents = try FrameRecording.read(path: path)
        #expect(contents.frames.map(\.number) == Array(1...30))
        #expect(contents.frames.last == ring.latest())

        // An existing recording is not overwritten.
        #expect(throws: RecorderError.self) { try FrameRecorder(path: path, ring: ring, maxBytes: 1 << 20) }
        #expect(try FrameRecording.read(path: path).frames.count == 30)
        unlink(path)

        // A bound smaller than the frames: it stops there, says so, and the file stays whole.
        let bounded = FrameRecording.header(identity: identity()).count + 5 * FrameRecording.record(recordedFrame(number: 31), handler: .empty).count
        let small = try FrameRecorder(path: path, ring: ring, maxBytes: bounded + 100)
        small.start()
        for number in 31...60 as ClosedRange<UInt64> { ring.publish(recordedFrame(number: number)) }
        small.stop()
        #expect(small.stopReason?.contains("--record-max-mb") == true)
        var status = stat()
        stat(path, &status)
        #expect(Int(status.st_size) <= bounded + 100)
        let cut = try FrameRecording.read(path: path)
        #expect(cut.truncation == nil)
        #expect(cut.frames.count >= 4 && cut.frames.count <= 6, "\(cut.frames.count)")
    }

    /// A header whose tables are written by hand: `frame` and `timestamp`, and the given worker
    /// columns.
    func handMadeHeader(workerColumns: [(String, Int)], frameColumns: [(String, Int)] = [("frame", 1), ("timestamp", 1)]) -> [UInt8] {
        var out = ByteWriter()
        out.word(FrameRecording.magic)
        out.word(FrameRecording.formatVersion)
        out.word(FrameLayout.version)
        out.word(1); out.word(2); out.word(500_000_000)
        out.string("epoll"); out.string("127.0.0.1:9"); out.string("")
        out.word(0); out.word(0)
        out.word(UInt64(frameColumns.count))
        for (name, width) in frameColumns {
            let field = FrameLayout.frameFields.first { $0.name == name }
            out.field(name, field?.kind ?? .gauge, field?.unit ?? .none, width)
        }
        out.word(UInt64(workerColumns.count))
        for (name, width) in workerColumns { out.field(name, .gauge, .none, width) }
        connectionTable(&out)
        out.word(FrameRecording.checksum(out.bytes))
        return out.bytes
    }

    /// Format 2's connection table (every current field) and figure name.
    func connectionTable(_ out: inout ByteWriter) {
        out.word(UInt64(FrameLayout.connectionFields.count))
        for field in FrameLayout.connectionFields { out.field(field.name, field.kind, field.unit, field.width) }
        out.string("")
    }

    /// A format 1 recording (before connection rows) reads, its frames without connections.
    @Test func aFormatOneRecordingReadsWithoutConnections() throws {
        var frame = recordedFrame(number: 4)
        frame.connections = []
        var out = ByteWriter()
        out.word(FrameRecording.magic)
        out.word(1)
        out.word(5)
        out.word(1); out.word(2); out.word(500_000_000)
        out.string("io_uring"); out.string("127.0.0.1:9"); out.string("")
        out.word(0); out.word(0)
        out.word(UInt64(FrameLayout.frameFields.count))
        for field in FrameLayout.frameFields { out.field(field.name, field.kind, field.unit, field.width) }
        out.word(UInt64(FrameLayout.workerFields.count))
        for field in FrameLayout.workerFields { out.field(field.name, field.kind, field.unit, field.width) }
        out.word(FrameRecording.checksum(out.bytes))
        // Format 1 records end after the worker rows: today's record without its connection count (0).
        let payload = Array(FrameRecording.record(frame, handler: .empty).dropFirst(8).dropLast())
        let contents = try FrameRecording.parse(out.bytes + framed(payload))
        #expect(contents.truncation == nil)
        #expect(contents.frames == [frame])
    }

    func framed(_ payload: [UInt8]) -> [UInt8] {
        var out = ByteWriter()
        out.u32(UInt32(payload.count))
        out.u32(UInt32(truncatingIfNeeded: FrameRecording.checksum(payload)))
        return out.bytes + payload
    }

    /// Recordings written before `timestamp` and the other clock instants were marked
    /// `instant`, and before `auto_throughput` was renamed, read as they were written.
    @Test func fieldsWhoseKindOrNameChangedStillRead() throws {
        var frame = recordedFrame(number: 5)
        frame.auto.completionsPerSecond = 777
        var out = ByteWriter()
        out.word(FrameRecording.magic)
        out.word(FrameRecording.formatVersion)
        out.word(4)
        out.word(1); out.word(2); out.word(500_000_000)
        out.string("io_uring"); out.string("127.0.0.1:9"); out.string("")
        out.word(0); out.word(0)
        func oldKind(_ kind: FieldKind) -> FieldKind { kind == .instant ? .gauge : kind }
        out.word(UInt64(FrameLayout.frameFields.count))
        for field in FrameLayout.frameFields {
            out.field(field.name == "auto_throughput" ? "auto_completions_per_s" : field.name, oldKind(field.kind), field.unit, field.width)
        }
        out.word(UInt64(FrameLayout.workerFields.count))
        for field in FrameLayout.workerFields { out.field(field.name, oldKind(field.kind), field.unit, field.width) }
        connectionTable(&out)
        out.word(FrameRecording.checksum(out.bytes))
        let record = FrameRecording.record(frame, handler: .empty)
        let contents = try FrameRecording.parse(out.bytes + record)
        #expect(contents.frames == [frame])
        #expect(contents.frames.first?.auto.completionsPerSecond == 777)
    }

    @Test func hostileTablesAndRecordsAreRefusedWithoutBlowingUp() throws {
        // No frame number or timestamp in the table: not a usable recording.
        #expect(throws: FrameRecording.ReadError.damagedHeader) {
            try FrameRecording.parse(handMadeHeader(workerColumns: [], frameColumns: []))
        }
        // An empty worker table and a record claiming 4096 workers in two bytes: damaged, not
        // 4096 rows.
        var payload = ByteWriter()
        payload.varint(1); payload.varint(1_000)
        payload.varint(4096)
        let zeroColumns = try FrameRecording.parse(handMadeHeader(workerColumns: []) + framed(payload.bytes))
        #expect(zeroColumns.count == 0 && zeroColumns.truncation != nil)
        // Columns this iocptop does not know, 4096 words wide, are skipped without allocating.
        var wide = ByteWriter()
        wide.varint(1); wide.varint(1_000)
        wide.varint(1)
        wide.varint(0)  // the unknown histogram: no bucket used
        wide.varint(0)  // no connection rows
        let skipped = try FrameRecording.parse(handMadeHeader(workerColumns: [("from_the_future", 4096)]) + framed(wide.bytes))
        #expect(skipped.count == 1 && skipped.frame(at: 0).workers.count == 1)
        // Mutated records with valid checksums: read or refused, never a trap; the frames read
        // are whole.
        var generator = SeededGenerator(seed: 2026)
        let good = FrameRecording.record(recordedFrame(number: 9), handler: .empty)
        let header = FrameRecording.header(identity: identity())
        for _ in 0..<2000 {
            var body = Array(good.dropFirst(8))
            for _ in 0..<Int.random(in: 1...6, using: &generator) {
                body[Int.random(in: 0..<body.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            if Bool.random(using: &generator) { body.removeLast(Int.random(in: 0...min(40, body.count), using: &generator)) }
            let contents = try FrameRecording.parse(header + framed(body))
            #expect(contents.count <= 1)
            if contents.count == 1 { _ = contents.frame(at: 0) }
        }
    }
}
