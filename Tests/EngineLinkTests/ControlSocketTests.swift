import ServerCore
import EngineLink
import EngineStats
import Loopback
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The control socket: commands from several clients, and abuse that must not disturb the engine.
@Suite(.serialized) struct ControlSocketTests {
    @Test func attachListAndCommandsFromTwoClientsAddUp() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let engine = try makeEngine()
        defer { _ = engine.drain() }
        let publication = try EnginePublication(stats: engine.stats, control: LocalControl(engine: engine), directoryPath: directory.runtime)
        defer { publication.withdraw() }

        let listed = try EngineListing.all(directoryPath: directory.runtime)
        #expect(listed.map(\.pid) == [getpid()])
        #expect(listed.first?.address == engine.address)

        let attached = try AttachedEngine(pid: nil, directoryPath: directory.runtime)
        #expect(attached.identity.address == engine.address)
        #expect(attached.ended == nil)
        #expect(eventually { attached.latest()?.liveWorkers == 2 })

        let before = engine.port.concurrency
        let path = publication.socketPath
        let threads = (0..<2).map { _ in
            JoinableThread {
                let client = ControlClient(socketPath: path)
                for _ in 0..<10 { _ = client.send(.changeConcurrency(by: 1)) }
            }
        }
        threads.forEach { $0.join() }
        #expect(engine.port.concurrency == before + 20, "commands are applied by the engine: none is lost")
        #expect(eventually { attached.latest()?.port.concurrency == before + 20 }, "and every viewer sees them")

