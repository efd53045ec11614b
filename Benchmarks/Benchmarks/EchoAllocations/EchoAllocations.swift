// The echo path allocates nothing per completion: in place (echo's ring), and through a
// handler (`EchoProtocol(inPlace: false)`: the path every protocol with a handler takes).
//
// An engine and an in-process client share the benchmark process; the malloc interposer counts
// every allocation in it. One iteration is 1000 round trips of 64 bytes over one connection
// (each: a receive completion and a send completion on the engine, a write and a read on the
// client, which reuses one buffer). Setup (engine start, connect, accept, warm-up) is outside
// the measured region.
import Benchmark
import CompletionPort
import ServerCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A connected client of an engine on an ephemeral loopback port.
final class EchoFixture: @unchecked Sendable {
    let engine: PortServer
    let fd: CInt
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 64)

    init(backend: BackendChoice, inPlace: Bool) throws {
        var configuration = EngineConfiguration()
        configuration.port = 0
        configuration.backend = backend
        configuration.workers = 2
        engine = try PortServer(configuration: configuration, serving: EchoProtocol(inPlace: inPlace))
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = engine.listenPort.bigEndian
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var one: CInt = 1
        setsockopt(fd, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
        for i in 0..<64 { buffer[i] = UInt8(i) }
        roundTrips(1000)  // warm-up: pools, rings and queues reach their working size
    }

    /// `count` echo round trips; returns false if the connection broke.
    @discardableResult
    func roundTrips(_ count: Int) -> Bool {
        for _ in 0..<count {
            guard write(fd, buffer.baseAddress, 64) == 64 else { return false }
            var got = 0
            while got < 64 {
                let n = read(fd, buffer.baseAddress! + got, 64 - got)
                if n <= 0 { return false }
                got += n
            }
        }
        return true
    }

    func shutdown() {
        close(fd)
        _ = engine.drain()
    }
}

/// Fixtures set up for the benchmark in progress, shut down by its teardown.
let fixtures = Mutex<[EchoFixture]>([])

let benchmarks: @Sendable () -> Void = {
    for backend in [BackendChoice.ioURing, .epoll] {
      for inPlace in [true, false] {
        Benchmark(
            "Echo1000RoundTrips-\(inPlace ? "" : "handler-")\(backend.rawValue)",
            configuration: .init(
                metrics: [.mallocCountTotal],
                scalingFactor: .kilo,
                maxDuration: .seconds(3),
                maxIterations: 50,
                thresholds: [.mallocCountTotal: .init(absolute: [.p90: 0])]
            )
        ) { (benchmark: Benchmark, fixture: EchoFixture) in
            benchmark.startMeasurement()
            fixture.roundTrips(1000)
            benchmark.stopMeasurement()
        } setup: {
            let fixture = try EchoFixture(backend: backend, inPlace: inPlace)
            fixtures.withLock { $0.append(fixture) }
            return fixture
        } teardown: {
            fixtures.withLock { list in
                list.forEach { $0.shutdown() }
                list.removeAll()
            }
        }
      }
    }
}
