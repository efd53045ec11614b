import CompletionPort
import ServerCore
import LoadGen
import Loopback
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

func makeEngine(workers: Int = 2) throws -> PortServer {
    var configuration = EngineConfiguration()
    configuration.port = 0
    configuration.workers = workers
    return try PortServer(configuration: configuration)
}

func loadConfiguration(port: UInt16, connections: Int, size: Int = 128) -> LoadConfiguration {
    var configuration = LoadConfiguration()
    configuration.port = port
    configuration.connections = connections
    configuration.messageSize = size
    return configuration
}

@Suite struct LoadGenTests {
    @Test func everyEchoIsVerifiedAndCounted() throws {
        let engine = try makeEngine()
        defer { _ = engine.drain() }
        var configuration = loadConfiguration(port: engine.listenPort, connections: 20, size: 300)
        configuration.pipeline = 4
        configuration.messages = 20_000
        configuration.threads = 2
        let generator = try LoadGenerator(configuration: configuration)
        let started = try generator.start()
        #expect(started.connected == 20 && started.failures.isEmpty)
        generator.wait()
        let report = generator.report()
        #expect(report.clean)
        #expect(report.messages == 20_000)
        #expect(report.bytes == 20_000 * 300)
        #expect(report.latency.p50 > 0 && report.latency.p50 <= report.latency.p99 && report.latency.p99 <= report.latency.max)
        #expect(engine.currentFrame().totals.bytesIn == 20_000 * 300, "the engine echoed exactly what was sent")
    }

    /// Stream mode against the engine, on both backends: every byte verified, no connection
    /// goes a second without an echo.
    @Test(arguments: testedBackends)
    func streamingConnectionsAreServedWithoutStalls(backend: BackendChoice) throws {
        var engineConfiguration = EngineConfiguration()
        engineConfiguration.port = 0
        engineConfiguration.workers = 2
        engineConfiguration.concurrency = 1
        engineConfiguration.backend = backend
        let engine = try PortServer(configuration: engineConfiguration)
        defer { _ = engine.drain() }
        var configuration = loadConfiguration(port: engine.listenPort, connections: 6, size: 65536)
        configuration.mode = .stream
        configuration.window = 1 << 20
        configuration.duration = 2.5
        let generator = try LoadGenerator(configuration: configuration)
        try generator.start()
        generator.wait()
        let report = generator.report()
        #expect(report.clean, "\(report)")
        #expect(report.stalledConnections == 0)
        #expect(report.bytes > 6 * (1 << 20), "each connection moved more than its window")
    }

    /// A server that takes the bytes and never echoes them: every connection stalls.
    @Test func connectionsWithoutEchoesAreReportedStalled() throws {
        let listener = try Loopback.listen()
        defer { close(listener.fd) }
        var configuration = loadConfiguration(port: listener.port, connections: 3, size: 4096)
        configuration.mode = .stream
        configuration.window = 64 * 1024
        configuration.duration = 1.6
        let generator = try LoadGenerator(configuration: configuration)
        try generator.start()
        generator.wait()
        let report = generator.report()
        #expect(report.stalledConnections == 3)
        #expect(!report.clean)
    }

    @Test func corruptedEchoesAreCaught() throws {
        let server = try CorruptingEchoServer(flipEvery: 1000)
        defer { server.stop() }
        var configuration = loadConfiguration(port: server.port, connections: 2, size: 256)
        configuration.messages = 200
        let generator = try LoadGenerator(configuration: configuration)
        try generator.start()
        generator.wait()
        let report = generator.report()
        #expect(report.mismatches > 0)
        #expect(!report.clean)
    }