        let outcome = attached.control.send(.addWorker)
        #expect(outcome.succeeded, "\(outcome.message)")
        #expect(eventually { attached.latest()?.liveWorkers == 3 })
        #expect(attached.control.send(.setWorkMicroseconds(2_000_000)).succeeded == false, "out of range is refused")
    }

    @Test func theSharedRingCannotBeMappedForWriting() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let engine = try makeEngine()
        defer { _ = engine.drain() }
        let publication = try EnginePublication(stats: engine.stats, control: LocalControl(engine: engine), directoryPath: directory.runtime)
        defer { publication.withdraw() }
        let ring = try ControlClient(socketPath: publication.socketPath).attachRing()
        #expect(!ring.isWritable)
        let writable = mmap(nil, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ring.descriptor, 0)
        #expect(writable == MAP_FAILED, "a viewer's descriptor is read-only")
        if writable != MAP_FAILED { munmap(writable, 4096) }
        var mode = stat()
        #expect(stat(publication.socketPath, &mode) == 0 && mode.st_mode & 0o777 == 0o600)
        #expect(stat(directory.runtime, &mode) == 0 && mode.st_mode & 0o777 == 0o700)
    }

    @Test func garbageOversizedHalfWrittenAndIdleClientsDoNotDisturbTheEngine() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let engine = try makeEngine(workers: 3)
        defer { _ = engine.drain() }
        let publication = try EnginePublication(stats: engine.stats, control: LocalControl(engine: engine), directoryPath: directory.runtime)
        defer { publication.withdraw() }
        let workers = engine.liveWorkers, concurrency = engine.port.concurrency
        let completionsBefore = engine.currentFrame().totals.completions

        // Random bytes: an error reply, then the connection closes.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            let fd = try #require(connectUnix(publication.socketPath))
            var bytes = (0..<200).map { _ in UInt8.random(in: 0...255, using: &generator) }
            bytes.append(10)
            _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            #expect(readAll(fd).hasPrefix("error"))
            close(fd)
        }
        // A valid prefix with a wrong version, and a known verb with a bad argument.
        for request in ["iocptop/9 add-worker\n", "iocptop/1 concurrency lots\n", "iocptop/1 add-worker now please\n"] {
            let fd = try #require(connectUnix(publication.socketPath))
            _ = request.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
            #expect(readAll(fd).hasPrefix("error"), "\(request)")
            close(fd)
        }
        // A 1 MiB message: refused after the first line's worth, the connection closed.
        do {
            let fd = try #require(connectUnix(publication.socketPath))
            let big = [UInt8](repeating: UInt8(ascii: "a"), count: 1 << 20)
            var sent = 0
            while sent < big.count {
                let n = big[sent...].withUnsafeBytes { send(fd, $0.baseAddress, min(65536, $0.count), Int32(MSG_NOSIGNAL)) }
                if n <= 0 { break }
                sent += n
            }
            #expect(sent < big.count, "the server stopped reading and closed")
            close(fd)
        }
        // A half-written request left open: closed with a timeout, the command never applied.
        let half = try #require(connectUnix(publication.socketPath))
        _ = "iocptop/1 add-wor".withCString { send(half, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        let started = ContinuousClock.now
        #expect(readAll(half, milliseconds: 10_000).contains("timeout"))
        #expect(ContinuousClock.now - started < .seconds(5))
        close(half)
        // 200 idle connections: the oldest make room; a real client is still served at once.
        let idle = (0..<200).compactMap { _ in connectUnix(publication.socketPath) }
        defer { idle.forEach { close($0) } }
        let outcome = ControlClient(socketPath: publication.socketPath).send(.setBlockMicroseconds(0))
        #expect(outcome.succeeded, "\(outcome.message)")

        #expect(echoOnce(port: engine.listenPort, "still echoing, byte for byte") == "still echoing, byte for byte")
        #expect(engine.liveWorkers == workers)
        #expect(engine.port.concurrency == concurrency)
        let frame = engine.currentFrame()
        #expect(frame.settings.workMicroseconds == 0)
        #expect(frame.engine.accepted == 1, "nothing but the echo client reached the engine")
        #expect(frame.totals.completions > completionsBefore)
    }

    @Test func staleEntriesAreIgnoredAndCleanedByTheNextEngine() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        mkdir(directory.runtime, 0o700)
        // Our own pid with another start time: a pid that was reused.
        let stale = directory.runtime + "/\(getpid())-1.sock"
        close(open(stale, O_CREAT | O_WRONLY, 0o600))
        let listed = try EngineListing.all(directoryPath: directory.runtime)
        #expect(listed.isEmpty)
        #expect(throws: LinkError.noneRunning) { try AttachedEngine(pid: nil, directoryPath: directory.runtime) }
        let engine = try makeEngine()
        defer { _ = engine.drain() }
        let publication = try EnginePublication(stats: engine.stats, control: LocalControl(engine: engine), directoryPath: directory.runtime)
        #expect(access(stale, F_OK) != 0, "the new engine removed the stale entry")
        publication.withdraw()
        #expect(access(publication.socketPath, F_OK) != 0, "withdrawing removes the socket")
    }

    @Test func anUnsafeDirectoryIsRefused() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        mkdir(directory.runtime, 0o700)
        chmod(directory.runtime, 0o777)
        let engine = try makeEngine(workers: 1)
        defer { _ = engine.drain() }
        #expect(throws: LinkError.self) { try EnginePublication(stats: engine.stats, control: LocalControl(engine: engine), directoryPath: directory.runtime) }
    }

    @Test func requestsRoundTripThroughTheProtocol() throws {
        let commands: [EngineCommand] = [.addWorker, .retireWorker, .changeConcurrency(by: 3), .changeConcurrency(by: -2),
                                         .setConcurrency(7), .stepWork(by: 1), .stepWork(by: -1), .setWorkMicroseconds(250),
                                         .setBlockMicroseconds(30_000), .drain, .setAuto(true), .setAuto(false), .toggleAuto,
                                         .closeConnection(id: 1), .closeConnection(id: UInt64.max)]
        for command in commands {
            let line = ControlProtocol.line(for: .command(command))
            #expect(line.utf8.count <= ControlProtocol.maxLine)
            #expect(try ControlProtocol.parse(String(line.dropLast())).get() == .command(command), "\(line)")
        }
        #expect(try ControlProtocol.parse("iocptop/1 hello").get() == .hello)
        for garbage in ["", "hello", "iocptop/1", "iocptop/1 fly", "iocptop/1 work-us 99999999999", "iocptop/2 hello", "iocptop/1 auto", "iocptop/1 auto maybe",
                        "iocptop/1 close-connection", "iocptop/1 close-connection 0", "iocptop/1 close-connection -3",
                        "iocptop/1 close-connection +3", "iocptop/1 close-connection 18446744073709551616",
                        "iocptop/1 close-connection 12x"] {
            #expect((try? ControlProtocol.parse(garbage).get()) == nil, "\(garbage)")
        }
    }
}
