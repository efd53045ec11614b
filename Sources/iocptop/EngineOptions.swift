import ArgumentParser
import CompletionPort
import HTTPServer
import ServerCore

extension BackendChoice: ExpressibleByArgument {}

/// The protocols `--protocol` names.
enum ProtocolChoice: String, ExpressibleByArgument, CaseIterable {
    case echo, http
}

/// Options shared by every mode that runs the engine.
struct EngineOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "TCP port to listen on.")
    var port: UInt16 = 5150

    @Option(name: .customLong("protocol"), help: "What the port serves: echo, or http (HTTP/1.1: see README for the routes).")
    var serverProtocol: ProtocolChoice = .echo

    @Option(name: .customLong("max-body"), parsing: .unconditional, help: "HTTP: largest request body in bytes (413 beyond).")
    var maxBody = 1 << 20

    @Option(name: .customLong("header-timeout"), parsing: .unconditional, help: "HTTP: seconds a request head may take to arrive (slowloris).")
    var headerTimeout = 10.0

    @Option(name: .customLong("idle-timeout"), parsing: .unconditional, help: "HTTP: seconds a keep-alive connection may wait for its next request.")
    var idleTimeout = 60.0

    @Option(help: "IPv4 or IPv6 address to bind (0.0.0.0 or :: open the echo port to other hosts).")
    var bind = "127.0.0.1"

    @Option(parsing: .unconditional, help: "Worker threads (0: 2 × online CPUs).")
    var workers = 0

    @Option(parsing: .unconditional, help: "Concurrency limit of the port (0: online CPUs).")
    var concurrency = 0

    @Option(help: "auto, io_uring or epoll.")
    var backend: BackendChoice = .auto

    @Option(name: .customLong("work-us"), parsing: .unconditional, help: "Simulated CPU work per completion, in microseconds.")
    var workMicroseconds = 0

    @Option(name: .customLong("block-us"), parsing: .unconditional, help: "Simulated blocking per completion, in microseconds (inside the port's blocking scope).")
    var blockMicroseconds = 0

    @Option(name: .customLong("max-connections"), parsing: .unconditional, help: "Connections beyond this are accepted and closed at once.")
    var maxConnections = 10_000

    @Option(name: .customLong("connections"), parsing: .unconditional,
            help: "Connections each frame carries for the connections view (1-256): the longest waiting, then the busiest by bytes/s.")
    var connectionRows = 32

    @Option(name: .customLong("buffer-size"), parsing: .unconditional, help: "Largest echo buffer per connection, in bytes: lent from a shared pool while data flows (idle connections keep 1 KiB).")
    var bufferSize = 262_144

    @Option(name: .customLong("provided-buffers"), parsing: .unconditional, help: "Multishot receives on io_uring (6.0+) over this many provided 1 KiB buffers (a power of two, e.g. 2048); 0: one receive per message, which measured cheaper (see Benchmarks/README.md).")
    var providedBuffers = 0

    @Option(name: .customLong("refresh-ms"), parsing: .unconditional, help: "Stats sampling (and dashboard refresh) interval in milliseconds, 50 to 60000.")
    var refreshMilliseconds = 500

    @Flag(help: "Auto mode: the pool sizes itself (the a key turns it on and off; see README).")
    var auto = false

    @Option(name: .customLong("max-workers"), parsing: .unconditional, help: "Auto mode grows the pool to at most this many workers.")
    var maxWorkers = EngineConfiguration.maxWorkers

    func validate() throws {
        guard (1...EngineConfiguration.maxWorkers).contains(maxWorkers) else {
            throw ValidationError("--max-workers must be between 1 and \(EngineConfiguration.maxWorkers)")
        }
        guard (50...60_000).contains(refreshMilliseconds) else {
            throw ValidationError("--refresh-ms must be between 50 and 60000")
        }
        guard workers >= 0, workers <= EngineConfiguration.maxWorkers else {
            throw ValidationError("--workers must be between 0 and \(EngineConfiguration.maxWorkers)")
        }
        guard concurrency >= 0, concurrency <= 4096 else { throw ValidationError("--concurrency must be between 0 and 4096") }
        guard workMicroseconds >= 0, workMicroseconds <= 1_000_000 else { throw ValidationError("--work-us must be between 0 and 1000000") }
        guard blockMicroseconds >= 0, blockMicroseconds <= 1_000_000 else { throw ValidationError("--block-us must be between 0 and 1000000") }
        guard maxConnections > 0, maxConnections <= 1 << 22 else { throw ValidationError("--max-connections must be between 1 and 4194304") }
        guard (1...EngineConfiguration.maxConnectionRows).contains(connectionRows) else {
            throw ValidationError("--connections must be between 1 and \(EngineConfiguration.maxConnectionRows)")
        }
        guard bufferSize >= 64, bufferSize <= 1 << 24 else { throw ValidationError("--buffer-size must be between 64 and 16777216") }
        if serverProtocol == .http && bufferSize < 16384 {
            throw ValidationError("--buffer-size must be at least 16384 with --protocol http (a request head may take 8 KiB)")
        }
        guard maxBody >= 0, maxBody <= 1 << 30 else { throw ValidationError("--max-body must be between 0 and 1073741824") }
        guard headerTimeout >= 0.1, headerTimeout <= 3600 else { throw ValidationError("--header-timeout must be between 0.1 and 3600 seconds") }
        guard idleTimeout >= 0.1, idleTimeout <= 86_400 else { throw ValidationError("--idle-timeout must be between 0.1 and 86400 seconds") }
        guard providedBuffers == 0 || (providedBuffers <= 32768 && providedBuffers & (providedBuffers - 1) == 0) else {
            throw ValidationError("--provided-buffers must be 0 or a power of two up to 32768")
        }
    }

    /// The protocol the engine serves.
    var serving: any ServerProtocol {
        switch serverProtocol {
        case .echo:
            return EchoProtocol()
        case .http:
            var configuration = HTTPConfiguration()
            configuration.maxBody = maxBody
            configuration.headerTimeoutNs = Int64(headerTimeout * 1e9)
            configuration.idleTimeoutNs = Int64(idleTimeout * 1e9)
            return HTTPProtocol(configuration: configuration)
        }
    }

    var engineConfiguration: EngineConfiguration {
        var configuration = EngineConfiguration()
        configuration.port = port
        configuration.bindAddress = bind
        configuration.workers = workers
        configuration.concurrency = concurrency
        configuration.backend = backend
        configuration.workMicroseconds = workMicroseconds
        configuration.blockMicroseconds = blockMicroseconds
        configuration.maxConnections = maxConnections
        configuration.connectionRows = connectionRows
        configuration.ioBufferSize = bufferSize
        configuration.providedBuffers = providedBuffers
        configuration.statsPeriodMilliseconds = refreshMilliseconds
        configuration.auto = auto
        configuration.autoMaxWorkers = maxWorkers
        return configuration
    }
}