    @Test func aRefusedPortIsAClearError() throws {
        let listener = try Loopback.listen()
        let port = listener.port
        close(listener.fd)
        let generator = try LoadGenerator(configuration: loadConfiguration(port: port, connections: 3))
        #expect(throws: LoadError.noConnection(host: "127.0.0.1", port: port, failures: [ErrorCount(kind: "connection refused", count: 3)])) {
            try generator.start()
        }
    }

    @Test func badSettingsAreRejected() {
        var configuration = LoadConfiguration()
        configuration.pipeline = 0
        #expect(throws: LoadError.self) { try LoadGenerator(configuration: configuration) }
        configuration = LoadConfiguration()
        configuration.host = "no-such-host.invalid"
        configuration.duration = 1
        let generator = try? LoadGenerator(configuration: configuration)
        #expect(throws: LoadError.unresolvable("no-such-host.invalid")) { try generator?.start() }
    }

    @Test func aServerThatGoesAwayMidRunIsReportedNotACrash() throws {
        let engine = try makeEngine()
        var configuration = loadConfiguration(port: engine.listenPort, connections: 10)
        configuration.duration = 30
        let generator = try LoadGenerator(configuration: configuration)
        try generator.start()
        #expect(eventually { generator.progress.messages > 1000 })
        _ = engine.drain()
        #expect(eventually { generator.isFinished }, "every connection closed: the run ends by itself")
        let report = generator.report()
        #expect(report.errors.reduce(0) { $0 + $1.count } == 10)
        #expect(report.errors.allSatisfy { $0.kind.contains("server closed") || $0.kind.contains("reset") })
        #expect(report.mismatches == 0)
    }

    @Test func theRateLimitHolds() throws {
        let engine = try makeEngine()
        defer { _ = engine.drain() }
        var configuration = loadConfiguration(port: engine.listenPort, connections: 4)
        configuration.rate = 2000
        configuration.duration = 0.5
        let generator = try LoadGenerator(configuration: configuration)
        try generator.start()
        generator.wait()
        let report = generator.report()
        #expect(report.messages > 0)
        // Never more than the rate allows over the time it ran (one token of slack per thread).
        #expect(Double(report.messages) <= 2000 * report.seconds + 2)
    }

    @Test func theBuiltInLoadSwitchesOnAndOff() throws {
        let engine = try makeEngine()
        defer { _ = engine.drain() }
        let load = BuiltInLoad(configuration: loadConfiguration(port: engine.listenPort, connections: 8))
        #expect(!load.isRunning)
        #expect(try load.start() == 8)
        #expect(load.isRunning)
        #expect(eventually { load.progress.messages > 500 })
        #expect(eventually { engine.currentFrame().engine.openConnections == 8 })
        let report = try #require(load.stop())
        #expect(!load.isRunning && report.messages > 500 && report.mismatches == 0)
        #expect(eventually { engine.currentFrame().engine.openConnections == 0 })
        #expect(load.stop() == nil)
        try load.start()
        #expect(eventually { load.progress.messages > 100 }, "it starts again")
        load.stop()
    }
}

/// An echo server that flips one byte in every `flipEvery`: what a broken server looks like.
final class CorruptingEchoServer: @unchecked Sendable {
    let port: UInt16
    private let listenFD: CInt
    private var threads: [JoinableThread] = []

    init(flipEvery: Int) throws {
        let listener = try Loopback.listen()
        listenFD = listener.fd
        port = listener.port
        // Accepts until `stop` shuts the listening socket down.
        threads.append(JoinableThread { [listenFD] in
            var clients: [JoinableThread] = []
            while true {
                let fd = accept(listenFD, nil, nil)
                guard fd >= 0 else { break }
                clients.append(JoinableThread {
                    var buffer = [UInt8](repeating: 0, count: 4096)
                    var total = 0
                    while true {
                        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                        if n <= 0 { break }
                        for index in 0..<n where (total + index) % flipEvery == flipEvery - 1 { buffer[index] ^= 0xFF }
                        total += n
                        guard buffer.withUnsafeBytes({ Loopback.writeAll(fd, UnsafeRawBufferPointer(rebasing: $0[0..<n])) }) else { break }
                    }
                    close(fd)
                })
            }
            clients.forEach { $0.join() }
        })
    }

    func stop() {
        shutdown(listenFD, CInt(SHUT_RDWR))
        close(listenFD)
        threads.forEach { $0.join() }
    }
}
